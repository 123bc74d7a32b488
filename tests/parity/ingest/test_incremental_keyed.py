"""The per-key rules of the intermediate models on incremental builds (macros/incremental.sql:
keyed_materialization, customer_records_materialization), on shapes the generator never makes,
two incremental builds in a row, each compared with a full build of the same raw files (EXCEPT ALL
both ways, parity.ingest.incremental.differences):

- a key is `is_new` (no row before: its rows need no delete) only when its only accepted records
  are on lines this run wrote: a new transaction sent twice in one batch (a duplicate pair, both
  new lines), an old transaction re-sent in its own arrival batch (a duplicate of a kept line:
  ranked again, int_transactions_duplicates gains a row), a new key first seen on day 1 re-sent
  on day 2 (new on day 1, kept on day 2);
- int_transactions_orphaned and _duplicates are recomputed on int_transactions_versioned's keys:
  a new transaction of an unknown customer (a new orphan), then on day 2 that customer's record
  (the orphan becomes known: found in the orphans' previous rows, not by a scan of every record);
- int_customers_deduplicated and _duplicates per customer: a customer record and its first
  purchase in the same drop, a customer re-sent twice in one drop (a duplicate record ranked 2)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from parity.config import Settings
from parity.ingest import incremental
from parity.ingest.pipeline import BuildResult
from parity.ingest.warehouse import query
from tests.conftest import build
from tests.parity.ingest.test_incremental import _build_incremental as _incremental
from tests.parity.ingest.test_incremental import _copy_data, _jsonl

pytestmark = [pytest.mark.heavy, pytest.mark.data]

ISO = "%Y-%m-%dT%H:%M:%S+00:00"


def _append(path: Path, records: list[dict]) -> None:
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))


def _end(folder: Path) -> datetime:
    return query(None, f"select max(snapshot_at) as t from read_parquet('{folder}/marts/customer_features_weekly.parquet')",
                 folder=folder)["t"].iloc[0].to_pydatetime()


def _assert_equal_to_full(settings: Settings, added: BuildResult) -> None:
    assert added.mode == "incremental"
    rebuilt = build(settings)
    assert rebuilt.mode == "full"
    diffs = incremental.differences(added.build, rebuilt.build)
    assert "intermediate.int_transactions_orphaned" in diffs and "intermediate.int_customers_duplicates" in diffs
    assert {name: d for name, d in diffs.items() if d != (0, 0)} == {}


def test_keyed_rules_over_two_incremental_builds(built_data: Settings, tmp_path: Path) -> None:
    settings = _copy_data(built_data, tmp_path / "data")
    noon = datetime.combine((_end(settings.published_dir.resolve()) + timedelta(days=2)).date(),
                            datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=12)
    bolt_tx, bolt_cu = settings.raw_dir / "bolt" / "transactions.jsonl", settings.raw_dir / "bolt" / "customers.jsonl"
    customers = {r["id"]: r for r in _jsonl(bolt_cu) if isinstance(r.get("id"), str)}
    buyers = [r for r in _jsonl(bolt_tx) if r.get("customer") in customers and re.fullmatch(r"b-\d+", r["customer"])
              and r.get("kind") == "purchase" and isinstance(r.get("amount_cents"), int) and r["amount_cents"] > 0]
    template = next(r for r in customers.values() if re.fullmatch(r"b-\d+", r["id"]))
    stranger, newcomer = "b-990001", "b-990002"
    assert stranger not in customers and newcomer not in customers

    # day 1
    pair = {**buyers[5], "txn_id": "bt-K000001", "received_at": noon.strftime(ISO)}
    old = buyers[len(buyers) // 2]  # an old transaction re-sent in its own arrival batch
    orphan = {**buyers[7], "txn_id": "bt-K000002", "customer": stranger, "received_at": noon.strftime(ISO)}
    first = {**buyers[9], "txn_id": "bt-K000003", "customer": newcomer, "received_at": noon.strftime(ISO)}
    _append(bolt_tx, [pair, pair, old, orphan, first])
    resent = next(r for r in customers.values() if r["id"].startswith("b-") and r["id"] != old["customer"])
    _append(bolt_cu, [{**template, "id": newcomer, "email": f"new.{newcomer}@gmail.com",
                       "signed_up_at": (noon - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "received_at": noon.strftime(ISO)},
                      {**resent, "country": "PT", "received_at": noon.strftime(ISO)},
                      {**resent, "country": "PT", "received_at": noon.strftime(ISO)}])
    day1 = _incremental(settings)
    assert day1.mode == "incremental"
    keys = query(None, "select transaction_id from intermediate.int_transactions_orphaned", folder=day1.build)
    assert "bt-K000002" in set(keys["transaction_id"])  # the new orphan
    duplicates = query(None, "select transaction_id from intermediate.int_transactions_duplicates", folder=day1.build)
    assert {"bt-K000001", old["txn_id"]} <= set(duplicates["transaction_id"])

    # day 2, on top of day 1's incremental build: the orphan's customer arrives, day 1's new key is
    # corrected (kept now), the re-sent customer is re-sent again
    later = noon + timedelta(hours=3)
    _append(bolt_tx, [{**pair, "amount_cents": pair["amount_cents"] + 100, "received_at": later.strftime(ISO)}])
    _append(bolt_cu, [{**template, "id": stranger, "email": f"found.{stranger}@gmail.com",
                       "signed_up_at": "2024-06-10T09:00:00Z", "received_at": later.strftime(ISO)},
                      {**resent, "country": "ES", "received_at": later.strftime(ISO)}])
    day2 = _incremental(settings)
    orphans = query(None, "select transaction_id from intermediate.int_transactions_orphaned", folder=day2.build)
    assert "bt-K000002" not in set(orphans["transaction_id"])
    versions = query(None, "select transaction_id, version_number from intermediate.int_transactions_versioned "
                     "where transaction_id in ('bt-K000001', 'bt-K000002')", folder=day2.build)
    assert sorted(map(tuple, versions.values.tolist())) == [("bt-K000001", 1), ("bt-K000001", 2), ("bt-K000002", 1)]
    _assert_equal_to_full(settings, day2)
