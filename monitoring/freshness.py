"""Freshness: how old the newest feature row and each client's newest raw data are."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from monitoring.config import FreshnessConfig

LOADED_SQL = """
select client_id, max(loaded_at) as newest_loaded_at
from (
    select client_id, loaded_at from intermediate.int_transactions_versioned
    union all
    select client_id, loaded_at from intermediate.int_customers_deduplicated
)
group by client_id
"""


def age_days(then: datetime | pd.Timestamp | None, now: datetime) -> float:
    """Days from `then` to `now` (NaN when unknown)."""
    if then is None or pd.isna(then):
        return float("nan")
    return (pd.Timestamp(now) - pd.Timestamp(then)).total_seconds() / 86400.0


def newest_feature_at(marts_dir: Path, messages: list[str]) -> pd.Timestamp | None:
    """max(snapshot_at) of the feature mart."""
    import duckdb

    path = marts_dir / "customer_features_weekly.parquet"
    if not path.exists():
        messages.append(f"feature mart {path} does not exist: feature freshness unknown (run `make build`)")
        return None
    try:
        value = duckdb.connect().execute(f"select max(snapshot_at) from read_parquet('{path}')").fetchone()[0]
    except duckdb.Error as err:
        messages.append(f"cannot read {path}: {str(err).splitlines()[0]}; feature freshness unknown")
        return None
    return pd.Timestamp(value).tz_convert("UTC") if value is not None else None


def declared_raw_files(manifest_path: Path) -> dict[str, list[Path]]:
    """Per client, the raw files its dbt sources declare (`meta.file`, globs expanded): where the
    drops really are, whatever folder they sit in. Empty when dbt has not parsed the project."""
    import json

    from parity.ingest.preflight import sources_from_manifest

    try:
        sources = sources_from_manifest(json.loads(manifest_path.read_text()))
    except (OSError, ValueError, KeyError):
        return {}
    found: dict[str, list[Path]] = {}
    for source in sources:
        pattern = str(source.file)
        files = [Path(p) for p in sorted(glob.glob(pattern))] if glob.has_magic(pattern) else [source.file]
        found.setdefault(source.client, []).extend(f for f in files if f.is_file())
    return found


def raw_files(raw_dir: Path, clients: Sequence[str], messages: list[str],
              declared: dict[str, list[Path]] | None = None) -> pd.DataFrame:
    """Per client: newest raw data file and its modification time: the files under
    raw_dir/<client> (bookkeeping files skipped), else those its dbt sources declare elsewhere
    (`declared_raw_files`), so a drop kept in another folder is not "no raw files"."""
    rows = []
    for client in clients:
        folder = raw_dir / client
        files = [p for p in folder.glob("*") if p.is_file() and not p.name.startswith(("_", "."))] if folder.is_dir() else []
        files = files or (declared or {}).get(client, [])
        if not files:
            messages.append(f"client '{client}': no raw files declared by its dbt sources or under {folder}")
            rows.append({"client_id": client, "newest_raw_file": None, "raw_file_modified_at": pd.NaT})
            continue
        newest = max(files, key=lambda p: p.stat().st_mtime)
        rows.append({
            "client_id": client,
            "newest_raw_file": newest.name,
            "raw_file_modified_at": pd.Timestamp(datetime.fromtimestamp(newest.stat().st_mtime, timezone.utc)),
        })
    return pd.DataFrame(rows, columns=["client_id", "newest_raw_file", "raw_file_modified_at"])


def newest_loaded(build: Path, messages: list[str]) -> pd.DataFrame:
    """Per client: newest loaded_at (arrival time) of any canonical customer or transaction, from
    the warehouse of the build folder `build` (the published one)."""
    import duckdb

    from parity.ingest import warehouse

    empty = pd.DataFrame(columns=["client_id", "newest_loaded_at"])
    where = warehouse.location(build)
    if not warehouse.exists(build):
        messages.append(f"warehouse {where} does not exist: arrival freshness unknown")
        return empty
    try:
        with warehouse.connect(build) as con:
            frame = con.execute(LOADED_SQL).df()
    except duckdb.Error as err:
        messages.append(f"cannot read arrivals from {where}: {str(err).splitlines()[0]}")
        return empty
    frame["newest_loaded_at"] = pd.to_datetime(frame["newest_loaded_at"], utc=True)
    return frame


def freshness_table(
    raw: pd.DataFrame, loaded: pd.DataFrame, now: datetime, config: FreshnessConfig
) -> pd.DataFrame:
    """Per client: ages of the newest raw file and arrival, lag behind the freshest client, status."""
    table = raw.merge(loaded, on="client_id", how="outer")
    table["raw_file_age_days"] = [age_days(t, now) for t in table["raw_file_modified_at"]]
    table["loaded_at_age_days"] = [age_days(t, now) for t in table["newest_loaded_at"]]
    freshest = table["newest_loaded_at"].max()
    table["lag_behind_freshest_days"] = [age_days(t, freshest) if pd.notna(freshest) else float("nan")
                                         for t in table["newest_loaded_at"]]
    problems = []
    for row in table.itertuples():
        found = []
        if pd.isna(row.raw_file_modified_at):
            found.append("no raw files")
        elif row.raw_file_age_days > config.max_raw_file_age_days:
            found.append(f"newest raw file {row.raw_file_age_days:.1f} days old")
        if pd.isna(row.newest_loaded_at):
            found.append("nothing loaded")
        else:
            if row.loaded_at_age_days > config.max_loaded_at_age_days:
                found.append(f"newest arrival {row.loaded_at_age_days:.1f} days old")
            if row.lag_behind_freshest_days > config.max_client_lag_days:
                found.append(f"no new data since {row.newest_loaded_at:%Y-%m-%d %H:%M} "
                             f"({row.lag_behind_freshest_days:.1f} days behind the freshest client)")
        problems.append("; ".join(found))
    table["problem"] = problems
    table["status"] = ["stale" if p else "ok" for p in problems]
    return table.sort_values("client_id").reset_index(drop=True)
