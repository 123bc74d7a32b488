"""Python, numpy and pandas values -> plain JSON values: the one converter behind model metadata,
configs recorded in artefacts and the monitoring summary."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """Mappings with string keys, lists for tuples/arrays, numpy scalars unwrapped, NaN/inf and
    NaT/NA -> None, timestamps as ISO 8601, paths as strings; recursively."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (pd.Timestamp, datetime)):  # NaT is a datetime too
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
