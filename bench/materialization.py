"""Section 2: materialization of the newest feature rows into the SQLite online store.

platform  parity.features.feature_store.materialize(settings): data end from the Parquet, first-run window
          (end - TTL - 1 s .. end), FeatureStore.materialize (Feast's local compute engine) into
          the product's online store (feature_repo/feature_store.yaml: parity.features.stores.BulkSqliteOnlineStore)
raw       one DuckDB query (latest row per entity in the same window: arg_max over the whole row)
          + Feast's serialized format (entity key v3, ValueProto bytes, value_text, epoch event_ts)
          + one executemany of Feast's own upsert statement in one transaction (Feast's layout:
          a row per entity and feature)
raw_wide  the same query written as the wide layout (parity.features.wide_store: one typed row per
          entity) with one executemany; measured when the product's online store is the wide one
feast     plain FeatureStore(repo).materialize(start, end) over the same window, Feast's own `sqlite`
          online store (the synthetic repo's feature_repo_stock dir, same files)

Every run starts from the pristine (applied, empty) registry and online store; after each
method's first run the online store is dumped as (entity key, event second, feature values) and
compared value for value (Feast's layout and the wide layout hold the same values).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench import synth
from bench.measure import interleaved, measured_call, stats

TABLE = f"{synth.PROJECT}_{synth.VIEW}"
METHODS = ("platform", "raw", "feast")
COLUMNS = ["entity_key", "feature_name", "value", "value_text", "event_ts", "created_ts"]
UPSERT = (f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
          "ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
          + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:]) + ";")


def arrow_of(result: Any) -> Any:
    """DuckDB result -> Arrow table (to_arrow_table on duckdb >= 1.4, fetch_arrow_table before)."""
    return result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()


def first_window(parquet: Path) -> tuple[datetime, datetime]:
    """The platform's first-run window: (end - TTL - 1 s, newest snapshot + 1 s)."""
    import duckdb

    newest = duckdb.connect().execute(f"select max(snapshot_at) from read_parquet('{parquet}')").fetchone()[0]
    end = newest.astimezone(timezone.utc) + timedelta(seconds=1)
    return end - synth.TTL - timedelta(seconds=1), end


def _entity_key(customer_id: str) -> bytes:
    """Feast's entity key serialization v3 for the single string join key customer_id."""
    import struct

    name, value = b"customer_id", customer_id.encode("utf8")
    return struct.pack("<III", 1, 2, len(name)) + name + struct.pack("<II", 2, len(value)) + value


