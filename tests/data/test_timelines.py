"""Every client on its own timeline: a client whose data ends long before the others.

The generated drops are copied and transformed in a tmp dir: every timestamp in bolt's files is
moved back ~2 years (730 days, not a whole number of weeks, so its grid is not aligned with the
others'), acme declares a `fixed` watermark ~6 weeks before its newest arrival and cora one 30 hours
after its newest event (vars.client_watermarks); bolt keeps the default rule. The marts must then give each client features and labels over its own
span only: no snapshot after its watermark, no all-zero tail, as many rows as on its own dates,
every snapshot and label equal to the oracle (tests/data/oracle.py).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parity.config import Settings
from tests.conftest import TEST_END_DATE, generate_raw
from tests.data.oracle import (
    ANCHOR,
    DAY,
    WEEK,
    CustomerOracle,
    Warehouse,
    load,
    mismatches,
    read_mart,
    spine,
)
from tests.data.test_labels import expected_labels

pytestmark = pytest.mark.data

SHIFTED, SHIFT = "bolt", timedelta(days=730)
FIXED = "acme"
# a declared cut-off ~6 weeks before the drop's end, not at midnight (the grid ends the midnight before)
FIXED_AT = pd.Timestamp(TEST_END_DATE, tz="UTC") - pd.Timedelta(days=45) + pd.Timedelta(hours=15, minutes=30)
DELAYED, DELAY_HOURS = "cora", 30  # newest event + 30 h: a watermark that is not at midnight
RULES = {FIXED: {"rule": "fixed", "watermark_at": FIXED_AT.isoformat()},
         DELAYED: {"rule": "newest_event_plus_delay", "delay_hours": DELAY_HOURS}}
ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def shift_jsonl(path: Path, delta: timedelta) -> int:
    """Move every ISO-8601 instant in a JSON-lines file back by delta; other lines stay as sent."""
    out, shifted = [], 0
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.append(line)
            continue
        if not isinstance(record, dict):
            out.append(line)
            continue
        for key, value in record.items():
            if not (isinstance(value, str) and ISO_INSTANT.match(value)):
                continue
            try:
                instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:  # a deliberately invalid date (e.g. Feb 30): staging quarantines it
                continue
            moved = (instant - delta).isoformat()
            record[key] = moved.replace("+00:00", "Z") if value.endswith("Z") else moved
            shifted += 1
        out.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    path.write_text("".join(out), encoding="utf-8")
    return shifted


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The test drops with bolt ~2 years earlier and acme's fixed watermark, built by dbt."""
    from tests.conftest import build

    settings = generate_raw(tmp_path_factory.mktemp("timelines"))
    files = sorted((settings.raw_dir / SHIFTED).glob("*.jsonl"))
    assert files, f"no JSON-lines files for {SHIFTED} under {settings.raw_dir}: adapt shift_jsonl"
    for path in files:
        assert shift_jsonl(path, SHIFT) > 0, f"{path}: no ISO instant found to shift"
    build(settings, dbt_args=("--vars", json.dumps({"client_watermarks": RULES})))
    return settings


@pytest.fixture(scope="module")
def wh(shifted: Settings) -> Warehouse:
    return load(shifted, watermark_rules=RULES)


@pytest.fixture(scope="module")
def mart(shifted: Settings) -> pd.DataFrame:
    return read_mart(shifted, "customer_features_weekly").set_index(
        ["customer_id", "snapshot_at"]).sort_index()


def test_each_client_has_its_own_end(wh: Warehouse, mart: pd.DataFrame) -> None:
    """The shifted client ends ~2 years early, acme at its declared cut-off, each on its own grid."""
    newest = max(tl.end for c, tl in wh.timelines.items() if c != SHIFTED)
    assert newest - wh.timelines[SHIFTED].end >= SHIFT - 2 * DAY
    # the fixed grid's last point at or before the declared cut-off
    fixed_end = wh.timelines[FIXED].end
    assert fixed_end <= FIXED_AT < fixed_end + WEEK and (fixed_end - ANCHOR) % WEEK == pd.Timedelta(0)
    delayed = wh.versions.loc[wh.versions["client_id"] == DELAYED, "transacted_at"].max()
    assert wh.timelines[DELAYED].watermark_at == delayed + pd.Timedelta(hours=DELAY_HOURS)
    rows = mart.reset_index()
    for client, tl in wh.timelines.items():
        times = rows.loc[rows["client_id"] == client, "snapshot_at"]
        assert set(times) == set(tl.snapshots), client
        assert times.max() == tl.end <= tl.watermark_at, client


