"""Incremental builds (`python -m parity build --incremental`): day N built in full (the session's
`built_data`), a new day's drop appended, added incrementally to a copy of day N's warehouse, and
compared with a full build of the same raw files (same folder) by EXCEPT ALL both ways on every
staging, quarantine, intermediate and mart table. The drop is the data an incremental feature
mart must not get wrong: new records, a late row and a correction per client (datagen_day), on a
day that crosses a point of the weekly grid (a new snapshot for every customer), plus records
that change old snapshots -- an arrival backdated into the past, a changed customer attribute
(taken onto every snapshot), and a purchase of the client without an arrival column (dune, on
its own timeline), whose derived arrival is a monthly drop already past. Also: a rewritten raw
file is refused (the build falls back to everything) rather than added to."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from parity.config import Settings, load_settings
from parity.ingest import incremental
from parity.ingest.build_config import load_build_config
from parity.ingest.datagen_day import append_day
from parity.ingest.pipeline import BuildResult, run_build
from parity.ingest.warehouse import query
from tests.conftest import build

pytestmark = pytest.mark.data


def _copy_data(settings: Settings, to: Path) -> Settings:
    """A private copy of a data folder: raw drops, builds and the published link."""
    shutil.copytree(settings.data_dir, to, symlinks=True, ignore=shutil.ignore_patterns("build.lock", "feast*"))
    return load_settings(to)


def _build_incremental(settings: Settings) -> BuildResult:
    return run_build(settings, load_build_config(), capture=True, incremental=True)


def _newest_lines(folder: Path) -> dict[str, int]:
    """The last record's line number of each client's transaction staging table in a build."""
    return {client: int(query(None, f"select max(line_number) as n from staging.stg_{client}__transactions",
                              folder=folder)["n"].iloc[0]) for client in ("acme", "bolt", "cora")}


def _jsonl(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _append_line(path: Path, line: str, encoding: str = "utf-8") -> None:
    with path.open("a", encoding=encoding, newline="") as fh:
        fh.write(line + "\n")


def _mart_rows(folder: Path, customer_id: str) -> dict:
    """A customer's feature rows in a build, by snapshot time."""
    rows = query(None, f"select * from read_parquet('{folder}/marts/customer_features_weekly.parquet') "
                 f"where customer_id = '{customer_id}'", folder=folder)
    return {r["snapshot_at"]: r for r in rows.to_dict("records")}


