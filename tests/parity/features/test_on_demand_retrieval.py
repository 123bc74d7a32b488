"""training_frame (the product's ASOF offline store for the batch features, then the registered
on-demand function on its input columns only, Arrow when the view is tagged `udf_accepts_arrow`)
gives exactly what plain Feast gives: its own DuckDB store and its own on-demand path."""

from __future__ import annotations

import ast
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from parity.features.feature_store import materialized_until, open_store
from parity.features.retrieval import (
    ENTITY_KEY,
    REQUEST_TIME,
    TIME_COLUMN,
    OnDemandStep,
    conform,
    offline_plan,
    run_on_demand,
    service_schema,
    to_frame,
    training_frame,
)
from parity.features.stores import ASOF_DUCKDB_TYPE

REQUEST_FEATURES = Path(__file__).resolve().parents[3] / "feature_repo" / "request_features.py"


def _registered_like(name: str = "request_recency") -> Any:
    """The function as Feast re-creates it: its source text alone, no module globals."""
    text = REQUEST_FEATURES.read_text()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict[str, Any] = {"Any": Any}  # only the annotation's name
    exec(ast.get_source_segment(text, node), namespace)  # noqa: S102 - our own repo file
    return namespace[name]


def test_recency_gives_the_same_floats_for_lists_and_arrow_columns():
    udf = _registered_like()
    utc = timezone.utc
    now = datetime(2026, 6, 1, 12, 0, 0, 123457, tzinfo=utc)
    last = [datetime(2026, 5, 30, 23, 59, 59, 1, tzinfo=utc), None, datetime(2020, 2, 29, tzinfo=utc),
            now, now + timedelta(microseconds=1), datetime(2026, 5, 31, 1, 2, 3, tzinfo=utc)]
    request = [now, now, now - timedelta(days=3, microseconds=7), now, now, None]
    lists = udf({"last_purchase_at": last, "request_at": request})["days_since_last_purchase"]
    assert isinstance(lists, list) and lists[1] is None and lists[5] is None and lists[3] == 0.0
    assert all(v is None or type(v) is float for v in lists)
    column = udf({"last_purchase_at": pa.array(last, pa.timestamp("us", tz="UTC")),
                  "request_at": pa.chunked_array([pa.array(request, pa.timestamp("us", tz="UTC"))])})
    assert column["days_since_last_purchase"].type == pa.float64()
    assert column["days_since_last_purchase"].to_pylist() == lists  # bit for bit, nulls in place


def test_recency_takes_naive_and_other_zone_timestamps_as_the_same_instant():
    udf = _registered_like()
    naive = pa.array([datetime(2026, 5, 1, 10)], pa.timestamp("ns"))
    berlin = pa.array([datetime(2026, 5, 2, 10, tzinfo=timezone.utc)], pa.timestamp("ms", tz="Europe/Berlin"))
    out = udf({"last_purchase_at": naive, "request_at": berlin})["days_since_last_purchase"]
    assert out.to_pylist() == [1.0]
    as_lists = udf({"last_purchase_at": [pd.Timestamp("2026-05-01 10:00")],
                    "request_at": [datetime(2026, 5, 2, 10, tzinfo=timezone.utc)]})
    assert as_lists["days_since_last_purchase"] == [1.0]


def test_a_list_only_function_gets_python_lists_of_its_inputs_only():
    seen = {}

    def udf(inputs):
        seen.update(inputs)
        return {"doubled": [None if v is None else 2 * v for v in inputs["x"]]}

    table = pa.table({"x": [1, None, 3], "other": ["a", "b", "c"]})
    step = OnDemandStep(name="twice", udf=udf, inputs=("x",), outputs=("doubled",), accepts_arrow=False)
    out = run_on_demand(table, [step])
    assert set(seen) == {"x"} and seen["x"] == [1, None, 3]
    assert out.column_names == ["x", "other", "doubled"] and out["doubled"].to_pylist() == [2, None, 6]


