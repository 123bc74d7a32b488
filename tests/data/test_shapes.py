"""Drop shapes real clients send, onboarded by writing dbt files only, in one real dbt build.

A copy of the dbt project gets three hand-written clients instead of the generated ones (their
dbt files are in tests/data/shapes/, exactly what an analytics engineer would write):

- `whitespace_log`: a public purchase log — whitespace-aligned, no header, no customer file, no
  transaction id, no arrival time (declared: 48 h after the purchase), dot decimals, zero
  amounts quarantined (the default rule), identical lines;
- `fixed_width`: fixed-width columns, no header, no customer file, no id, '.' thousands and ','
  decimals, one drop with a declared date, zero amounts kept and flagged (a per-client rule);
- `customers_only`: customers with the client's own churn flag, no ids, no transactions.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from parity.config import PROJECT_ROOT, Settings
from parity.ingest.warehouse import query
from tests.conftest import build

pytestmark = pytest.mark.data

SHAPES = Path(__file__).parent / "shapes"
CLIENTS = ["whitespace_log", "fixed_width", "customers_only"]
DROP_DATE = pd.Timestamp("1998-06-05 06:00", tz="UTC")

# customer, yyyymmdd, items, amount; aligned with blanks as the published file is
WHITESPACE_LINES = [
    ("00001", "19970101", "1", "11.77"),
    ("00002", "19970112", "1", "12.00"),
    ("00002", "19970112", "5", "77.00"),
    ("00003", "19970102", "2", "20.76"),
    ("00003", "19970330", "2", "20.76"),
    ("00004", "19970101", "2", "29.33"),
    ("00004", "19971212", "2", "26.48"),
    ("00005", "19980101", "2", "29.33"),
    ("00005", "19980101", "2", "29.33"),  # the same line twice: two purchases
    ("00006", "19980305", "1", "0.00"),  # zero_amount (default rule: quarantine)
    ("00007", "19970231", "1", "10.00"),  # unparseable_date
    ("00008", "20990101", "1", "10.00"),  # future_date (declared arrival after the build)
    ("00009", "19970405", "1", ""),  # malformed_record: a field missing
    ("00010", "19970406", "1", "1,234.50"),  # ambiguous_amount (no thousands separator declared)
    ("00011", "19970407", "1", "twelve"),  # unparseable_amount
    ("X0012", "19970408", "1", "5.00"),  # malformed_customer_id
]
WHITESPACE_REASONS = {"00006": "zero_amount", "00007": "unparseable_date",
                      "00008": "future_date", "00009": "malformed_record",
                      "00010": "ambiguous_amount", "00011": "unparseable_amount",
                      "X0012": "malformed_customer_id"}

# customer, date, amount, currency, type, category; or a raw line (cut mid-write)
FIXED_ROWS = [
    ("F-001", "03.03.1998", "1.234,50", "EUR", "P", "books"),
    ("F-001", "10.04.1998", "12,00", "EUR", "P", "books"),
    ("F-002", "11.04.1998", "0,00", "EUR", "P", "toys"),  # zero: kept and flagged
    ("F-002", "12.04.1998", "12,5", "EUR", "P", "garden tools"),  # 12.50
    ("F-002", "12.04.1998", "1,234.50", "EUR", "P", "toys"),  # ambiguous_amount
    ("F-003", "14.04.1998", "1.23,4", "EUR", "P", "toys"),  # ambiguous_amount
    ("F-003", "15.04.1998", "12.50", "EUR", "P", "toys"),  # ambiguous_amount (dot decimal)
    ("F-003", "16.04.1998", "zwölf", "EUR", "P", "toys"),  # unparseable_amount
    ("F-004", "17.04.1998", "2.000,00", "EUR", "R", "toys"),  # a refund of 2000
    ("F-004", "01.07.1998", "5,00", "EUR", "P", "toys"),  # future_date (after the drop)
    "F-005   18.04.19",  # cut mid-write: malformed_record
]
FIXED_AMOUNTS = {("F-001", "03.03.1998"): 1234.5, ("F-001", "10.04.1998"): 12.0,
                 ("F-002", "11.04.1998"): 0.0, ("F-002", "12.04.1998"): 12.5,
                 ("F-004", "17.04.1998"): 2000.0}

CUSTOMERS_ONLY = ("country,birth_year,channel,signup_date,churned\n"
                  "DE,1980,organic,1996-01-05,yes\n"
                  "FR,1975,paid_search,1997-03-01,no\n"
                  "FR,1975,paid_search,1997-03-01,no\n"
                  "US,,referral,not a date,no\n")


def _whitespace_line(fields: tuple[str, ...]) -> str:
    customer, day, items, amount = fields
    return f"   {customer}  {day}  {items:>2} {amount:>9}".rstrip()


def _fixed_line(row: tuple[str, ...] | str) -> str:
    if isinstance(row, str):
        return row
    customer, day, amount, currency, kind, category = row
    return f"{customer:<8}{day:<10} {amount:>12} {currency:<3} {kind} {category}"


def _project(root: Path) -> Path:
    """A copy of the dbt project whose only clients are the three hand-written ones."""
    project = root / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project,
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    for staged in (project / "models" / "staging").iterdir():
        if staged.is_dir():
            shutil.rmtree(staged)
    for model in (project / "models" / "quarantine").iterdir():
        model.unlink()
    shutil.copytree(SHAPES / "models", project / "models", dirs_exist_ok=True)
    config_path = project / "dbt_project.yml"
    config = yaml.safe_load(config_path.read_text())
    config["vars"]["clients"] = CLIENTS
    config["vars"]["zero_amount_rule_by_client"] = {"fixed_width": "flag"}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("shapes")
    settings = Settings(data_dir=root / "data", project_root=_project(root / "project"))
    raw = settings.raw_dir
    for client in CLIENTS:
        (raw / client).mkdir(parents=True)
    (raw / "whitespace_log" / "purchases.txt").write_text(
        "".join(_whitespace_line(f) + "\n" for f in WHITESPACE_LINES))
    (raw / "fixed_width" / "purchases.dat").write_bytes(
        "".join(_fixed_line(r) + "\n" for r in FIXED_ROWS).encode("latin-1"))
    (raw / "customers_only" / "customers.csv").write_text(CUSTOMERS_ONLY)
    build(settings)
    return settings


def _staged(settings: Settings, client: str, table: str = "transactions") -> pd.DataFrame:
    return query(settings, f"select * from staging.stg_{client}__{table}")


def test_project_clients_are_the_hand_written_ones(shapes: Settings) -> None:
    assert shapes.clients == tuple(CLIENTS)


def test_whitespace_log_lines_are_split_and_bad_lines_quarantined(shapes: Settings) -> None:
    staged = _staged(shapes, "whitespace_log")
    assert len(staged) == len(WHITESPACE_LINES)  # one row per line, none lost or failed
    reasons = staged.groupby("source_customer_id", dropna=False)["quarantine_reason"].agg(set)
    for customer, reason in WHITESPACE_REASONS.items():
        assert reasons[customer] == {reason}, customer
    accepted = staged[staged["quarantine_reason"].isna()]
    assert set(accepted["source_customer_id"]) == {"00001", "00002", "00003", "00004", "00005"}
    assert sorted(accepted["amount_usd"]) == pytest.approx(sorted(
        float(f[3]) for f in WHITESPACE_LINES[:9]))
    row = accepted[accepted["source_customer_id"] == "00001"].iloc[0]
    assert row["transacted_at"] == pd.Timestamp("1997-01-01", tz="UTC")
    # no arrival time: the declared rule (48 hours after the purchase)
    assert (accepted["loaded_at"] - accepted["transacted_at"] == pd.Timedelta(hours=48)).all()


def test_ids_are_deterministic_and_identical_lines_are_two_purchases(shapes: Settings) -> None:
    staged = _staged(shapes, "whitespace_log")
    for fields in WHITESPACE_LINES[:8]:
        digest = hashlib.md5("|".join(fields).encode()).hexdigest()[:16]
        assert f"{digest}-1" in set(staged["transaction_id"]), fields
    repeated = staged[staged["source_customer_id"] == "00005"]["transaction_id"]
    assert sorted(s.rsplit("-", 1)[1] for s in repeated) == ["1", "2"]
    assert repeated.str.rsplit("-", n=1).str[0].nunique() == 1
    versioned = query(shapes, "select * from intermediate.int_transactions_versioned "
                              "where customer_id = 'whitespace_log:00005'")
    assert len(versioned) == 2 and (versioned["version_number"] == 1).all()


def test_customers_are_derived_from_transactions(shapes: Settings) -> None:
    customers = query(shapes, "select * from intermediate.int_customers_deduplicated "
                              "where client_id = 'whitespace_log' order by customer_id")
    assert customers["customer_id"].tolist() == [f"whitespace_log:0000{i}" for i in range(1, 6)]
    first = customers.set_index("source_customer_id")
    # signed up = first purchase; known from its arrival; attributes the log lacks are NULL
    assert first.loc["00004", "signed_up_at"] == pd.Timestamp("1997-01-01", tz="UTC")
    assert first.loc["00004", "first_loaded_at"] == pd.Timestamp("1997-01-03", tz="UTC")
    assert first[["email_hash", "country", "acquisition_channel", "birth_year"]].isna().all().all()
    staged = _staged(shapes, "whitespace_log", "customers")
    assert staged["quarantine_reason"].isna().all()


def test_fixed_width_columns_and_declared_separators(shapes: Settings) -> None:
    staged = _staged(shapes, "fixed_width")
    assert len(staged) == len(FIXED_ROWS)
    accepted = staged[staged["quarantine_reason"].isna()]
    got = {(r.source_customer_id, r.transacted_at.tz_convert("Europe/Berlin").strftime("%d.%m.%Y")):
           r.amount_local for r in accepted.itertuples()}
    assert got == pytest.approx(FIXED_AMOUNTS)
    assert accepted.set_index("amount_local").loc[2000.0, "transaction_type"] == "refund"
    assert "garden tools" in set(accepted["category"])  # a blank inside a fixed-width column
    assert sorted(staged["quarantine_reason"].dropna()) == sorted(
        ["ambiguous_amount"] * 3 + ["unparseable_amount", "future_date", "malformed_record"])
    # no arrival time: every row arrived with the drop, at its declared date
    assert (staged["loaded_at"].dropna() == DROP_DATE).all()


def test_zero_amounts_follow_each_clients_rule_and_are_counted(shapes: Settings) -> None:
    rec = query(shapes, "select * from marts.reconciliation").set_index(
        ["client_id", "source_table"])
    assert rec.loc[("fixed_width", "transactions"), "flagged_rows"] == 1
    assert rec.loc[("whitespace_log", "transactions"), "flagged_rows"] == 0
    flagged = query(shapes, "select * from staging.stg_fixed_width__transactions "
                            "where amount_flag = 'zero_amount'")
    assert len(flagged) == 1 and flagged["quarantine_reason"].isna().all()
    kept = query(shapes, "select count(*) as n from intermediate.int_transactions_versioned "
                         "where client_id = 'fixed_width' and amount_local = 0")
    assert kept["n"].item() == 1
    zero = query(shapes, "select quarantine_reason from quarantine.quarantine_whitespace_log "
                         "where source_customer_id = '00006'")
    assert zero["quarantine_reason"].tolist() == ["zero_amount"]


def test_customers_only_drop_is_accounted_for_and_not_scored(shapes: Settings) -> None:
    q = query(shapes, "select * from quarantine.quarantine_customers_only order by raw_record")
    assert q["quarantine_reason"].tolist() == [
        "not_scorable_without_transactions"] * 3 + ["unparseable_date"]
    assert q["record_id"].nunique() == 4  # two identical rows are two customers
    assert q["raw_record"].str.endswith((",yes", ",no")).all()  # the client's own flag is kept
    mart = pd.read_parquet(shapes.marts_dir / "customer_features_weekly.parquet")
    assert not mart["customer_id"].str.startswith("customers_only:").any()
    # fixed_width's one drop arrived (1998-06-05, a Friday) after the last point of the fixed weekly
    # grid at or before its watermark (Monday 1998-06-01): its customers exist at no snapshot yet
    # (README "Point in time"), so only whitespace_log has feature rows
    assert set(mart["customer_id"].str.split(":").str[0]) == {"whitespace_log"}
    marks = pd.read_parquet(shapes.marts_dir / "client_watermarks.parquet").set_index("client_id")
    assert marks.loc["fixed_width", "n_snapshots"] == 0
    assert marks.loc["fixed_width", "watermark_at"] > DROP_DATE > marks.loc["fixed_width", "watermark_at"] - pd.Timedelta(days=7)


def test_reconciliation_accounts_for_every_line(shapes: Settings) -> None:
    rec = query(shapes, "select * from marts.reconciliation")
    assert sorted(zip(rec["client_id"], rec["source_table"])) == sorted(
        (c, t) for c in CLIENTS for t in ("customers", "transactions"))
    assert (rec["unaccounted_rows"] == 0).all(), rec.to_string()
    counts = rec.set_index(["client_id", "source_table"])
    assert counts.loc[("whitespace_log", "transactions"), "raw_rows"] == len(WHITESPACE_LINES)
    assert counts.loc[("fixed_width", "transactions"), "raw_rows"] == len(FIXED_ROWS)
    assert counts.loc[("whitespace_log", "customers"), "canonical_rows"] == 5
    assert counts.loc[("customers_only", "customers"), "raw_rows"] == 4
    assert counts.loc[("customers_only", "customers"), "quarantined_rows"] == 4
    assert counts.loc[("customers_only", "transactions"), "raw_rows"] == 0


def test_build_summary_names_the_client_that_is_not_scorable(shapes: Settings, capsys) -> None:
    from parity.__main__ import _print_timelines
    from parity.ingest.warehouse import reconciliation

    _print_timelines(shapes, reconciliation(shapes))
    out = capsys.readouterr().out
    assert "not scorable without transactions: customers_only (" in out
    assert "Client watermarks" in out and "fixed_width" in out
