"""Every defect class, planted by hand in each client's own format, ends up exactly where it should.

One small generated drop gets, per client, transaction rows with recognisable ids
('ZZ-<defect>') and a few customer rows appended in the client's format and encoding; the
project is built once and every planted row is looked up: quarantined with the exact reason,
removed as a duplicate, versioned as a correction, or accepted.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from parity.config import Settings
from parity.ingest.warehouse import query
from tests.conftest import build, generate_raw

pytestmark = pytest.mark.data

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
WHEN = datetime(2026, 5, 10, 10, 0, tzinfo=UTC)  # event time of the planted rows
ARRIVED = datetime(2026, 5, 11, 8, 30, 15, tzinfo=UTC)  # their arrival (before the drop's end)
CORRECTED = ARRIVED + timedelta(days=10, hours=3)  # arrival of the correction
CUSTOMER_ARRIVED = datetime(2026, 4, 1, 7, 45, 0, tzinfo=UTC)  # the planted customers' arrival
# Weekly snapshots of the drop (end 2026-06-01) around those arrivals.
SNAPSHOTS = [datetime(2026, 5, d, tzinfo=UTC) for d in (4, 11, 18, 25)]
FILES = {"acme": ("customers.csv", "transactions.csv"),
         "bolt": ("customers.jsonl", "transactions.jsonl"),
         "cora": ("clients.csv", "orders.csv")}
# Customer ids of the planted customers (well-formed for each client's id pattern).
GOOD = {"acme": "AC-999001", "bolt": "b-99901", "cora": "CR-99901"}
BAD_DATE_CUSTOMER = {"acme": "AC-999003", "bolt": "b-99903", "cora": "CR-99903"}
FUTURE_CUSTOMER = {"acme": "AC-999004", "bolt": "b-99904", "cora": "CR-99904"}
MALFORMED_CUSTOMER = "ZZ?1"
TEST_CUSTOMER = {"acme": "TEST-AC-999002", "bolt": "test-b-99902", "cora": "TEST-CR-99902"}
ORPHAN = {"acme": "AC-999999", "bolt": "b-99999", "cora": "CR-99999"}
# How each client writes its own ids in a sloppy hand-typed way (near duplicates).
SLOPPY_ID = {"acme": "  ac-999001 ", "cora": "  cr-99901  "}
BAD_DATE = {"acme": "gestern", "bolt": "not a date", "cora": "n/a"}
BAD_AMOUNT = {"acme": "zwölf", "bolt": "twelve", "cora": "twelve pounds"}
BAD_TYPE = {"acme": "X", "bolt": "gift", "cora": "pending"}
MISSING_ID_CHANNEL = "zz-missing-id"  # marks the customer row without an id


@dataclass
class Tx:
    """A canonical transaction to render in a client's format; `raw` overrides rendered fields."""

    tid: str
    cid: str | None
    amount: float = 42.5
    kind: str = "purchase"
    currency: str | None = None
    when: datetime = WHEN
    arrived: datetime = ARRIVED
    raw: dict = field(default_factory=dict)


def _acme_tx(t: Tx) -> list[str]:
    sign = "-" if t.kind == "refund" else ""
    row = {"buchungsnr": t.tid, "kundennummer": t.cid or "",
           "datum": t.when.astimezone(BERLIN).strftime("%d/%m/%Y %H:%M"),
           "betrag": sign + f"{t.amount:.2f}".replace(".", ","), "waehrung": t.currency or "EUR",
           "kategorie": "spielwaren", "art": {"purchase": "K", "refund": "R"}[t.kind],
           "exportiert_am": t.arrived.astimezone(BERLIN).strftime("%d/%m/%Y %H:%M:%S")}
    row.update(t.raw)
    return list(row.values())


def _bolt_tx(t: Tx) -> dict:
    row = {"txn_id": t.tid, "customer": t.cid, "ts": t.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "amount_cents": round(t.amount * 100), "currency": t.currency or "USD",
           "category": "toys", "kind": t.kind,
           "received_at": t.arrived.strftime("%Y-%m-%dT%H:%M:%S+00:00")}
    row.update(t.raw)
    return row


