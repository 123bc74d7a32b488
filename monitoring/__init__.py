"""Monitoring: drift, prediction drift, realised performance, freshness and online/offline
consistency (`python -m monitoring`, `python -m monitoring.consistency`)."""

import os

# as in training/__init__.py: passive OpenMP waiting (xgboost scores the reference rows; retrain fits)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