def append_changes(raw_dir: Path, day: date, customer_ids: set[str]) -> dict[str, str]:
    """Records whose effect reaches back before `day` (see the module docstring), for customers
    with feature rows; returns the customer id of each case."""
    midnight = datetime.combine(day, time(0), tzinfo=timezone.utc)
    iso = "%Y-%m-%dT%H:%M:%S+00:00"
    # bolt: a purchase that happened 30 days ago and arrived 20 days ago (a backdated arrival)
    purchases = [r for r in _jsonl(raw_dir / "bolt" / "transactions.jsonl")
                 if r.get("kind") == "purchase" and f"bolt:{r.get('customer')}" in customer_ids
                 and isinstance(r.get("amount_cents"), int) and r["amount_cents"] > 0]
    backdated = {**purchases[len(purchases) // 2], "txn_id": f"bt-backdated-{day:%Y%m%d}",
                 "ts": (midnight - timedelta(days=30)).strftime(iso),
                 "received_at": (midnight - timedelta(days=20)).strftime(iso)}
    _append_line(raw_dir / "bolt" / "transactions.jsonl", json.dumps(backdated, separators=(",", ":")))
    # bolt: a customer re-sent with another country (the newest record is taken onto every snapshot)
    customers = [r for r in _jsonl(raw_dir / "bolt" / "customers.jsonl")
                 if f"bolt:{r.get('id')}" in customer_ids and r.get("country") in ("US", "CA")]
    moved = customers[len(customers) // 3]
    moved = {**moved, "country": "CA" if moved["country"] == "US" else "US",
             "received_at": (midnight + timedelta(hours=8)).strftime(iso)}
    _append_line(raw_dir / "bolt" / "customers.jsonl", json.dumps(moved, separators=(",", ":")))
    # dune (no arrival column: a purchase arrives with the next monthly drop): a purchase in the
    # middle of its log, so its derived arrival is a drop long past
    # (fixed width: customer [0, 14), purchased_at [14, 30), amount [31, 45), category from 46)
    path = raw_dir / "dune" / "purchases.txt"
    dated = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            at = datetime.strptime(line[14:30], "%d.%m.%Y %H:%M")
        except ValueError:
            continue
        if len(line) > 46 and f"dune:{line[:14].strip()}" in customer_ids and line[31:45].strip().replace(".", "").isdigit():
            dated.append((at, line))
    template = sorted(dated)[len(dated) // 2][1]
    _append_line(path, f"{template[:31]}{'12.34':>14}{template[45:]}")
    return {"backdated": f"bolt:{backdated['customer']}", "moved": f"bolt:{moved['id']}",
            "dune": f"dune:{template[:14].strip()}"}


@pytest.mark.heavy  # an incremental and a full build: make test-heavy
def test_incremental_build_equals_full_rebuild(built_data: Settings, tmp_path: Path) -> None:
    day_n = _copy_data(built_data, tmp_path / "incremental")
    base = day_n.published_dir.resolve()
    before = _newest_lines(base)
    customers = set(query(None, "select distinct customer_id from read_parquet("
                            f"'{base}/marts/customer_features_weekly.parquet')", folder=base)["customer_id"])
    old_end = query(None, f"select max(snapshot_at) as t from read_parquet('{base}/marts/customer_features_weekly.parquet')",
                    folder=base)["t"].iloc[0]
    # the next grid point's day: every customer of a client with a daily drop gets a new snapshot
    day = (old_end + timedelta(days=7)).date()
    cases = append_changes(day_n.raw_dir, day, customers)
    appended = append_day(day_n.raw_dir, day, records_per_client=5)
    appended["bolt"] += 1  # the backdated record

    added = _build_incremental(day_n)  # day N was built in another folder: its rows are re-pointed
    assert added.mode == "incremental"
    rebuilt = build(day_n)  # everything, from the same raw files in the same folder
    assert rebuilt.mode == "full"

    diffs = incremental.differences(added.build, rebuilt.build)
    assert {"staging.stg_acme__transactions", "marts/customer_features_weekly", "marts.reconciliation",
            "quarantine.quarantine_bolt"} <= set(diffs)
    assert {name: d for name, d in diffs.items() if d != (0, 0)} == {}

    # only the appended records (and the old last record, re-read) were parsed again
    for client, line in before.items():
        compiled = next((added.build / "run" / "compiled").rglob(f"stg_{client}__transactions.sql")).read_text()
        assert f"where parsed.line_number >= {line}\n" in compiled  # a constant: pushed below the parsing
        reparsed = query(None, f"select count(*) as n from staging.stg_{client}__transactions "
                         f"where line_number >= {line}", folder=added.build)["n"].iloc[0]
        assert reparsed == appended[client] + 1
    # the late rows and the corrections are in the canonical transactions
    versions = query(None, "select transaction_id, is_correction from intermediate.int_transactions_versioned "
                     f"where loaded_at >= timestamptz '{day.isoformat()} 00:00:00+00'", folder=added.build)
    assert versions["transaction_id"].str.contains("late").sum() == 3
    assert versions["is_correction"].sum() >= 3

    # not vacuous: the cases changed snapshots the previous build had, and only their customers
    # (and the day's) were computed whole; every other customer got the new grid point only
    changes = query(None, "select customer_id, is_changed, is_recomputed_whole, change_reason, rebuild_week "
                    "from intermediate.int_customer_feature_changes", folder=added.build).set_index("customer_id")
    reasons = {"backdated": "transactions", "moved": "attributes", "dune": "transactions"}
    for case, customer in cases.items():
        assert changes.loc[customer, "change_reason"] == reasons[case], case
        assert changes.loc[customer, "is_recomputed_whole"], case
        old, new = _mart_rows(base, customer), _mart_rows(added.build, customer)
        differing = [t for t in old if t in new and any(
            old[t][k] != new[t][k] and not (old[t][k] != old[t][k] and new[t][k] != new[t][k]) for k in old[t])]
        assert differing and min(differing) < old_end, (case, customer)  # an old snapshot changed
    # the day's own records (arrived after every old snapshot) change a customer's inputs, not its
    # old rows: such a customer gets the new grid point only, like an unchanged one
    after_end = changes[changes["is_changed"] & ~changes["is_recomputed_whole"]]
    assert len(after_end) > 0 and set(after_end["change_reason"]) == {"transactions"}
    unchanged = changes[~changes["is_recomputed_whole"] & changes["rebuild_week"].notna()]
    assert len(unchanged) > 0.8 * len(customers)
    daily = unchanged.index.str.split(":").str[0] != "dune"  # dune's monthly log: no new snapshot
    assert set(unchanged.loc[daily, "rebuild_week"]) == {0}
    assert set(unchanged.loc[~daily, "rebuild_week"]) == {-1}
    assert changes["is_changed"].sum() < 0.2 * len(customers)
    info = json.loads((added.build / "build.json").read_text())
    assert info["feature_customers"]["new grid points only"] == int(daily.sum())


def test_rewritten_raw_file_is_refused(built_data: Settings, tmp_path: Path) -> None:
    day_n = _copy_data(built_data, tmp_path / "data")
    base = day_n.published_dir.resolve()
    # the manifest a parse in the copied folder gives: the sources' files named there
    manifest = tmp_path / "manifest.json"
    text = (base / "target" / "manifest.json").read_text()
    manifest.write_text(text.replace(str(built_data.data_dir), str(day_n.data_dir)))
    assert incremental.refusal(day_n, base, manifest, ()) is None
    path = day_n.raw_dir / "acme" / "transactions.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], lines[2], lines[1], *lines[3:]]))
    reason = incremental.refusal(day_n, base, manifest, ())
    assert reason is not None and "transactions.csv" in reason and "rewritten" in reason
    assert "--vars" in (incremental.refusal(day_n, base, manifest, ("--vars", "{a: 1}")) or "")
    spark = dataclasses.replace(day_n, dbt_target="spark")
    assert "DuckDB-only" in (incremental.refusal(spark, base, manifest, ()) or "")