def _cora_tx(t: Tx) -> list[str]:
    row = {"Order Ref": t.tid, "Client ID": t.cid or "",
           "Order Date": t.when.strftime("%Y-%m-%d %H:%M:%S"), "Total": f"{t.amount:.2f}",
           "Currency": t.currency or "GBP", "Product Line": "toys",
           "Status": {"purchase": "completed", "refund": "refunded"}[t.kind],
           "Ingested At": t.arrived.strftime("%Y-%m-%d %H:%M:%S")}
    row.update(t.raw)
    return list(row.values())


def _customer(client: str, cid: str, email: str, signup: str | None = None,
              channel: str = "organic"):
    signed = datetime(2025, 3, 1, 12, tzinfo=UTC)
    if client == "acme":
        return [cid, "Jürgen Zöllner", email, "DE", "1980", channel,
                signup or signed.astimezone(BERLIN).strftime("%d/%m/%Y"),
                CUSTOMER_ARRIVED.astimezone(BERLIN).strftime("%d/%m/%Y %H:%M:%S")]
    if client == "bolt":
        return {"id": cid or None, "email": email, "name": "José Zed", "country": "US",
                "birth_year": 1980, "channel": channel,
                "signed_up_at": signup or signed.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "received_at": CUSTOMER_ARRIVED.strftime("%Y-%m-%dT%H:%M:%S+00:00")}
    return [cid, email, "Seán Zed", "GB", "1980", channel,
            signup or signed.strftime("%Y-%m-%d"),
            CUSTOMER_ARRIVED.strftime("%Y-%m-%d %H:%M:%S")]


def planted_customers(client: str) -> list:
    return [
        _customer(client, GOOD[client], "zz.good@mail.test"),
        _customer(client, TEST_CUSTOMER[client], "zz.tester@example.com"),
        _customer(client, "", "zz.noid@mail.test", channel=MISSING_ID_CHANNEL),
        _customer(client, BAD_DATE_CUSTOMER[client], "zz.baddate@mail.test",
                  signup=BAD_DATE[client]),
        _customer(client, FUTURE_CUSTOMER[client], "zz.future@mail.test",
                  signup={"acme": "01/01/2099", "bolt": "2099-01-01T00:00:00Z",
                          "cora": "2099-01-01"}[client]),
        _customer(client, MALFORMED_CUSTOMER, "zz.malformed@mail.test"),
    ]


# Expected fate of each planted customer row: (record_id as staged, quarantine reason).
def expected_customer_quarantine(client: str) -> dict[str, str]:
    norm = str.lower if client == "bolt" else str.upper
    return {norm(TEST_CUSTOMER[client]): "test_account",
            norm(BAD_DATE_CUSTOMER[client]): "unparseable_date",
            norm(FUTURE_CUSTOMER[client]): "future_date",
            norm(MALFORMED_CUSTOMER): "malformed_customer_id"}


# Quarantine reason of every single planted transaction (id 'ZZ-<reason>' unless noted).
QUARANTINED = ["missing_customer_id", "malformed_customer_id", "test_account",
               "unparseable_date", "future_date", "negative_amount", "absurd_amount",
               "unknown_currency", "unknown_transaction_type", "unparseable_amount",
               "unparseable_loaded_at", "orphan_customer"]
MISSING_TID_CATEGORY = "zz-missing-tid"  # marks the transaction row without an id


