"""Feature freshness: how old a customer's feature row may be to score on, each client's
watermark, and the verdict serving and batch both give ("ok" or "stale_features").

The limit has one home, dbt's ``vars.max_feature_age_days`` (dbt_project.yml); the watermark is
the ``client_watermarks`` mart (``<marts_dir>/client_watermarks.parquet``): the time up to which a
client's data is known complete. The watermark is reported, never required: when the mart is
absent (not built yet) staleness is still judged by the feature row's own age.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from parity.config import PROJECT_ROOT, ProjectConfigError, dbt_vars

LIMIT_VAR = "max_feature_age_days"
WATERMARKS_FILE = "client_watermarks.parquet"
OK, STALE, NO_FEATURES, UNKNOWN = "ok", "stale_features", "no_features", "unknown_customer"


def max_feature_age(project_root: Path = PROJECT_ROOT) -> timedelta:
    """``vars.max_feature_age_days`` of dbt_project.yml as a timedelta (> 0, finite)."""
    value = dbt_vars(project_root).get(LIMIT_VAR)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ProjectConfigError(
            f"{project_root / 'dbt_project' / 'dbt_project.yml'}: `vars.{LIMIT_VAR}` must be a positive "
            f"number of days; got {value!r}")
    return timedelta(days=float(value))


def client_of(customer_id: str) -> str:
    """The client of a platform key '<client>:<client customer id>' (the key dbt builds)."""
    return customer_id.split(":", 1)[0]


@dataclass(frozen=True)
class Watermarks:
    """Each client's watermark (UTC) as the mart says, or why it is unknown."""

    by_client: Mapping[str, datetime]
    problem: str | None = None
    source_mtime: float | None = None

    def of(self, client: str) -> datetime | None:
        return self.by_client.get(client)


def read_watermarks(marts_dir: Path) -> Watermarks:
    """The ``client_watermarks`` mart (client_id, watermark_at); empty with a reason when absent
    or unreadable — a missing watermark never fails a prediction."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = marts_dir / WATERMARKS_FILE
    try:
        mtime = path.stat().st_mtime
        columns = ["client_id", "watermark_at"]
        # a single file is read without pyarrow's dataset API, which imports pandas (~0.15 s
        # of the service's start); a folder of parts needs it
        table = pq.read_table(path, columns=columns) if path.is_dir() else pq.ParquetFile(path).read(columns=columns)
    except FileNotFoundError:
        return Watermarks({}, f"{path} does not exist (client watermarks not built): judged by feature age only")
    except Exception as err:  # pyarrow raises several types; any of them means "unknown"
        return Watermarks({}, f"cannot read {path}: {err}")
    found: dict[str, datetime] = {}
    stamps = table.column("watermark_at")
    if pa.types.is_timestamp(stamps.type) and stamps.type.tz is not None:
        # the same instants as naive UTC datetimes (made UTC below), viewed without a copy: pyarrow
        # imports pandas to convert a zoned timestamp to Python, and a cast its compute module
        # (~0.15 s and ~0.05 s of the service's start)
        naive = pa.timestamp(stamps.type.unit)
        stamps = pa.chunked_array([chunk.view(naive) for chunk in stamps.chunks], type=naive)
    for client, at in zip(table.column("client_id").to_pylist(), stamps.to_pylist()):
        if client is not None and isinstance(at, datetime):
            found[client] = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    return Watermarks(found, None, mtime)


def age_days(request_at: datetime, features_at: datetime | None) -> float | None:
    """Days from the feature row's event time to the request time (None when unknown)."""
    if features_at is None:
        return None
    return (request_at - features_at).total_seconds() / 86400.0


def verdict(age: float | None, limit: timedelta) -> str:
    """'stale_features' when the row is older than the limit, else 'ok' (unknown age: 'ok', since
    a store that cannot say when a row was written is judged as before)."""
    return STALE if age is not None and age > limit.total_seconds() / 86400.0 else OK


def stale_detail(age: float, limit: timedelta, watermark: datetime | None) -> str:
    """One sentence for a stale row: its age, the limit and the client's watermark."""
    known = (f"the client's data is complete up to {watermark.isoformat()}" if watermark is not None
             else "the client's watermark is unknown")
    return (f"not scored: the newest features are {age:.1f} days old (limit "
            f"{limit.total_seconds() / 86400.0:g}); {known}")


def newest_feature_times(store: Any, service_name: str, customer_ids: Sequence[str],
                         as_of: datetime) -> list[datetime | None]:
    """Per customer, the event time of its newest feature row at or before `as_of` in the
    service's batch sources (Parquet marts); the oldest over the views that have one (the stalest
    part decides), None when no view has a row. None for every customer when a source is not a local
    Parquet file (its age is then unknown)."""
    import duckdb
    import pyarrow as pa

    from parity.features.materialization import parquet_sql
    from parity.features.retrieval import ENTITY_KEY, get_service, resolve_service

    plan = resolve_service(store, get_service(store, service_name))
    sources = []
    for name in plan.views:
        source = store.get_feature_view(name).batch_source
        path = getattr(source, "path", None)
        if not path or "://" in path or not source.timestamp_field:
            return [None] * len(customer_ids)
        sources.append((path, source.timestamp_field))
    if not sources:
        return [None] * len(customer_ids)
    keys = pa.table({ENTITY_KEY: pa.array(list(customer_ids), pa.string())})
    quote = '"{}"'.format
    selects = [
        f"select {quote(ENTITY_KEY)} as k, max({quote(ts)}) as t from {parquet_sql(path)} "
        f"where {quote(ts)} <= ? and {quote(ENTITY_KEY)} in (select {quote(ENTITY_KEY)} from __keys) group by 1"
        for path, ts in sources]
    sql = "select k, min(t) from (" + " union all ".join(selects) + ") group by k"

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("__keys", keys)
        rows = con.execute(sql, [as_of] * len(sources)).fetchall()
    finally:
        con.close()
    times = {k: (t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t) for k, t in rows}
    return [times.get(cid) for cid in customer_ids]
