"""Churn model training: `python -m training` (see training/__main__.py and training/config.yaml)."""

import os

# Must happen before xgboost/scikit-learn load their OpenMP runtime. By default OpenMP threads
# spin between parallel regions; when the 2 cores are shared with other work (CI, a second
# job) a 2-thread xgboost fit then runs ~40x slower than with 1 thread (measured: 13.3 s vs
# 0.33 s). Passive waiting costs nothing on an idle machine and respects an explicit setting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
