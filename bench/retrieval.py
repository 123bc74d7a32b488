"""Section 1: training-set (point-in-time) retrieval.

platform   parity.features.retrieval.training_frame (what `python -m training` uses): Feast with the
           product's offline store (feature_repo/feature_store.yaml: parity.features.stores.AsofDuckDBOfflineStore)
           for the batch features, the registered on-demand function on its Arrow input columns,
           conform, back to input order, typed pandas
platform_arrow  parity.features.retrieval.offline_arrow: the same, Arrow out, no conform, no reordering
raw        one DuckDB ASOF LEFT JOIN on the Parquet mart with the TTL condition and the on-demand
           feature in SQL, the same typed pandas frame in input order
feast      plain FeatureStore.get_historical_features(entity_df, feature_service).to_df() with Feast's
           own DuckDB offline store (the synthetic repo's feature_repo_stock dir)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from bench import synth
from bench.compare import compare_frames
from bench.measure import interleaved, measured_call, stats

METHODS = ("platform", "platform_arrow", "raw", "feast")
OUTPUT_COLUMNS = ["customer_id", "event_timestamp", *synth.SERVICE_FEATURES, "days_since_last_purchase"]
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}


def raw_asof_sql(parquet: Path, ttl_seconds: int) -> str:
    """Point-in-time join as Feast defines it: the newest row with snapshot_at <= t, kept only when
    snapshot_at + TTL >= t (otherwise every feature is NULL); days_since_last_purchase computed like
    the registered python UDF (microseconds / 1e6 / 86400)."""
    fresh = f"epoch_us(f.snapshot_at) + {ttl_seconds * 1_000_000} >= epoch_us(e.event_timestamp)"
    features = ",\n  ".join(f"CASE WHEN {fresh} THEN f.{name} END AS {name}" for name in synth.SERVICE_FEATURES)
    return f"""
SELECT e.customer_id, e.event_timestamp,
  {features},
  CASE WHEN {fresh} THEN date_diff('microsecond', f.last_purchase_at, e.event_timestamp) / 1000000.0 / 86400.0
  END AS days_since_last_purchase
FROM entities e
ASOF LEFT JOIN read_parquet('{parquet}') f
  ON e.customer_id = f.customer_id AND e.event_timestamp >= f.snapshot_at
ORDER BY e.__row
"""


class RawRetrieval:
    """The raw baseline: one DuckDB connection, one query, Arrow -> typed pandas."""

    def __init__(self, parquet: Path, ttl_seconds: int):
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB >= 1.1 may plan an ASOF join whose probe side it cannot size (a registered Arrow
        # table) as a nested-loop join: quadratic in practice. Force the real ASOF operator.
        try:
            self.con.execute("SET asof_loop_join_threshold = 0")
        except duckdb.Error:  # older DuckDB: no loop-join fallback to switch off
            pass
        self.sql = raw_asof_sql(parquet, ttl_seconds)

    def __call__(self, entity_df: pd.DataFrame) -> pd.DataFrame:
        entities = pa.table({
            "customer_id": pa.array(entity_df["customer_id"], pa.string()),
            "event_timestamp": pa.array(pd.to_datetime(entity_df["event_timestamp"], utc=True),
                                        pa.timestamp("us", tz="UTC")),
            "__row": pa.array(range(len(entity_df)), pa.int64()),
        })
        self.con.register("entities", entities)
        try:
            table = self.con.execute(self.sql).fetch_arrow_table()
        finally:
            self.con.unregister("entities")
        return table.to_pandas(types_mapper=_PANDAS_TYPES.get)


def _methods(store: Any, stock: Any, entity_df: pd.DataFrame, parquet: Path) -> dict[str, Any]:
    from parity.features import retrieval

    raw = RawRetrieval(parquet, int(synth.TTL.total_seconds()))
    service = stock.get_feature_service(synth.SERVICE)

    def platform() -> pd.DataFrame:
        return retrieval.training_frame(store, entity_df, synth.SERVICE)

    def platform_arrow() -> pa.Table:
        frame = entity_df.copy()
        frame["__row"] = range(len(frame))
        return retrieval.offline_arrow(store, frame, synth.SERVICE)

    def feast() -> pd.DataFrame:
        frame = entity_df.copy()
        frame["request_at"] = frame["event_timestamp"]
        frame["__row"] = range(len(frame))
        return stock.get_historical_features(entity_df=frame, features=service).to_df()

    return {"platform": platform, "platform_arrow": platform_arrow, "raw": lambda: raw(entity_df), "feast": feast}


def _in_row_order(name: str, out: Any) -> pd.DataFrame:
    """Every method's output as a pandas frame in entity-frame order."""
    if isinstance(out, pa.Table):
        out = out.to_pandas(types_mapper=_PANDAS_TYPES.get)
    if "__row" in out.columns:
        out = out.sort_values("__row", kind="stable").reset_index(drop=True)
    return out


def _open(args: dict[str, Any]) -> tuple[Any, Any, pd.DataFrame, Path]:
    """The product store, plain Feast's store (stock repo dir), the entity frame, the mart."""
    from feast import FeatureStore

    from parity.config import Settings
    from parity.features.feature_store import open_store

    root = Path(args["root"])
    store = open_store(Settings(data_dir=root / "data", project_root=root))
    stock = FeatureStore(repo_path=str(root / "feature_repo_stock"))
    entity_df = pd.read_parquet(args["entity_path"])
    return store, stock, entity_df, Path(args["parquet"])


def task_time(args: dict[str, Any]) -> dict[str, Any]:
    """Interleaved timing of every method, inline peak RSS of each first call, correctness."""
    store, stock, entity_df, parquet = _open(args)
    methods = _methods(store, stock, entity_df, parquet)
    first: dict[str, pd.DataFrame] = {}
    inline_memory: dict[str, dict[str, float]] = {}
    for name, fn in methods.items():  # one call each under a VmHWM reset: inline peak growth
        out, measured = measured_call(fn)
        inline_memory[name] = measured
        first[name] = _in_row_order(name, out)
        del out
    times = interleaved(methods, reps=args["reps"], warmup=0)
    checks = [compare_frames(first["platform"], first[other], OUTPUT_COLUMNS, f"platform vs {other}")
              for other in ("raw", "feast", "platform_arrow")]
    checks.append(compare_frames(first["raw"], first["feast"], OUTPUT_COLUMNS, "raw vs feast"))
    base = first["platform"]
    return {
        "rows": len(entity_df),
        "matched_rows": int(base["tenure_days"].notna().sum()),
        "times": {name: stats(values) for name, values in times.items()},
        "samples": times,
        "inline_memory": inline_memory,
        "checks": checks,
        "correct": all(c["ok"] for c in checks),
    }


def task_memory(args: dict[str, Any]) -> dict[str, Any]:
    """One method, once, in a fresh process: wall time and peak RSS growth of the call."""
    store, stock, entity_df, parquet = _open(args)
    fn = _methods(store, stock, entity_df, parquet)[args["method"]]
    _, measured = measured_call(fn)
    return measured