def test_every_snapshot_of_the_shifted_client_equals_the_oracle(wh: Warehouse, mart: pd.DataFrame) -> None:
    """All of bolt's customers (and 30 of the others) at every one of their snapshots."""
    customers = wh.customers
    rng = np.random.default_rng(12)
    others = sorted(customers.index[customers["client_id"] != SHIFTED])
    chosen = sorted(customers.index[customers["client_id"] == SHIFTED]) + list(
        rng.choice(others, size=min(30, len(others)), replace=False))
    groups = dict(tuple(wh.versions.groupby("customer_id")))
    in_mart = set(mart.index.get_level_values(0))
    checked, failures = 0, []
    for customer_id in chosen:
        expected_times = spine(wh, customer_id)
        rows = mart.loc[customer_id] if customer_id in in_mart else None
        got_times = [] if rows is None else list(rows.index)
        assert got_times == list(expected_times), f"{customer_id}: snapshot spine differs"
        oracle = CustomerOracle(wh, customer_id, groups.get(customer_id, wh.versions.iloc[:0]))
        for t in expected_times:
            failures += [f"{customer_id} @ {t}: {b}" for b in mismatches(oracle.features(t), rows.loc[t])]
            checked += 1
    assert checked > 200 * 20, checked
    assert not failures, "\n".join(failures[:30])


def test_rows_follow_the_clients_own_span(built_data: Settings, mart: pd.DataFrame) -> None:
    """Moved 2 years back, bolt keeps the same number of rows and the same share of empty ones."""
    base = read_mart(built_data, "customer_features_weekly")
    now = mart.reset_index()
    before, after = base[base["client_id"] == SHIFTED], now[now["client_id"] == SHIFTED]
    n_customers = before["customer_id"].nunique()
    assert n_customers > 100
    # the data moves by 730 mod 7 = 2 days against the fixed grid: each customer's run may gain or
    # lose one snapshot
    assert abs(len(after) - len(before)) <= n_customers, (len(before), len(after))
    empty_before = (before["purchase_count_365d"] == 0).mean()
    empty_after = (after["purchase_count_365d"] == 0).mean()
    assert empty_after <= empty_before + 0.02, (empty_before, empty_after)


def test_labels_follow_each_clients_watermark(shifted: Settings, wh: Warehouse) -> None:
    """Labels equal the oracle for every customer, each client's within its own window."""
    labels = read_mart(shifted, "churn_labels")
    expected = expected_labels(wh)
    want = expected[expected["is_active"]].set_index(["customer_id", "as_of_at"])["is_churned"]
    got = labels.set_index(["customer_id", "as_of_at"])["is_churned"]
    assert want.index.sort_values().equals(got.index.sort_values()), (
        f"{len(want.index.difference(got.index))} missing, {len(got.index.difference(want.index))} extra")
    assert (want == got.reindex(want.index)).all()
    for client in (SHIFTED, FIXED, DELAYED):
        mine = labels[labels["client_id"] == client]
        assert len(mine) > 20 and set(mine["is_churned"]) == {0, 1}, client
        assert (mine["label_window_end_at"] <= wh.timelines[client].watermark_at).all(), client


def test_client_watermarks_mart(shifted: Settings, wh: Warehouse) -> None:
    marks = read_mart(shifted, "client_watermarks").set_index("client_id")
    assert set(marks.index) == set(wh.timelines)
    assert marks.loc[FIXED, "watermark_rule"] == "fixed"
    assert marks.loc[FIXED, "watermark_at"] == FIXED_AT
    assert marks.loc[DELAYED, "watermark_rule"] == "newest_event_plus_delay"
    assert marks.loc[SHIFTED, "watermark_rule"] == "newest_arrival"
    for client, tl in wh.timelines.items():
        row = marks.loc[client]
        assert row["watermark_at"] == tl.watermark_at, client
        assert row["n_snapshots"] == len(tl.snapshots), client
        assert (row["first_snapshot_at"], row["last_snapshot_at"]) == (tl.snapshots[0], tl.end), client


@pytest.mark.parametrize(("declared", "message"), [
    ({FIXED: {"rule": "fixd"}}, f"vars.client_watermarks.{FIXED}.rule: unknown rule 'fixd'"),
    ({FIXED: {"rule": "fixed", "watermark_at": "2026-05-01"}},
     f"vars.client_watermarks.{FIXED}.watermark_at: '2026-05-01' is not an ISO-8601 instant"),
])
def test_a_bad_watermark_declaration_stops_the_build(tmp_path: Path, declared: dict, message: str) -> None:
    """A typo in vars.client_watermarks fails dbt parse naming the field, never the default rule."""
    from parity.config import load_settings
    from parity.ingest.warehouse import DbtError, run_dbt

    with pytest.raises(DbtError) as failure:
        run_dbt(load_settings(tmp_path), "parse", "--vars", json.dumps({"client_watermarks": declared}),
                capture=True)
    assert message in str(failure.value)