@pytest.mark.data
def test_plan_asks_feast_for_batch_features_and_the_on_demand_inputs(feature_data):
    store = open_store(feature_data)
    refs, steps = offline_plan(store, store.get_feature_service("churn_v1"))
    assert all(not ref.startswith("request_recency:") for ref in refs)
    assert "customer_activity:last_purchase_at" in refs and len(refs) == len(set(refs))
    (step,) = steps
    assert step.name == "request_recency" and step.accepts_arrow
    assert step.inputs == ("last_purchase_at", REQUEST_TIME) and step.outputs == ("days_since_last_purchase",)


def _plain_feast(settings, folder: Path) -> Any:
    """A FeatureStore over the same registry and marts with Feast's own stores (duckdb, sqlite)."""
    from feast import FeatureStore

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(settings.feast_dir / "registry.db", folder / "registry.db")
    (folder / "feature_store.yaml").write_text(
        f"project: parity\nprovider: local\nregistry:\n  registry_type: file\n  path: {folder / 'registry.db'}\n"
        f"online_store:\n  type: sqlite\n  path: {folder / 'online_store.db'}\n"
        "offline_store:\n  type: duckdb\nentity_key_serialization_version: 3\n")
    store = FeatureStore(repo_path=str(folder))
    assert store.config.offline_store.type == "duckdb"
    return store


@pytest.mark.data
def test_training_frame_equals_plain_feast_with_the_feature_service(feature_data, tmp_path):
    store = open_store(feature_data)
    assert store.config.offline_store.type == ASOF_DUCKDB_TYPE
    mart = pd.read_parquet(feature_data.marts_dir / "customer_features_weekly.parquet",
                           columns=[ENTITY_KEY, "snapshot_at"])
    ids = np.array(sorted(mart[ENTITY_KEY].unique()) + ["acme:AC-999999"], dtype=object)
    until = pd.Timestamp(materialized_until(feature_data))
    first = pd.Timestamp(mart["snapshot_at"].min()).tz_convert("UTC")
    rng = np.random.default_rng(3)
    n = 3000
    times = first + pd.to_timedelta(rng.integers(0, int((until - first).total_seconds()), n), unit="s")
    snaps = pd.DatetimeIndex(mart["snapshot_at"].drop_duplicates()).tz_convert("UTC")
    kind = rng.random(n)
    on_snapshot = snaps[rng.integers(0, len(snaps), n)]
    times = times.where(kind > 0.2, on_snapshot)  # exactly on a snapshot instant
    ttl = store.get_feature_view("customer_activity").ttl
    times = times.where((kind <= 0.2) | (kind > 0.3), on_snapshot + ttl)  # the inclusive TTL edge
    times = times.where((kind <= 0.3) | (kind > 0.35), on_snapshot + ttl + pd.Timedelta(seconds=1))  # just past it
    entity_df = pd.DataFrame({ENTITY_KEY: ids[rng.integers(0, len(ids), n)], TIME_COLUMN: times,
                              "label": rng.integers(0, 2, n)})

    ours = training_frame(store, entity_df, "churn_v1")

    frame = entity_df.copy()
    frame["__row"] = range(n)
    frame[REQUEST_TIME] = frame[TIME_COLUMN]
    plain = _plain_feast(feature_data, tmp_path / "plain")
    service = plain.get_feature_service("churn_v1")
    theirs = plain.get_historical_features(entity_df=frame.drop(columns="label"), features=service).to_arrow()
    theirs = to_frame(conform(theirs.sort_by("__row"), service_schema(store, "churn_v1")))
    theirs["label"] = entity_df["label"]

    assert ours["days_since_last_purchase"].notna().sum() > n // 4  # the on-demand feature is exercised
    assert list(ours.columns) == list(theirs.columns) and (ours.dtypes == theirs.dtypes).all()
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=0, atol=1e-9)
