"""The one JSON converter (parity.jsonable) behind metadata, recorded configs and summaries."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from parity.jsonable import jsonable


def test_values_become_plain_json():
    value = {
        1: (np.int64(3), np.float32(0.5), np.bool_(True)),
        "bad": [float("nan"), np.inf, pd.NaT, pd.NA, None],
        "when": [pd.Timestamp("2026-01-02T03:04:05Z"), datetime(2026, 1, 2, tzinfo=timezone.utc)],
        "path": Path("/x/y"),
        "array": np.array([1, 2]),
    }
    got = jsonable(value)
    assert got == {
        "1": [3, 0.5, True],
        "bad": [None, None, None, None, None],
        "when": ["2026-01-02T03:04:05+00:00", "2026-01-02T00:00:00+00:00"],
        "path": "/x/y",
        "array": [1, 2],
    }
    assert json.loads(json.dumps(got, allow_nan=False)) == got
    assert type(got["1"][0]) is int and type(got["1"][2]) is bool
