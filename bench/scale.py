"""`python -m bench.scale` (`make bench PROFILE=scale`): the scale profile against the embedded one
on the same published build, as ratios measured in one run.

For the data folder's published build (`make build`, either engine), both profiles' Feast stores
are applied and materialized — embedded: DuckDB offline, SQLite online, file registry; scale:
Spark offline, Redis online, PostgreSQL registry (`make services-up` first) — then:

1. materialization (the whole online store from empty) into SQLite and into Redis
2. training-set retrieval: `training_frame` over N random (customer, time) rows, DuckDB ASOF vs
   Feast's Spark point-in-time join (warm: the Spark session already started), checked equal
3. online reads by serving's direct readers: SqliteReader vs RedisReader, 1 and 100 customers,
   checked equal, interleaved rounds

Medians of interleaved rounds; nothing is asserted on time. Writes <out>/scale.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from parity.config import Settings, load_settings

SERVICE = "churn_v1"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def interleaved(methods: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per method over `rounds` interleaved rounds (one warm-up each first)."""
    for fn in methods.values():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            seconds[name].append(timed(fn)[0])
    return {name: statistics.median(values) for name, values in seconds.items()}


def fresh_materialize(settings: Settings) -> float:
    """Seconds of a materialization from an empty online store (the marker forgotten, store emptied)."""
    from parity.features.feature_store import materialize, open_store
    from parity.features.materialization import marker_path

    store = open_store(settings)
    views = store.list_feature_views()
    store._get_provider().online_store.teardown(store.config, views, [])  # empty the online store
    marker_path(settings.feast_dir).unlink(missing_ok=True)
    return timed(lambda: materialize(settings))[0]


def entity_rows(settings: Settings, count: int, seed: int = 16) -> pd.DataFrame:
    """`count` random (customer, time) rows: snapshot times plus 0-20 days."""
    marts = pd.read_parquet(settings.marts_dir / "customer_features_weekly.parquet", columns=["customer_id", "snapshot_at"])
    rng = np.random.default_rng(seed)
    picked = marts.iloc[rng.integers(0, len(marts), size=count)]
    offsets = pd.to_timedelta(rng.integers(0, 20 * 24 * 3600, size=count), unit="s")
    return pd.DataFrame({"customer_id": picked["customer_id"].to_numpy(),
                         "event_timestamp": (picked["snapshot_at"] + offsets).to_numpy()})


def run(data_dir: Path | None, rows: int, rounds: int) -> dict[str, Any]:
    from parity.features.feature_store import apply, materialized_until, open_store
    from parity.features.online import open_reader
    from parity.features.retrieval import training_frame

    base = load_settings(data_dir)
    embedded = dataclasses.replace(base, profile="embedded", dbt_target=base.dbt_target)
    scale = dataclasses.replace(base, profile="scale")
    results: dict[str, Any] = {"data_dir": str(base.data_dir), "engine_of_marts": base.dbt_target}
    for settings in (embedded, scale):
        apply(settings)
    results["materialize_s"] = {"sqlite": fresh_materialize(embedded), "redis": fresh_materialize(scale)}
    entities = entity_rows(base, rows)
    duck_store, spark_store = open_store(embedded), open_store(scale)
    results["spark_first_retrieval_s"] = timed(lambda: training_frame(spark_store, entities.head(100), SERVICE))[0]
    retrieval = interleaved({"duckdb": lambda: training_frame(duck_store, entities, SERVICE),
                             "spark": lambda: training_frame(spark_store, entities, SERVICE)}, max(1, rounds // 10))
    pd.testing.assert_frame_equal(training_frame(duck_store, entities, SERVICE), training_frame(spark_store, entities, SERVICE))
    results["retrieval_s"] = {"rows": rows, **retrieval}
    sqlite, redis = open_reader(embedded, SERVICE), open_reader(scale, SERVICE)
    if (sqlite.kind, redis.kind) != ("sqlite", "redis"):
        raise SystemExit(f"readers are {sqlite.kind} and {redis.kind}: {sqlite.fallback_reason or redis.fallback_reason}")
    at = materialized_until(scale)
    ids = entities["customer_id"].drop_duplicates().tolist()
    for n in (1, 100):
        batch = ids[:n]
        if sqlite.read(batch, at).equals(redis.read(batch, at)) is False:
            raise SystemExit(f"SQLite and Redis reads differ for {n} customers")
        results[f"online_{n}_ms"] = {k: v * 1000 for k, v in interleaved(
            {"sqlite": lambda b=batch: sqlite.read_columns(b, at), "redis": lambda b=batch: redis.read_columns(b, at)},
            rounds).items()}
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as one table of ratios."""
    m, r = results["materialize_s"], results["retrieval_s"]
    rows = [("materialization (whole store)", "s", m["sqlite"], m["redis"], "SQLite", "Redis"),
            (f"training_frame, {r['rows']} rows (warm)", "s", r["duckdb"], r["spark"], "DuckDB", "Spark")]
    rows += [(f"online read, {n} customer(s) (serving's reader)", "ms", results[f"online_{n}_ms"]["sqlite"],
              results[f"online_{n}_ms"]["redis"], "SQLite", "Redis") for n in (1, 100)]
    lines = [f"Marts built on {results['engine_of_marts']}; Spark session start + first retrieval: "
             f"{results['spark_first_retrieval_s']:.1f} s", "",
             "| path | unit | embedded | scale | scale / embedded |", "| --- | --- | ---: | ---: | ---: |"]
    for name, unit, a, b, la, lb in rows:
        lines.append(f"| {name} | {unit} | {a:.3g} ({la}) | {b:.3g} ({lb}) | {b / a:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="data folder with a published build (default: $PARITY_DATA_DIR)")
    parser.add_argument("--rows", type=int, default=10_000, help="entity rows of the retrieval measurement")
    parser.add_argument("--rounds", type=int, default=50, help="interleaved rounds of the online reads")
    parser.add_argument("--out", default="bench/results", help="folder for scale.json and scale.md")
    args = parser.parse_args(argv)
    results = run(Path(args.data_dir) if args.data_dir else None, args.rows, args.rounds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(results, indent=1))
    (out / "scale.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