def planted_transactions(client: str) -> list[Tx]:
    """Planted transaction rows, in file order."""
    good = GOOD[client]
    amount_field = {"acme": "betrag", "bolt": "amount_cents", "cora": "Total"}[client]
    date_field = {"acme": "datum", "bolt": "ts", "cora": "Order Date"}[client]
    type_field = {"acme": "art", "bolt": "kind", "cora": "Status"}[client]
    arrival_field = {"acme": "exportiert_am", "bolt": "received_at", "cora": "Ingested At"}[client]
    category_field = {"acme": "kategorie", "bolt": "category", "cora": "Product Line"}[client]
    negative = {"acme": "-42,50", "bolt": -4250, "cora": "-42.50"}[client]
    rows = [
        Tx("ZZ-good", good),
        Tx("ZZ-missing_customer_id", None),
        Tx("ZZ-malformed_customer_id", "???"),
        Tx("ZZ-test_account", TEST_CUSTOMER[client]),
        Tx("ZZ-unparseable_date", good, raw={date_field: BAD_DATE[client]}),
        Tx("ZZ-future_date", good, when=datetime(2099, 1, 1, 12, tzinfo=UTC)),
        Tx("ZZ-negative_amount", good, raw={amount_field: negative}),
        Tx("ZZ-absurd_amount", good, amount=5_000_000.0),
        Tx("ZZ-unknown_currency", good, currency="XYZ"),
        Tx("ZZ-unknown_transaction_type", good, raw={type_field: BAD_TYPE[client]}),
        Tx("ZZ-unparseable_amount", good, raw={amount_field: BAD_AMOUNT[client]}),
        Tx("ZZ-unparseable_loaded_at", good, raw={arrival_field: "bald"}),
        Tx("", good, raw={category_field: MISSING_TID_CATEGORY}),
        Tx("ZZ-orphan_customer", ORPHAN[client]),
        Tx("ZZ-refund", good, kind="refund", amount=10.0),
        # arrived 20 days after it happened: accepted (features pick it up from its arrival)
        Tx("ZZ-late_arriving", good, when=WHEN - timedelta(days=20)),
        Tx("ZZ-exact_duplicate", good, amount=17.0),
        Tx("ZZ-exact_duplicate", good, amount=17.0),
        Tx("ZZ-near_duplicate", good, amount=18.0),
    ]
    if client == "bolt":  # the same instant written with another UTC offset
        rows.append(Tx("ZZ-near_duplicate", good, amount=18.0, raw={
            "ts": (WHEN - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S-05:00")}))
    else:  # the same customer id, re-typed in another case with stray spaces
        rows.append(Tx("ZZ-near_duplicate", SLOPPY_ID[client], amount=18.0))
    rows += [Tx("ZZ-correction", good, amount=30.0),
             Tx("ZZ-correction", good, amount=27.0, arrived=CORRECTED)]
    return rows


# A line cut mid-write inside the file: not JSON (bolt), too few fields (CSV clients).
MALFORMED_LINE = {
    "acme": "ZZ-malformed_record;AC-999001;10/05/2026 12:00",
    "bolt": '{"txn_id": "ZZ-malformed_record", "customer": "b-99901", "ts": "2026-05-',
    "cora": "ZZ-malformed_record,CR-99901,2026-05-10 10:00:00",
}


# A cut-off CSV line has too few fields; a cut-off JSON line does not parse.
CUT_OFF_REASON = {"acme": "field_count_mismatch", "bolt": "malformed_record",
                  "cora": "field_count_mismatch"}


def _append_rows(path: Path, client: str, rows: list) -> None:
    """Append rows in the client's own format and encoding (a str is written verbatim)."""
    enc, delim = ("latin-1", ";") if client == "acme" else ("utf-8", ",")
    with path.open("a", encoding=enc, newline="") as fh:
        writer = csv.writer(fh, delimiter=delim, lineterminator="\n")
        for row in rows:
            if isinstance(row, str):
                fh.write(row + "\n")
            elif client == "bolt":
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                writer.writerow(row)


def plant(settings: Settings) -> None:
    render = {"acme": _acme_tx, "bolt": _bolt_tx, "cora": _cora_tx}
    for client, (customers, transactions) in FILES.items():
        folder = settings.raw_dir / client
        _append_rows(folder / customers, client, planted_customers(client))
        rows = [render[client](t) for t in planted_transactions(client)]
        rows.insert(5, MALFORMED_LINE[client])
        _append_rows(folder / transactions, client, rows)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = generate_raw(tmp_path_factory.mktemp("planted"), scale=0.05, seed=11)
    plant(settings)
    build(settings)
    return settings


def _quarantine(settings: Settings, client: str) -> pd.DataFrame:
    return query(settings, f"select * from quarantine.quarantine_{client}")


def _zz(settings: Settings, relation: str, client: str) -> pd.DataFrame:
    return query(settings, f"select * from {relation} where client_id = '{client}' "
                           "and transaction_id like 'ZZ-%' order by transaction_id, loaded_at")


@pytest.mark.parametrize("client", list(FILES))
def test_each_defect_row_is_quarantined_with_its_exact_reason(planted: Settings, client: str) -> None:
    q = _quarantine(planted, client)
    zz = q[(q["source_table"] == "transactions") & q["record_id"].fillna("").str.startswith("ZZ-")]
    got = dict(zip(zz["record_id"], zz["quarantine_reason"]))
    expected = {f"ZZ-{reason}": reason for reason in QUARANTINED}
    if client != "bolt":  # a short CSV line still has its id; bolt's cut JSON line has none
        expected["ZZ-malformed_record"] = CUT_OFF_REASON[client]
    assert got == expected
    assert zz["record_id"].is_unique


@pytest.mark.parametrize("client", list(FILES))
def test_cut_off_line_is_quarantined_with_its_cause(planted: Settings, client: str) -> None:
    q = _quarantine(planted, client)
    hit = q[q["raw_record"].fillna("").str.contains("ZZ-malformed_record", regex=False)]
    assert hit["quarantine_reason"].tolist() == [CUT_OFF_REASON[client]]
    # the quarantine finds the line again: its file, its line number and the hash of its text
    path = planted.raw_dir / client / FILES[client][1]
    encoding = "latin-1" if client == "acme" else "utf-8"
    lines = path.read_text(encoding=encoding).split("\n")
    number = next(i for i, line in enumerate(lines, start=1) if "ZZ-malformed_record" in line)
    assert hit["source_file"].tolist() == [str(path)]
    assert hit["line_number"].tolist() == [number]
    assert hit["raw_line_sha256"].tolist() == [
        hashlib.sha256(lines[number - 1].encode()).hexdigest()]
    assert hit["source_table"].tolist() == ["transactions"]


@pytest.mark.parametrize("client", list(FILES))
def test_row_without_transaction_id_is_quarantined(planted: Settings, client: str) -> None:
    q = _quarantine(planted, client)
    hit = q[q["raw_record"].fillna("").str.contains(MISSING_TID_CATEGORY, regex=False)]
    assert hit["quarantine_reason"].tolist() == ["missing_transaction_id"]
    assert hit["record_id"].isna().all()


@pytest.mark.parametrize("client", list(FILES))
def test_defect_customer_rows_are_quarantined(planted: Settings, client: str) -> None:
    q = _quarantine(planted, client)
    customers = q[q["source_table"] == "customers"]
    for record_id, reason in expected_customer_quarantine(client).items():
        assert customers.loc[customers["record_id"] == record_id,
                             "quarantine_reason"].tolist() == [reason], record_id
    no_id = customers[customers["raw_record"].fillna("").str.contains(MISSING_ID_CHANNEL)]
    assert no_id["quarantine_reason"].tolist() == ["missing_customer_id"]
    assert no_id["record_id"].isna().all()
    # the good planted customer is canonical, not quarantined
    canonical = query(planted, "select customer_id from intermediate.int_customers_deduplicated "
                               f"where client_id = '{client}'")
    norm = str.lower if client == "bolt" else str.upper
    assert f"{client}:{norm(GOOD[client])}" in set(canonical["customer_id"])
    assert norm(GOOD[client]) not in set(customers["record_id"])


@pytest.mark.parametrize("client", list(FILES))
def test_duplicates_are_removed_not_quarantined(planted: Settings, client: str) -> None:
    dup = _zz(planted, "intermediate.int_transactions_duplicates", client)
    assert sorted(dup["transaction_id"]) == ["ZZ-exact_duplicate", "ZZ-near_duplicate"]
    versioned = _zz(planted, "intermediate.int_transactions_versioned", client)
    norm = str.lower if client == "bolt" else str.upper
    for tid in ("ZZ-exact_duplicate", "ZZ-near_duplicate"):
        kept = versioned[versioned["transaction_id"] == tid]
        assert len(kept) == 1 and kept["version_number"].tolist() == [1]
        assert kept["customer_id"].tolist() == [f"{client}:{norm(GOOD[client])}"]
    q = _quarantine(planted, client)
    assert not q["record_id"].isin(["ZZ-exact_duplicate", "ZZ-near_duplicate"]).any()


@pytest.mark.parametrize("client", list(FILES))
def test_correction_is_version_two_and_supersedes_the_first(planted: Settings, client: str) -> None:
    v = _zz(planted, "intermediate.int_transactions_versioned", client)
    corr = v[v["transaction_id"] == "ZZ-correction"].sort_values("version_number")
    assert corr["version_number"].tolist() == [1, 2]
    assert corr["is_correction"].tolist() == [False, True]
    first, second = corr.iloc[0], corr.iloc[1]
    # arrival times are parsed in the client's time zone into the same UTC instants we wrote
    assert first["loaded_at"] == pd.Timestamp(ARRIVED)
    assert second["loaded_at"] == pd.Timestamp(CORRECTED)
    assert first["superseded_at"] == second["loaded_at"]
    assert pd.isna(second["superseded_at"])
    assert (first["amount_local"], second["amount_local"]) == pytest.approx((30.0, 27.0))


@pytest.mark.parametrize("client", list(FILES))
def test_good_refund_and_late_rows_are_accepted(planted: Settings, client: str) -> None:
    v = _zz(planted, "intermediate.int_transactions_versioned", client)
    rows = v.set_index("transaction_id")
    for tid in ("ZZ-good", "ZZ-refund", "ZZ-late_arriving"):
        assert tid in rows.index, tid
    assert rows.loc["ZZ-good", "transaction_type"] == "purchase"
    assert rows.loc["ZZ-good", "transacted_at"] == pd.Timestamp(WHEN)
    assert rows.loc["ZZ-refund", "transaction_type"] == "refund"
    assert rows.loc["ZZ-refund", "amount_local"] == pytest.approx(10.0)  # magnitude, not signed
    late = rows.loc["ZZ-late_arriving"]
    assert late["transacted_at"] == pd.Timestamp(WHEN - timedelta(days=20))
    assert late["loaded_at"] == pd.Timestamp(ARRIVED)


@pytest.mark.parametrize("client", list(FILES))
def test_every_planted_row_is_accounted_for_once(planted: Settings, client: str) -> None:
    planted_ids = pd.Series([t.tid for t in planted_transactions(client) if t.tid]).value_counts()
    if client != "bolt":  # bolt's cut-off JSON line has no readable id
        planted_ids["ZZ-malformed_record"] = 1
    seen = pd.concat([
        _zz(planted, "intermediate.int_transactions_versioned", client)["transaction_id"],
        _zz(planted, "intermediate.int_transactions_duplicates", client)["transaction_id"],
        _quarantine(planted, client).query("source_table == 'transactions'")["record_id"]
        .dropna().loc[lambda s: s.str.startswith("ZZ-")],
    ]).value_counts()
    assert seen.sort_index().to_dict() == planted_ids.sort_index().to_dict()


def _data_lines(path: Path, header: bool) -> int:
    return path.read_bytes().count(b"\n") - (1 if header else 0)


def test_reconciliation_accounts_for_every_raw_line(planted: Settings) -> None:
    rec = query(planted, "select * from marts.reconciliation")
    assert set(zip(rec["client_id"], rec["source_table"])) == {
        (c, t) for c in planted.clients for t in ("customers", "transactions")}
    assert (rec["unaccounted_rows"] == 0).all(), rec.to_string()
    rec = rec[rec["client_id"].isin(list(FILES))]  # the clients rows were planted in
    assert len(rec) == 2 * len(FILES)
    for row in rec.itertuples():
        name = FILES[row.client_id][0 if row.source_table == "customers" else 1]
        expected = _data_lines(planted.raw_dir / row.client_id / name,
                               header=row.client_id != "bolt")
        assert row.raw_rows == expected, (row.client_id, row.source_table)
        assert row.canonical_rows + row.quarantined_rows + row.duplicate_rows == expected


@pytest.mark.parametrize("client", list(FILES))
def test_planted_rows_reach_the_features_point_in_time(planted: Settings, client: str) -> None:
    """Hand-computed features of the planted customer, before and after each arrival.

    Accepted purchases: good 42.50, late 42.50 (happened 20 days before it arrived), exact
    duplicate 17.00 (once), near duplicate 18.00 (once), correction 30.00 then 27.00; one refund.
    All arrive on 2026-05-11 08:30, the correction's new value on 2026-05-21 11:30.
    """
    rates = pd.read_csv(planted.dbt_project_dir / "seeds" / "currency_rates.csv")
    rate = dict(zip(rates["currency"], rates["usd_per_unit"]))[
        {"acme": "EUR", "bolt": "USD", "cora": "GBP"}[client]]
    norm = str.lower if client == "bolt" else str.upper
    mart = pd.read_parquet(planted.marts_dir / "customer_features_weekly.parquet")
    assert mart["snapshot_at"].max() == pd.Timestamp("2026-06-01", tz="UTC")
    rows = mart[mart["customer_id"] == f"{client}:{norm(GOOD[client])}"].set_index("snapshot_at")
    t_before, t_arrival, t_known, t_corrected = (pd.Timestamp(t) for t in SNAPSHOTS)
    assert {t_before, t_arrival, t_known, t_corrected} <= set(rows.index)

    for t in (t_before, t_arrival):  # the late row had happened, but had not arrived yet
        assert rows.loc[t, ["purchase_count_365d", "refund_count_90d"]].tolist() == [0, 0]
        assert rows.loc[t, "spend_365d"] == 0 and pd.isna(rows.loc[t, "last_purchase_at"])
        assert pd.isna(rows.loc[t, "avg_basket_90d"])

    known = rows.loc[t_known]  # everything arrived, the correction's old value is current
    assert known[["purchase_count_30d", "purchase_count_90d", "purchase_count_365d",
                  "purchase_trend_30d", "refund_count_90d", "category_count_90d"]].tolist() == [
        5, 5, 5, 5, 1, 1]
    assert known["spend_30d"] == pytest.approx(150.0 * rate, rel=1e-9)
    assert known["spend_365d"] == pytest.approx(150.0 * rate, rel=1e-9)
    assert known["avg_basket_90d"] == pytest.approx(30.0 * rate, rel=1e-9)
    assert known["refund_rate_90d"] == pytest.approx(0.2, rel=1e-9)
    assert known["last_purchase_at"] == pd.Timestamp(WHEN)

    corrected = rows.loc[t_corrected]  # 27.00 replaces 30.00; the late row left the 30d window
    assert corrected[["purchase_count_30d", "purchase_count_90d", "purchase_count_365d",
                      "purchase_trend_30d"]].tolist() == [4, 5, 5, 3]
    assert corrected["spend_30d"] == pytest.approx(104.5 * rate, rel=1e-9)
    assert corrected["spend_90d"] == pytest.approx(147.0 * rate, rel=1e-9)
    assert corrected["avg_basket_90d"] == pytest.approx(29.4 * rate, rel=1e-9)


def test_planted_drop_features_equal_the_oracle(planted: Settings) -> None:
    """The whole planted drop (another seed, every edge case above) against the pandas oracle."""
    from tests.data.oracle import CustomerOracle, load, mismatches, read_mart, spine

    wh = load(planted)
    mart = read_mart(planted, "customer_features_weekly").set_index(["customer_id", "snapshot_at"])
    groups = dict(tuple(wh.versions.groupby("customer_id")))
    expected_keys, failures = [], []
    for customer_id in wh.customers.index:
        oracle = CustomerOracle(wh, customer_id, groups.get(customer_id, wh.versions.iloc[:0]))
        for t in spine(wh, customer_id):
            expected_keys.append((customer_id, t))
            failures += [f"{customer_id} @ {t}: {b}"
                         for b in mismatches(oracle.features(t), mart.loc[(customer_id, t)])]
    assert sorted(expected_keys) == sorted(mart.index)
    assert not failures, "\n".join(failures[:30])
