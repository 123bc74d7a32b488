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
# Manifest defect key -> (source table, quarantine reason) it must be quarantined with.
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
}
# Defect keys that are not quarantined, and where they are accounted for instead.
ACCOUNTED_ELSEWHERE = {"exact_duplicate", "near_duplicate", "late_correction",
                       "customer_exact_duplicate", "customer_bad_id",
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
    for row in rec.itertuples():
        files = list(manifests[row.client_id]["files"].values())  # customers file, then tx file
        assert row.raw_rows == files[TABLES.index(row.source_table)], row
        assert row.physical_rows == row.raw_rows, row  # the pre-flight counts what the generator wrote
        assert row.canonical_rows > 0 and row.quarantined_rows > 0 and row.duplicate_rows > 0


def test_every_manifest_key_is_checked(manifests: dict) -> None:
    """A new defect class in the generator must get a mapping here (and a check)."""
    for manifest in manifests.values():
        assert set(manifest["defects"]) <= set(QUARANTINE_REASON) | ACCOUNTED_ELSEWHERE


def test_quarantine_counts_match_the_injected_defects(quarantine: pd.DataFrame,
                                                      manifests: dict) -> None:
    counts = quarantine.groupby(["client_id", "source_table", "quarantine_reason"]).size()
    for client, manifest in manifests.items():
        defects = manifest["defects"]
        for key, (table, reason) in QUARANTINE_REASON.items():
            assert defects[key] > 0, f"{client}: the generator injected no {key}"
            assert counts.get((client, table, reason), 0) == defects[key], (client, key, reason)
        bad_ids = sum(counts.get((client, "customers", r), 0)
                      for r in ("missing_customer_id", "malformed_customer_id"))
        assert bad_ids == defects["customer_bad_id"], client
        # nothing is quarantined for a reason the generator did not inject
        expected = {r for _, r in QUARANTINE_REASON.values()} | {
            "missing_customer_id", "malformed_customer_id"}
        assert set(counts.loc[client].index.get_level_values(1)) <= expected


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
        assert tx_dups.get(client, 0) == d["exact_duplicate"] + d["near_duplicate"], client
        assert cust_dups.get(client, 0) == d["customer_exact_duplicate"], client
        assert corrections.get(client, 0) == d["late_correction"], client
        assert late.get(client, 0) > 0, client  # late rows are accepted, not dropped


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
