"""Batch scoring of every customer and customer segments: `python -m batch` (see batch/config.yaml)."""

import os

# Same reason as training/__init__.py: spinning OpenMP threads make xgboost ~40x slower on the
# shared 2 cores; passive waiting costs nothing and respects an explicit setting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
