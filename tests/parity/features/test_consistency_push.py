"""The consistency check across a push: what the online store served after fresh events equals the
offline point-in-time features at that time (the pushed-rows history), and a log that kept the
snapshot's values after the push is caught naming the fresh features. Real pusher, online store
and reader on a copy of the session's data; the log rows are encoded as serving encodes them."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parity.config import Settings, load_settings
from parity.features.consistency import check, log_files
from parity.jsonable import features_json

pytestmark = pytest.mark.data
SERVICE = "churn_v1"


@pytest.fixture(scope="module")
def copied(feature_data: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    target = tmp_path_factory.mktemp("consistency-push") / "data"
    shutil.copytree(feature_data.data_dir, target, symlinks=True,
                    ignore=shutil.ignore_patterns("build.lock", "registry", "serving", "reports", "training"))
    return load_settings(target)


def _log(folder: Path, name: str, ids: list[str], at: datetime, columns: dict, names: list[str]) -> None:
    """Log rows as serving writes them (status ok, features JSON by parity.jsonable.features_json)."""
    encoded = features_json(columns, range(len(ids)), names)
    table = pa.table({"request_id": [f"{name}-{i}" for i in range(len(ids))], "logged_at": [at] * len(ids),
                      "request_at": [at] * len(ids), "customer_id": ids, "model_version": ["v0001"] * len(ids),
                      "role": ["primary"] * len(ids), "status": ["ok"] * len(ids),
                      "features": [encoded[i] for i in range(len(ids))]})
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"part-{name}.parquet")


def test_served_after_a_push_is_consistent_and_a_stale_log_is_caught(copied: Settings):
    from parity.features.feature_store import open_store
    from parity.features.online import EVENT_AT, FOUND, open_reader
    from parity.features.push import Pusher

    mart = copied.marts_dir / "customer_features_weekly.parquet"
    newest = duckdb.connect().execute(
        f"select customer_id, snapshot_at from read_parquet('{mart}') where client_id = 'acme' "
        "qualify snapshot_at = max(snapshot_at) over () order by customer_id limit 4").fetchall()
    ids = [r[0] for r in newest]
    # the push happens two days after the newest snapshot (the test drop ended months ago)
    offset = newest[0][1] + timedelta(days=2) - datetime.now(timezone.utc)
    pusher = Pusher(copied, clock=lambda: datetime.now(timezone.utc) + offset)
    reader = open_reader(copied, SERVICE)
    names = [n for n, _ in reader.schema.features]
    before_at = pusher.clock().replace(microsecond=0)
    before = reader.read_columns(ids, [before_at] * len(ids))
    event = {"event_id": "consistency-1", "customer_id": ids[0], "transaction_type": "purchase", "amount": 61.0,
             "currency": "USD", "category": "garden",
             "transacted_at": (before_at - timedelta(hours=2)).isoformat()}
    verdicts, update = pusher.push([event])
    pusher.close()
    assert verdicts[0].status == "accepted", verdicts[0].errors
    at = update.online_at + timedelta(milliseconds=1)
    after = reader.read_columns(ids, [at] * len(ids))
    for frame in (before, after):
        frame.pop(FOUND), frame.pop(EVENT_AT)
    assert after["spend_30d"][0] == pytest.approx(before["spend_30d"][0] + 61.0)  # the push reached online

    folder = copied.predictions_dir / "date=2026-06-01"
    _log(folder, "before", ids, before_at, before, names)
    _log(folder, "after", ids, at, after, names)
    store = open_store(copied)
    found = check(store, log_files(copied.predictions_dir, None), lambda version: SERVICE, max_rows=1000, chunk_rows=1000)
    table = found.features()
    assert found.checked_rows == 2 * len(ids) and len(table) == 17
    assert table["mismatches"].sum() == 0, table[table["mismatches"] > 0]

    # a log that kept the snapshot's values after the push: only the pushed customer's fresh features differ
    _log(folder, "stale", ids[:1], at, {k: v[:1] for k, v in before.items()}, names)
    found = check(store, log_files(copied.predictions_dir, None), lambda version: SERVICE, max_rows=1000, chunk_rows=1000)
    table = found.features().set_index("feature")
    skewed = set(table.index[table["mismatches"] > 0])
    assert {"spend_30d", "purchase_count_30d"} <= skewed and "client_id" not in skewed and "tenure_days" not in skewed
    assert all(e["customer_id"] == ids[0] for e in found.examples)
