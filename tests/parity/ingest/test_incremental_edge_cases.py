"""Incremental builds on drops the generator never makes: each case appends to a copy of the
session's day-N build (`built_data`), adds it incrementally, builds the same raw files in full in
the same folder and compares every staging, quarantine, intermediate and mart table (EXCEPT ALL
both ways, parity.ingest.incremental.differences). Shapes: a client whose appended day holds only
rejected records, orphans that find their customer, a customer re-sent with an earlier signup, a
re-sent copy of a loaded transaction, a correction of a correction, a transaction re-sent under
another customer, a dune purchase at the very
start of its log (derived arrival far in the past), an append of nothing, an append that ends
mid-record (open quote, no final newline: the pre-flight refuses the build, nothing published)
and is completed by the next drop, and an erasure between builds (refused)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from parity import suppression
from parity.config import Settings
from parity.ingest import incremental
from parity.ingest.build_config import load_build_config
from parity.ingest.datagen_day import append_day
from parity.ingest.pipeline import BuildFailed, BuildResult, run_build
from parity.ingest.warehouse import query
from tests.conftest import build
from tests.parity.ingest.test_incremental import _build_incremental as _incremental
from tests.parity.ingest.test_incremental import _copy_data, _jsonl

pytestmark = [pytest.mark.heavy, pytest.mark.data]

ISO = "%Y-%m-%dT%H:%M:%S+00:00"


def _append(path: Path, text: str, encoding: str = "utf-8") -> None:
    with path.open("a", encoding=encoding, newline="") as fh:
        fh.write(text)


def _line(record: dict) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def _refused(result: BuildResult) -> str | None:
    """Why a build asked to be incremental built everything (build.json)."""
    return json.loads((result.build / "build.json").read_text()).get("incremental_refused")


def _assert_equal_to_full(settings: Settings, added: BuildResult) -> None:
    """The incremental build's tables equal a full build's of the same raw files."""
    assert added.mode == "incremental", _refused(added)
    rebuilt = build(settings)
    assert rebuilt.mode == "full"
    diffs = incremental.differences(added.build, rebuilt.build)
    assert "marts/customer_features_weekly" in diffs
    assert {name: d for name, d in diffs.items() if d != (0, 0)} == {}


def _end(folder: Path) -> datetime:
    return query(None, f"select max(snapshot_at) as t from read_parquet('{folder}/marts/customer_features_weekly.parquet')",
                 folder=folder)["t"].iloc[0].to_pydatetime()


def _append_shapes(raw: Path, day: date) -> dict[str, str]:
    """The data-shape cases (module docstring); returns the customer id each case touches."""
    noon = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=12)
    bolt_tx, bolt_cu = raw / "bolt" / "transactions.jsonl", raw / "bolt" / "customers.jsonl"
    customers = {r["id"]: r for r in _jsonl(bolt_cu) if isinstance(r.get("id"), str)}
    txns = _jsonl(bolt_tx)
    # orphans that find their customer: a customer record for an id whose purchases came first
    orphans = [r for r in txns if re.fullmatch(r"b-\d+", str(r.get("customer"))) and r["customer"] not in customers]
    orphan = orphans[0]["customer"]
    template = next(r for r in customers.values() if re.fullmatch(r"b-\d+", r["id"]))
    _append(bolt_cu, _line({**template, "id": orphan, "email": f"found.{orphan}@gmail.com",
                            "signed_up_at": "2024-06-10T09:00:00Z", "received_at": noon.strftime(ISO)}))
    # a customer re-sent with an earlier signup date (earlier on the grid)
    known = [r for r in customers.values() if r["id"].startswith("b-") and r.get("signed_up_at", "") > "2025"]
    earlier = known[len(known) // 2]
    _append(bolt_cu, _line({**earlier, "signed_up_at": "2024-06-05T10:00:00Z",
                            "received_at": (noon + timedelta(hours=1)).strftime(ISO)}))
    # an exact copy of an already-loaded transaction, re-sent
    buyers = [r for r in txns if r.get("customer") in customers and r["customer"].startswith("b-")
              and r.get("kind") == "purchase" and isinstance(r.get("amount_cents"), int) and r["amount_cents"] > 0]
    duplicate = buyers[len(buyers) // 3]
    _append(bolt_tx, _line(duplicate))
    # a correction of a correction: a transaction already corrected, corrected twice more
    seen: dict[str, list[dict]] = {}
    for r in buyers:
        seen.setdefault(r["txn_id"], []).append(r)
    corrected = next(v for v in seen.values() if len(v) > 1 and len({x["amount_cents"] for x in v}) > 1)[-1]
    for n, hours in ((1, 2), (2, 3)):
        _append(bolt_tx, _line({**corrected, "amount_cents": corrected["amount_cents"] + 100 * n,
                                "received_at": (noon + timedelta(hours=hours)).strftime(ISO)}))
    # a loaded transaction re-sent under another customer (moves from one customer to another)
    moved = buyers[2 * len(buyers) // 3]
    receiver = next(r["id"] for r in known if r["id"] not in (moved["customer"], earlier["id"]))
    _append(bolt_tx, _line({**moved, "customer": receiver, "received_at": (noon + timedelta(hours=4)).strftime(ISO)}))
    # cora's day: only records staging refuses (unparseable date, unknown currency, no client id)
    orders = raw / "cora" / "orders.csv"
    stamp = noon.strftime("%Y-%m-%d %H:%M:%S")
    _append(orders, f"OR-X000001,CR-00025,not a date,12.00,GBP,books,completed,{stamp}\n"
                    f"OR-X000002,CR-00025,{stamp},12.00,XYZ,books,completed,{stamp}\n"
                    f"OR-X000003,,{stamp},12.00,GBP,books,completed,{stamp}\n")
    # dune: a purchase dated at the very start of its log (derived arrival: its first monthly drop)
    dune = raw / "dune" / "purchases.txt"
    first = dune.read_text(encoding="utf-8").splitlines()[0]
    _append(dune, f"{first[:31]}{'7.77':>14}{first[45:]}\n")
    return {"orphan": f"bolt:{orphan}", "earlier": f"bolt:{earlier['id']}", "duplicate": f"bolt:{duplicate['customer']}",
            "corrected": f"bolt:{corrected['customer']}", "moved_from": f"bolt:{moved['customer']}",
            "moved_to": f"bolt:{receiver}", "dune": f"dune:{first[:14].strip()}"}


def test_edge_shapes_equal_full_build(built_data: Settings, tmp_path: Path) -> None:
    settings = _copy_data(built_data, tmp_path / "data")
    base = settings.published_dir.resolve()
    # a day that crosses no grid point: only changed customers may get new rows
    cases = _append_shapes(settings.raw_dir, (_end(base) + timedelta(days=2)).date())
    added = _incremental(settings)
    # not vacuous: every case changed its customer's fingerprint
    changes = query(None, "select customer_id, is_changed from intermediate.int_customer_feature_changes",
                    folder=added.build).set_index("customer_id")
    duplicate = cases.pop("duplicate")
    for case, customer in cases.items():
        assert customer in changes.index and changes.loc[customer, "is_changed"], case
    if duplicate not in cases.values():  # an exact copy of a loaded record changes nothing
        assert not changes.loc[duplicate, "is_changed"]
    _assert_equal_to_full(settings, added)


def test_empty_append_then_mid_record_append(built_data: Settings, tmp_path: Path) -> None:
    settings = _copy_data(built_data, tmp_path / "data")
    base = settings.published_dir.resolve()
    empty = _incremental(settings)  # nothing appended: nothing changed, nothing recomputed
    assert empty.mode == "incremental", _refused(empty)
    changes = query(None, "select count(*) filter (where is_changed) as n from intermediate.int_customer_feature_changes",
                    folder=empty.build)
    assert changes["n"].iloc[0] == 0
    # no feature row computed or removed: the previous build's file is kept (a hard link), not rewritten
    mart = Path("marts") / "customer_features_weekly.parquet"
    assert (empty.build / mart).stat().st_ino == (base / mart).stat().st_ino
    # acme's drop cut mid-record: an open quote and no final newline; the next drop completes it
    path = settings.raw_dir / "acme" / "transactions.csv"
    day = _end(empty.build) + timedelta(days=9)
    stamp = f"{day:%d/%m/%Y}"
    _append(path, f'AT-9000001;AC-000049;{stamp} 10:00;31,50;EUR;"books', "latin-1")
    published = settings.published_dir.resolve()
    with pytest.raises(BuildFailed, match="truncated"):  # refused, as a full build refuses it
        _incremental(settings)
    assert settings.published_dir.resolve() == published
    # the line ends now, the quote is still open: what a build sees of it is replaced once it closes
    _append(path, "\n", "latin-1")
    opened = _incremental(settings)
    assert opened.mode == "incremental", _refused(opened)
    _append(path, f' and more";K;{stamp} 18:00:00\nAT-9000002;AC-000049;{stamp} 11:00;5,00;EUR;home;K;{stamp} 18:00:01\n',
            "latin-1")
    _assert_equal_to_full(settings, _incremental(settings))


def test_erasure_between_builds_is_refused(built_data: Settings, tmp_path: Path) -> None:
    settings = _copy_data(built_data, tmp_path / "data")
    base = settings.published_dir.resolve()
    manifest = tmp_path / "manifest.json"
    manifest.write_text((base / "target" / "manifest.json").read_text().replace(
        str(built_data.data_dir), str(settings.data_dir)))
    assert incremental.refusal(settings, base, manifest, ()) is None
    suppression.add(settings.data_dir, hashlib.sha256(b"bolt:b-00235").hexdigest())
    reason = incremental.refusal(settings, base, manifest, ())
    assert reason is not None and "erasure" in reason


# clients on their own timelines: bolt's watermark follows its newest event (+48 h), cora's is fixed
WATERMARK_VARS = ("--vars", "{client_watermarks: {bolt: {rule: newest_event_plus_delay, delay_hours: 48}, "
                  "cora: {rule: fixed, watermark_at: '2026-05-20T00:00:00+00:00'}}}")


def test_declared_watermark_rules_one_client_crosses_the_grid(built_data: Settings, tmp_path: Path) -> None:
    settings = _copy_data(built_data, tmp_path / "data")
    base = build(settings, dbt_args=WATERMARK_VARS).build  # the published build, under these rules
    ends = dict(query(None, "select client_id, last_snapshot_at from marts.client_watermarks", folder=base).values)
    # bolt's day crosses its next grid point (events 8 days after its end); cora's records arrive
    # after its fixed watermark (no new snapshot)
    day = (ends["bolt"] + timedelta(days=8)).date()
    append_day(settings.raw_dir, day, records_per_client=4)
    added = run_build(settings, load_build_config(), capture=True, incremental=True, dbt_args=WATERMARK_VARS)
    assert added.mode == "incremental", _refused(added)
    now = dict(query(None, "select client_id, last_snapshot_at from marts.client_watermarks", folder=added.build).values)
    assert now["bolt"] > ends["bolt"] and now["cora"] == ends["cora"]
    rebuilt = build(settings, dbt_args=WATERMARK_VARS)
    assert rebuilt.mode == "full"
    diffs = incremental.differences(added.build, rebuilt.build)
    assert {name: d for name, d in diffs.items() if d != (0, 0)} == {}
