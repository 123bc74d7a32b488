"""Monitoring: drift, prediction drift, realised performance and freshness (`python -m monitoring`)."""

import os

# as in training/__init__.py: passive OpenMP waiting (xgboost scores the reference rows; retrain fits)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
