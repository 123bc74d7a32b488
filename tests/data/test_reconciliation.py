"""Reconciliation of the built sample drop: nothing lost, every injected defect caught, no PII.

The generator counts every defect it injects in `<client>/_manifest.json`; each count must be
found again, exactly, in the quarantine, the duplicate tables or the versioned transactions.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest

from parity.config import Settings
from parity.ingest.warehouse import query

pytestmark = pytest.mark.data

TABLES = ("customers", "transactions")
# Manifest defect key -> (source table, quarantine reason) it must be quarantined with. Each
# client's manifest lists the classes its drop shape can carry (dune has no ids, no customer
# file and no currency column, so no duplicates, orphans or unknown currencies).
QUARANTINE_REASON = {
    "null_customer_id": ("transactions", "missing_customer_id"),
    "malformed_customer_id": ("transactions", "malformed_customer_id"),
    "unparseable_date": ("transactions", "unparseable_date"),
    "future_date": ("transactions", "future_date"),
    "negative_amount": ("transactions", "negative_amount"),
    "absurd_amount": ("transactions", "absurd_amount"),
    "unknown_currency": ("transactions", "unknown_currency"),
    "test_transactions": ("transactions", "test_account"),
    "orphan_transactions": ("transactions", "orphan_customer"),
    "test_accounts": ("customers", "test_account"),
    "ambiguous_amount": ("transactions", "ambiguous_amount"),
    "unparseable_amount": ("transactions", "unparseable_amount"),
    "malformed_record": ("transactions", "malformed_record"),
}
# Defect keys that are not quarantined, and where they are accounted for instead.
ACCOUNTED_ELSEWHERE = {"exact_duplicate", "near_duplicate", "late_correction",
                       "customer_exact_duplicate", "customer_bad_id",
                       # kept under a client's zero_amount_rule `flag`: reconciliation.flagged_rows
                       "zero_amount",
                       # identical lines of a log without ids: two purchases, both canonical
                       "repeated_lines",
                       # facts about the data rather than defects to remove
                       "missing_birth_year", "refunds", "late_arriving", "test_accounts",
                       "orphan_customers"}
PII_COLUMN = re.compile(r"(?:e[-_]?mail|(?:^|_)(?:full_|first_|last_|user_)?name$)")


@pytest.fixture(scope="module")
def manifests(built_data: Settings) -> dict[str, dict]:
    return {c: json.loads((built_data.raw_dir / c / "_manifest.json").read_text())
            for c in built_data.clients}


@pytest.fixture(scope="module")
def quarantine(built_data: Settings) -> pd.DataFrame:
    return pd.concat([query(built_data, f"select * from quarantine.quarantine_{c}")
                      for c in built_data.clients], ignore_index=True)


def _per_client(built_data: Settings, relation: str, where: str = "true") -> dict[str, int]:
    df = query(built_data, f"select client_id, count(*) as n from {relation} where {where} "
                           "group by client_id")
    return dict(zip(df["client_id"], df["n"]))


def test_one_row_per_client_and_table_and_nothing_unaccounted(built_data: Settings,
                                                              manifests: dict) -> None:
    rec = query(built_data, "select * from marts.reconciliation")
    assert sorted(zip(rec["client_id"], rec["source_table"])) == [
        (c, t) for c in sorted(built_data.clients) for t in TABLES]
    assert (rec["unaccounted_rows"] == 0).all(), rec.to_string()
    derived = _per_client(built_data, "intermediate.int_customers_deduplicated")
    for row in rec.itertuples():
        manifest = manifests[row.client_id]
        file = manifest["tables"][row.source_table]
        if file is None:  # no customer file: one derived customer per accepted customer id
            assert row.source_table == "customers", row
            assert row.raw_rows == row.canonical_rows == derived[row.client_id] > 0, row
            assert row.quarantined_rows == row.duplicate_rows == 0, row
            assert pd.isna(row.physical_rows), row  # no raw file feeds it
            continue
        assert row.raw_rows == manifest["files"][file], row
        assert row.physical_rows == row.raw_rows, row  # the pre-flight counts what the generator wrote
        assert row.canonical_rows > 0 and row.quarantined_rows > 0, row
        has_duplicates = {"exact_duplicate", "customer_exact_duplicate"} & set(manifest["defects"])
        assert (row.duplicate_rows > 0) == bool(has_duplicates), row


def test_every_manifest_key_is_checked(manifests: dict) -> None:
    """A new defect class in the generator must get a mapping here (and a check)."""
    for manifest in manifests.values():
        assert set(manifest["defects"]) <= set(QUARANTINE_REASON) | ACCOUNTED_ELSEWHERE


def test_quarantine_counts_match_the_injected_defects(quarantine: pd.DataFrame,
                                                      manifests: dict) -> None:
    counts = quarantine.groupby(["client_id", "source_table", "quarantine_reason"]).size()
    for client, manifest in manifests.items():
        defects = manifest["defects"]
        injected = {key: QUARANTINE_REASON[key] for key in defects if key in QUARANTINE_REASON}
        assert len(injected) >= 6, (client, sorted(defects))
        for key, (table, reason) in injected.items():
            assert defects[key] > 0, f"{client}: the generator injected no {key}"
            assert counts.get((client, table, reason), 0) == defects[key], (client, key, reason)
        expected = {r for _, r in injected.values()}
        if "customer_bad_id" in defects:
            bad_ids = sum(counts.get((client, "customers", r), 0)
                          for r in ("missing_customer_id", "malformed_customer_id"))
            assert bad_ids == defects["customer_bad_id"], client
            expected |= {"missing_customer_id", "malformed_customer_id"}
        # nothing is quarantined for a reason the generator did not inject
        assert set(counts.loc[client].index.get_level_values(1)) <= expected


def test_flagged_rows_match_the_injected_zero_amounts(built_data: Settings,
                                                      manifests: dict) -> None:
    rec = query(built_data, "select * from marts.reconciliation where source_table = 'transactions'")
    flagged = dict(zip(rec["client_id"], rec["flagged_rows"]))
    assert any(m["defects"].get("zero_amount") for m in manifests.values())
    for client, manifest in manifests.items():
        assert flagged[client] == manifest["defects"].get("zero_amount", 0), client


def test_duplicates_and_corrections_match_the_injected_defects(built_data: Settings,
                                                               manifests: dict) -> None:
    tx_dups = _per_client(built_data, "intermediate.int_transactions_duplicates")
    cust_dups = _per_client(built_data, "intermediate.int_customers_duplicates")
    corrections = _per_client(built_data, "intermediate.int_transactions_versioned",
                              "version_number > 1")
    late = _per_client(built_data, "intermediate.int_transactions_versioned",
                       "version_number = 1 and loaded_at > transacted_at + interval 7 day")
    for client, manifest in manifests.items():
        d = manifest["defects"]
        assert tx_dups.get(client, 0) == d.get("exact_duplicate", 0) + d.get("near_duplicate", 0), client
        assert cust_dups.get(client, 0) == d.get("customer_exact_duplicate", 0), client
        assert corrections.get(client, 0) == d.get("late_correction", 0), client
        assert late.get(client, 0) > 0, client  # late rows are accepted, not dropped


def test_repeated_lines_are_kept_as_purchases(built_data: Settings, manifests: dict) -> None:
    """Identical lines of a log without ids are separate purchases (occurrence 2, 3, ...)."""
    repeats = _per_client(built_data, "intermediate.int_transactions_versioned",
                          "transaction_id like '%-2'")
    for client, manifest in manifests.items():
        if "repeated_lines" in manifest["defects"]:
            assert repeats.get(client, 0) == manifest["defects"]["repeated_lines"] > 0, client


def test_no_email_in_quarantined_raw_records(quarantine: pd.DataFrame) -> None:
    assert len(quarantine) > 0
    leaked = quarantine[quarantine["raw_record"].fillna("").str.contains("@", regex=False)]
    assert leaked.empty, leaked[["client_id", "record_id", "raw_record"]].head().to_string()


def test_no_pii_column_in_any_model(built_data: Settings) -> None:
    cols = query(built_data, """
        select table_schema, table_name, column_name, data_type
        from information_schema.columns
        where table_schema in ('staging', 'intermediate', 'quarantine', 'marts')
    """)
    assert {"staging", "intermediate", "quarantine", "marts"} <= set(cols["table_schema"])
    names = cols["column_name"].str.lower()
    pii = cols[names.str.contains(PII_COLUMN) & (names != "email_hash")]
    assert pii.empty, pii.to_string()
    for mart in built_data.marts_dir.glob("*.parquet"):
        fields = [f.lower() for f in pq.read_schema(mart).names]
        assert not [f for f in fields if PII_COLUMN.search(f) and f != "email_hash"], mart.name


def test_no_email_address_in_any_text_column(built_data: Settings) -> None:
    """Stronger than the column names: no value in any text column looks like an e-mail."""
    cols = query(built_data, """
        select table_schema, table_name, column_name
        from information_schema.columns
        where table_schema in ('staging', 'intermediate', 'quarantine', 'marts')
          and data_type = 'VARCHAR'
    """)
    assert len(cols) > 20
    checks = [f"""select '{r.table_schema}.{r.table_name}.{r.column_name}' as col, count(*) as n
                  from {r.table_schema}."{r.table_name}" where "{r.column_name}" like '%@%'"""
              for r in cols.itertuples()]
    hits = query(built_data, " union all ".join(checks))
    assert hits["n"].sum() == 0, hits[hits["n"] > 0].to_string()


def test_pii_check_would_catch_a_clear_text_email() -> None:
    """The PII pattern is not vacuous."""
    for name in ("email", "E-Mail", "e_mail", "name", "full_name", "customer_email"):
        assert PII_COLUMN.search(name.lower()), name
    for name in ("email_hash", "customer_id", "source_table", "country"):
        assert name == "email_hash" or not PII_COLUMN.search(name), name


def test_monthly_deliverer_has_its_own_earlier_timeline(built_data: Settings,
                                                        manifests: dict) -> None:
    """A client without arrival times arrives with its declared monthly drops; its watermark is
    the midnight after its last drop, weeks before the others'."""
    marks = query(built_data, "select client_id, watermark_at from marts.client_watermarks")
    marks = dict(zip(marks["client_id"], marks["watermark_at"]))
    monthly = {c: m for c, m in manifests.items() if m.get("arrival", {}).get("rule") == "monthly"}
    assert monthly, "no monthly deliverer generated"
    for client, manifest in monthly.items():
        rule, last_drop = manifest["arrival"], pd.Timestamp(manifest["last_drop_at"])
        arrivals = query(built_data, "select distinct loaded_at from intermediate.int_transactions_versioned "
                                     f"where client_id = '{client}'")["loaded_at"]
        assert arrivals.max() == last_drop
        assert ((arrivals.dt.day == rule["day_of_month"]) & (arrivals.dt.hour == rule["hour"])).all()
        assert marks[client] == last_drop.floor("D") + pd.Timedelta(days=1)
        others = [w for c, w in marks.items() if c not in monthly]
        assert marks[client] <= min(others) - pd.Timedelta(weeks=3), (client, marks)