def raw_materialize(parquet: Path, db_path: Path, start: datetime, end: datetime) -> int:
    """Latest row per entity in [start, end] via DuckDB, serialized exactly as Feast does, upserted
    into Feast's SQLite table in one transaction. Returns the number of entities written."""
    import duckdb
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import NULL_TIMESTAMP_INT_VALUE

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # arg_max over the whole row: plain arg_max(col, ts) would skip NULLs and pick an older value
    table = arrow_of(con.execute(
        f"SELECT unnest(arg_max(f, f.snapshot_at)) FROM read_parquet('{parquet}') f "
        "WHERE f.snapshot_at >= $start AND f.snapshot_at <= $end GROUP BY f.customer_id",
        {"start": start, "end": end}))
    keys = [_entity_key(k) for k in table.column("customer_id").to_pylist()]
    event_ts = [None if v is None else v // 1_000_000
                for v in table.column("snapshot_at").cast("int64").to_pylist()]
    columns = []
    for name in synth.VIEW_FEATURES:
        column = table.column(name)
        kind = str(column.type)
        if kind.startswith("timestamp"):
            # Feast stores a missing timestamp as its NaT sentinel, not as an empty value
            null = Value(unix_timestamp_val=NULL_TIMESTAMP_INT_VALUE).SerializeToString()
            encoded = [(null, None) if v is None else (Value(unix_timestamp_val=v // 1_000_000).SerializeToString(), None)
                       for v in column.cast("int64").to_pylist()]
        else:
            field = {"string": "string_val", "int64": "int64_val", "double": "double_val"}[kind]
            encoded = [(b"", None) if v is None else (Value(**{field: v}).SerializeToString(), str(v))
                       for v in column.to_pylist()]
        columns.append((name, encoded))
    rows = [(keys[i], name, encoded[i][0], encoded[i][1], event_ts[i], None)
            for i in range(len(keys)) for name, encoded in columns]
    db = sqlite3.connect(db_path)
    try:
        with db:
            db.executemany(UPSERT, rows)
    finally:
        db.close()
    return len(keys)


def raw_materialize_wide(parquet: Path, db_path: Path, start: datetime, end: datetime) -> int:
    """The same latest rows written as the wide layout (parity.features.wide_store): one typed row per
    entity, one executemany of an upsert in one transaction. The floor for the wide store."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = arrow_of(con.execute(
        f"SELECT unnest(arg_max(f, f.snapshot_at)) FROM read_parquet('{parquet}') f "
        "WHERE f.snapshot_at >= $start AND f.snapshot_at <= $end GROUP BY f.customer_id",
        {"start": start, "end": end}))
    keys = [_entity_key(k) for k in table.column("customer_id").to_pylist()]
    event_us = table.column("snapshot_at").cast("int64").to_pylist()
    columns, names = [], []
    for name in synth.VIEW_FEATURES:
        column = table.column(name)
        kind = str(column.type)
        if kind.startswith("timestamp"):
            values, kind = [None if v is None else v // 1_000_000 for v in column.cast("int64").to_pylist()], "UNIX_TIMESTAMP"
        else:
            values, kind = column.to_pylist(), {"string": "STRING", "int64": "INT64", "double": "DOUBLE"}[kind]
            if kind == "DOUBLE":
                values = [None if v is not None and v != v else v for v in values]
        columns.append(values)
        names.append(f'"{name}:{kind}"')
    sql = (f'INSERT OR REPLACE INTO "{TABLE}__wide" (entity_key, event_ts, created_ts, {", ".join(names)}) '
           f"VALUES ({', '.join('?' * (3 + len(names)))})")
    db = sqlite3.connect(db_path)
    try:
        with db:
            db.executemany(sql, zip(keys, event_us, [None] * len(keys), *columns))
    finally:
        db.close()
    return len(keys)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _feast_rows(db: sqlite3.Connection) -> dict[bytes, tuple[int, dict[str, Any]]]:
    """Feast's layout as {entity key: (event second, {feature: python value})} (NaT/empty: None)."""
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import NULL_TIMESTAMP_INT_VALUE

    out: dict[bytes, tuple[int, dict[str, Any]]] = {}
    value = Value()
    for key, name, blob, event_ts in db.execute(f"SELECT entity_key, feature_name, value, event_ts FROM {TABLE}"):
        value.ParseFromString(blob)
        kind = value.WhichOneof("val")
        plain = None if kind is None else getattr(value, kind)
        if kind == "unix_timestamp_val" and plain == NULL_TIMESTAMP_INT_VALUE:
            plain = None
        out.setdefault(key, (int(event_ts), {}))[1][name] = plain
    return out


def _wide_rows(db: sqlite3.Connection) -> dict[bytes, tuple[int, dict[str, Any]]]:
    """The wide layout in the same form (event micros -> seconds, as Feast's layout keeps them)."""
    cursor = db.execute(f'SELECT * FROM "{TABLE}__wide"')
    names = [d[0].split(":")[0] for d in cursor.description[3:]]
    return {row[0]: (row[1] // 1_000_000, dict(zip(names, row[3:]))) for row in cursor}


def dump(db_path: Path) -> dict[str, Any]:
    """The online store's content, whichever layout holds it, as sorted (entity key, event second,
    [(feature, value)...]) rows: the layouts compare value for value; a digest of it."""
    db = sqlite3.connect(db_path)
    try:
        tables = _tables(db)
        content: dict[bytes, tuple[int, dict[str, Any]]] = {}
        if TABLE in tables:
            content.update(_feast_rows(db))
        if f"{TABLE}__wide" in tables:
            wide = _wide_rows(db)
            if content and wide:
                raise RuntimeError("both online layouts hold rows: the store was not reset between methods")
            content.update(wide)
        stored = db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] if TABLE in tables else 0
        stored += db.execute(f'SELECT count(*) FROM "{TABLE}__wide"').fetchone()[0] if f"{TABLE}__wide" in tables else 0
    finally:
        db.close()
    rows = sorted((key, at, sorted(values.items())) for key, (at, values) in content.items())
    digest = hashlib.sha256(repr(rows).encode()).hexdigest()
    return {"rows": len(rows), "stored_rows": stored, "entities": len(rows), "sha256": digest, "_rows": rows}


class Setup:
    """Paths and the per-run reset (pristine registry + empty online store, new inodes)."""

    def __init__(self, args: dict[str, Any]):
        from parity.config import Settings

        self.root = Path(args["root"])
        self.parquet = Path(args["parquet"])
        self.settings = Settings(data_dir=self.root / "data", project_root=self.root)
        self.stock_repo = self.root / "feature_repo_stock"  # Feast's own sqlite online store
        self.registry = self.root / "data" / "feast" / "registry.db"
        self.online_db = self.root / "data" / "feast" / "online_store.db"
        self.pristine = self.root / "data" / "pristine"
        self.start, self.end = first_window(self.parquet)

    def reset(self, _name: str = "") -> None:
        import gc

        gc.collect()  # close connections of FeatureStore objects from the previous run
        for name, target in (("registry.db", self.registry), ("online_store.db", self.online_db)):
            tmp = target.with_suffix(".tmp")
            shutil.copy2(self.pristine / name, tmp)
            os.replace(tmp, target)

    def methods(self) -> dict[str, Any]:
        from feast import FeatureStore

        from parity.features.feature_store import materialize

        def platform() -> Any:
            return materialize(self.settings)

        def feast() -> Any:
            store = FeatureStore(repo_path=str(self.stock_repo))
            store.materialize(start_date=self.start, end_date=self.end, feature_views=[synth.VIEW])

        def raw() -> Any:
            return raw_materialize(self.parquet, self.online_db, self.start, self.end)

        methods = {"platform": platform, "raw": raw, "feast": feast}
        if f"{TABLE}__wide" in self.pristine_tables():  # the product's wide store: its own floor too
            methods["raw_wide"] = lambda: raw_materialize_wide(self.parquet, self.online_db, self.start, self.end)
        return methods

    def pristine_tables(self) -> set[str]:
        db = sqlite3.connect(self.pristine / "online_store.db")
        try:
            return _tables(db)
        finally:
            db.close()


def _check(dumps: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []
    pairs = [("platform", "raw"), ("platform", "feast"), ("raw", "feast")]
    pairs += [("platform", "raw_wide")] if "raw_wide" in dumps else []
    for left, right in pairs:
        a, b = dumps[left]["_rows"], dumps[right]["_rows"]
        differing = sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))
        first = next((f"{x!r} vs {y!r}" for x, y in zip(a, b) if x != y), None)
        checks.append({"pair": f"{left} vs {right}", "rows": [len(a), len(b)], "mismatches": differing,
                       "first": [first[:400]] if first else [], "ok": differing == 0 and len(a) > 0})
    return checks


def task_time(args: dict[str, Any]) -> dict[str, Any]:
    """Inline peak RSS + a full dump of each method's first run, then interleaved timing."""
    setup = Setup(args)
    methods = setup.methods()
    dumps: dict[str, dict[str, Any]] = {}
    inline_memory = {}
    for name, fn in methods.items():
        setup.reset()
        _, inline_memory[name] = measured_call(fn)
        dumps[name] = dump(setup.online_db)
    times = interleaved(methods, reps=args["reps"], warmup=0, before=setup.reset)
    checks = _check(dumps)
    return {
        "window": [setup.start.isoformat(), setup.end.isoformat()],
        "online_rows": dumps["platform"]["stored_rows"],
        "online_rows_by_method": {name: d["stored_rows"] for name, d in dumps.items()},
        "entities_written": dumps["platform"]["entities"],
        "times": {name: stats(values) for name, values in times.items()},
        "samples": times,
        "inline_memory": inline_memory,
        "checks": checks,
        "correct": all(c["ok"] for c in checks),
    }


def task_memory(args: dict[str, Any]) -> dict[str, Any]:
    """One method once in a fresh process (after a reset): wall time and peak RSS growth."""
    setup = Setup(args)
    fn = setup.methods()[args["method"]]
    setup.reset()
    _, measured = measured_call(fn)
    return measured
