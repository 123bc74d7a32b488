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


def test_features_json_is_the_one_log_encoder():
    """serving (online values) and batch (frame columns as objects) write the log's features column
    with this one function: NaN and inf are null, numpy scalars plain, datetimes str()."""
    import json
    from datetime import datetime, timezone

    import numpy as np

    from parity.jsonable import features_json

    at = datetime(2026, 6, 1, tzinfo=timezone.utc)
    columns = {"a": [1.5, float("nan"), np.float64("inf")], "b": [np.int64(3), None, 7], "c": [at, "x", None]}
    out = features_json(columns, range(3), ["a", "b", "c"])
    assert [json.loads(out[i]) for i in range(3)] == [
        {"a": 1.5, "b": 3, "c": str(at)}, {"a": None, "b": None, "c": "x"}, {"a": None, "b": 7, "c": None}]
    assert list(features_json(columns, [2], ["b"]).items()) == [(2, '{"b":7}')]
