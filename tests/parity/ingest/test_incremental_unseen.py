"""Incremental builds on drops nobody described: each test appends shapes the generator never
makes to a copy of a build, adds them incrementally, builds the same raw files in full and
compares every table (EXCEPT ALL both ways, parity.ingest.incremental.differences); it also
checks what became of each planted record (accepted with the right value, or quarantined with a
reason) and that the reconciliation balances.

Shapes (one incremental + one full build for all of them, on the session's `built_data`):
- acme (Latin-1, naive Europe/Berlin times, comma decimals): a currency code or symbol beside
  the amount, a dot decimal, a thousands group the client does not declare, an unknown extra
  column, its own header re-sent mid-file, a time in the spring DST gap (accepted: README says
  gaps and folds are not checked) and one in the autumn fold months after every other client's
  data (a timeline running ahead of the others': acme's feature rows grow by a third, which the
  `feature_rows` guard refuses unless allowed);
- bolt (JSON lines, ISO with offsets): -03:30, +05:45, +14:00, -12:00 offsets (checked to the
  instant), fractional seconds, a lower-case `t`/`z`, keys in another order plus an unknown key,
  comma-decimal and symbol amounts;
- cora: a day holding only corrections (known order ids, new totals, later arrival);
- dune (no id: the key is derived from the content): lines re-sent verbatim (counted again: the
  documented limit of derived ids), a comma decimal, a currency symbol.
Cheap (the pre-flight stops it before dbt): a Latin-1 byte in a UTF-8 drop and a Windows-1252
euro sign (0x80) in a Latin-1 drop name the file, the byte and the line; nothing is published.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from parity.config import Settings
from parity.ingest import incremental
from parity.ingest.build_config import load_build_config
from parity.ingest.pipeline import BuildFailed, run_build
from parity.ingest.warehouse import query
from tests.conftest import build
from tests.parity.ingest.test_incremental import _build_incremental, _copy_data, _jsonl

pytestmark = [pytest.mark.heavy, pytest.mark.data]

AMOUNT_REASONS = {"ambiguous_amount", "unparseable_amount"}


def _append(path: Path, text: str, encoding: str = "utf-8") -> int:
    """Append `text`; returns the physical line number its first line gets."""
    first = len(path.read_bytes().splitlines()) + 1
    with path.open("a", encoding=encoding, newline="") as fh:
        fh.write(text)
    return first


def _refused(result) -> str | None:
    return json.loads((result.build / "build.json").read_text()).get("incremental_refused")


def _staged(folder: Path, client: str, first_line: int, table: str = "transactions") -> pd.DataFrame:
    """A client's staged rows from `first_line` on, by line number."""
    return query(None, f"select * from staging.stg_{client}__{table} where line_number >= {first_line} "
                 "order by line_number", folder=folder).set_index("line_number")


def _end(folder: Path) -> datetime:
    return query(None, f"select max(snapshot_at) as t from read_parquet('{folder}/marts/customer_features_weekly.parquet')",
                 folder=folder)["t"].iloc[0].to_pydatetime()


def _acme_lines(day: datetime) -> tuple[str, dict[int, object]]:
    """acme's odd records (0-based offsets in the appended text -> expected outcome)."""
    d, arrival = f"{day:%d/%m/%Y}", f"{day:%d/%m/%Y} 12:00:00"
    lines = [
        f"AT-U000001;AC-000049;{d} 10:00;EUR 12,50;EUR;books;K;{arrival}",      # 0 currency before
        f"AT-U000002;AC-000049;{d} 10:05;12,50 \u00a3;EUR;books;K;{arrival}",    # 1 a pound sign after
        f"AT-U000003;AC-000049;{d} 10:10;1.234,50;EUR;books;K;{arrival}",       # 2 undeclared thousands
        f"AT-U000004;AC-000049;{d} 10:15;12.50;EUR;books;K;{arrival}",          # 3 dot decimal
        f"AT-U000005;AC-000049;{d} 10:20;12,50;EUR;books;K;{arrival};gutschein",  # 4 extra column
        "buchungsnr;kundennummer;datum;betrag;waehrung;kategorie;art;exportiert_am",  # 5 header again
        # 6 spring forward: 29/03/2026 02:30 does not exist in Berlin (arrived that day: a late row)
        "AT-U000007;AC-000049;29/03/2026 02:30;20,00;EUR;books;K;29/03/2026 10:00:00",
        # 7 fall back: 25/10/2026 02:30 happens twice; months after the other clients' data
        "AT-U000008;AC-000049;25/10/2026 02:30;20,00;EUR;books;K;25/10/2026 09:00:00",
        f"AT-U000009;AC-000049;{d} 11:00;12,50;EUR;books;K;{arrival}",          # 8 a plain good row
    ]
    expected = {0: AMOUNT_REASONS, 1: AMOUNT_REASONS, 2: {"ambiguous_amount"}, 3: {"ambiguous_amount"},
                4: {"field_count_mismatch"}, 5: "any", 7: None, 8: None}
    return "".join(line + "\n" for line in lines), expected


def _bolt_lines(raw: Path, day: datetime) -> tuple[str, dict[int, object]]:
    """bolt's odd records: offsets and shapes; expected UTC instants for the accepted ones."""
    customer = next(r["id"] for r in _jsonl(raw / "bolt" / "customers.jsonl") if str(r.get("id", "")).startswith("b-"))
    received = day.replace(hour=12).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    base = {"customer": customer, "amount_cents": 1250, "currency": "USD", "category": "toys",
            "kind": "purchase", "received_at": received}
    d = f"{day:%Y-%m-%d}"
    times = [f"{d}T10:00:00+05:45", f"{d}T10:00:00-03:30", f"{d}T10:00:00+14:00", f"{d}T01:00:00-12:00",
             f"{d}T10:00:00.123456+02:00", f"{d}t10:00:00z"]
    records = [{**base, "txn_id": f"bt-u{n}", "ts": ts} for n, ts in enumerate(times)]
    # keys in another order plus a key the client never sent before
    records.append({"coupon": "SUMMER", "received_at": received, "ts": f"{d}T09:00:00Z", "kind": "purchase",
                    "category": "toys", "currency": "USD", "amount_cents": 990, "customer": customer, "txn_id": "bt-u6"})
    records.append({**base, "txn_id": "bt-u7", "ts": f"{d}T09:00:00Z", "amount_cents": "12,50"})
    records.append({**base, "txn_id": "bt-u8", "ts": f"{d}T09:00:00Z", "currency": "$"})
    expected: dict[int, object] = {
        0: datetime(day.year, day.month, day.day, 4, 15, tzinfo=timezone.utc),
        1: datetime(day.year, day.month, day.day, 13, 30, tzinfo=timezone.utc),
        2: datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - timedelta(hours=4),
        3: datetime(day.year, day.month, day.day, 13, 0, tzinfo=timezone.utc),
        4: datetime(day.year, day.month, day.day, 8, 0, 0, 123456, tzinfo=timezone.utc),
        5: "any",  # lower-case designators: accepted at 10:00 UTC or refused, never another instant
        6: datetime(day.year, day.month, day.day, 9, 0, tzinfo=timezone.utc),
        7: {"wrong_type", "unparseable_amount"}, 8: {"unknown_currency"}}
    return "".join(json.dumps(r) + "\n" for r in records), expected


def _cora_corrections(raw: Path, day: datetime) -> tuple[str, list[str]]:
    """Three known cora orders re-sent with new totals and a later arrival (corrections only)."""
    lines = (raw / "cora" / "orders.csv").read_text(encoding="utf-8").splitlines()[1:]
    good = [line.split(",") for line in lines if line.startswith("OR-") and ",CR-" in line and line.count(",") == 7]
    picked = [good[len(good) // 4], good[len(good) // 2], good[3 * len(good) // 4]]
    stamp = f"{day:%Y-%m-%d} 12:00:00"
    text = "".join(",".join([*f[:3], f"{float(f[3]) + 1:.2f}", *f[4:7], stamp]) + "\n" for f in picked)
    return text, [f[0] for f in picked]


def _dune_lines(raw: Path) -> tuple[str, int]:
    """dune: its last three lines re-sent verbatim, a comma decimal, a currency symbol."""
    path = raw / "dune" / "purchases.txt"
    tail = path.read_text(encoding="utf-8").splitlines()[-3:]
    template = tail[-1]
    odd = [f"{template[:31]}{'12,50':>14}{template[45:]}", f"{template[:31]}{'$12.50':>14}{template[45:]}"]
    return "".join(line + "\n" for line in [*tail, *odd]), len(tail)


def test_odd_values_and_timelines_equal_full_build(built_data: Settings, tmp_path: Path) -> None:
    settings = _copy_data(built_data, tmp_path / "data")
    raw = settings.raw_dir
    day = _end(settings.published_dir.resolve()) + timedelta(days=2, hours=0)
    acme_text, acme_expected = _acme_lines(day)
    acme_first = _append(raw / "acme" / "transactions.csv", acme_text, "latin-1")
    bolt_text, bolt_expected = _bolt_lines(raw, day)
    bolt_first = _append(raw / "bolt" / "transactions.jsonl", bolt_text)
    cora_text, corrected = _cora_corrections(raw, day)
    cora_first = _append(raw / "cora" / "orders.csv", cora_text)
    dune_text, resent = _dune_lines(raw)
    _append(raw / "dune" / "purchases.txt", dune_text)

    # acme's timeline jumps ~5 months ahead of the others' (the DST-fold row): its feature rows
    # grow by a third, and the feature_rows guard refuses that unless allowed (seen in a run)
    allow = frozenset({"acme:feature_rows"})
    added = run_build(settings, load_build_config(), capture=True, incremental=True, allow=allow)
    assert added.mode == "incremental", _refused(added)

    # every planted record: accepted with the right value, or quarantined with a reason
    acme = _staged(added.build, "acme", acme_first)
    assert len(acme) == len(acme_expected) + 1  # every line a record (the DST gap line too)
    for offset, want in acme_expected.items():
        reason = acme.loc[acme_first + offset, "quarantine_reason"]
        if want == "any":
            assert reason is not None, (offset, acme.loc[acme_first + offset].to_dict())
        elif want is None:
            assert reason is None, (offset, reason)
        else:
            assert reason in want, (offset, reason)
    bolt = _staged(added.build, "bolt", bolt_first)
    for offset, want in bolt_expected.items():
        row = bolt.loc[bolt_first + offset]
        if isinstance(want, datetime):
            assert row["quarantine_reason"] is None, (offset, row["quarantine_reason"])
            assert row["transacted_at"].to_pydatetime() == want, offset
        elif want == "any":
            assert row["quarantine_reason"] is not None or row["transacted_at"].to_pydatetime() == day.replace(hour=10)
        else:
            assert row["quarantine_reason"] in want, (offset, row["quarantine_reason"])
    cora = _staged(added.build, "cora", cora_first)
    assert cora["quarantine_reason"].isna().all() and sorted(cora["transaction_id"]) == sorted(corrected)
    versions = query(None, "select transaction_id, count(*) as n from intermediate.int_transactions_versioned "
                     "where client_id = 'cora' and transaction_id in ('" + "', '".join(corrected) + "') group by 1",
                     folder=added.build)
    assert (versions["n"] >= 2).all() and len(versions) == 3  # each a new version, not a new order
    # dune's staged rows carry no line number: found by their text
    dune = query(None, "select raw_record, transaction_id, quarantine_reason from staging.stg_dune__transactions",
                 folder=added.build)
    odd = dune[dune["raw_record"].isin(dune_text.splitlines()[resent:])]
    assert len(odd) == 2 and odd["quarantine_reason"].isin(AMOUNT_REASONS).all()
    # a line re-sent verbatim gets the next occurrence number: counted as one more purchase (the
    # limit README "No transaction id" states: one file is one drop, so a re-send cannot be told
    # from a second identical purchase)
    for line in dune_text.splitlines()[:resent]:
        ids = dune[dune["raw_record"] == line]["transaction_id"]
        assert len(ids) >= 2 and ids.str.rsplit("-", n=1).str[0].nunique() == 1

    rec = query(None, "select * from marts.reconciliation", folder=added.build)
    assert (rec["unaccounted_rows"] == 0).all(), rec.to_string()

    rebuilt = build(settings, allow=allow)
    assert rebuilt.mode == "full"
    diffs = incremental.differences(added.build, rebuilt.build)
    assert "marts/customer_features_weekly" in diffs
    assert {name: d for name, d in diffs.items() if d != (0, 0)} == {}


def test_wrong_encoding_bytes_stop_the_incremental_build(built_data: Settings, tmp_path: Path) -> None:
    """A Latin-1 byte in a UTF-8 drop and a Windows-1252 euro sign in a Latin-1 drop: the
    pre-flight stops the build naming each file and the byte (the second also its line), and
    the published build stays."""
    settings = _copy_data(built_data, tmp_path / "data")
    published = settings.published_dir.resolve()
    bolt = settings.raw_dir / "bolt" / "transactions.jsonl"
    at = bolt.stat().st_size
    record = json.dumps({"txn_id": "bt-latin1", "customer": "b-00235", "ts": "2026-06-02T10:00:00Z",
                         "amount_cents": 500, "currency": "USD", "category": "caf\u00e9", "kind": "purchase",
                         "received_at": "2026-06-02T12:00:00Z"}, ensure_ascii=False)
    _append(bolt, record + "\n", "latin-1")
    acme = settings.raw_dir / "acme" / "transactions.csv"
    line = _append(acme, "AT-U000001;AC-000049;02/06/2026 10:00;\x8012,50;EUR;books;K;02/06/2026 12:00:00\n", "latin-1")
    with pytest.raises(BuildFailed) as failed:
        _build_incremental(settings)
    message = str(failed.value)
    bad_at = at + record.index("\u00e9")  # every byte before it is ASCII
    assert f"bolt/transactions.jsonl (source bolt.transactions): wrong encoding: not valid UTF-8 at byte {bad_at}" in message
    assert "acme/transactions.csv (source acme.transactions): wrong encoding: byte 0x80" in message
    assert f"(line {line}) is a control character in latin-1" in message and "Windows-1252" in message
    assert settings.published_dir.resolve() == published


# --- clients onboarded with dbt files only ----------------------------------------------------
# `whitespace_log` (tests/data/shapes: no header, no customer file, no id, declared arrival 48 h
# after the purchase, 1997-98: a timeline 28 years before everyone else's) and `retail`, written
# here: an Online-Retail-like invoice CSV with a header but no line id (the key is derived from
# the content), no customer file and no arrival column (declared: one hour after the purchase).
# `retail` reads its records with csv_records, so its staging is incremental (audited).

RETAIL_SOURCES = """version: 2
sources:
  - name: retail
    config: {enabled: "{{ 'retail' in var('clients') }}"}
    meta: {client_id: retail}
    tables:
      - name: invoices
        meta:
          file: "{{ env_var('PARITY_DATA_DIR', '../data') }}/raw/retail/invoices.csv"
          format: csv
          encoding: utf-8
          delimiter: ","
          required_fields: [Invoice, Customer, InvoiceDate, Price]
          arrival: {rule: delay, hours: 1}
          external_location: "read_csv('{{ env_var('PARITY_DATA_DIR', '../data') }}/raw/retail/invoices.csv', header=false, columns=struct_pack(raw_line := 'VARCHAR'), auto_detect=false, delim='\\\\n', quote='', escape='', strict_mode=false, max_line_size=67108864, encoding='utf-8')"
"""

RETAIL_TRANSACTIONS = """{%- set options = parse_options('retail', 'invoices') -%}
with source as (
    select * from {{ csv_records(source('retail', 'invoices'), ',', ['Invoice', 'Customer', 'InvoiceDate', 'Price', 'Country']) }} as records
),

parsed as (
    select
        'retail' as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line,
        record_problem,
        {{ row_hash_id(['"Invoice"', '"Customer"', '"InvoiceDate"', '"Price"']) }} as transaction_id,
        nullif(trim("Customer"), '') as source_customer_id,
        coalesce({{ matches('trim("Customer")', '[0-9]{5}') }}, false) as is_customer_id_well_formed,
        false as is_test_account,
        'purchase' as transaction_type,
        cast(null as {{ dbt.type_string() }}) as category,
        'GBP' as currency,
        {{ strict_decimal('trim("Price")', options) }} as amount_local,
        {{ decimal_problem('trim("Price")', options) }} as amount_problem,
        {{ strict_timestamp('trim("InvoiceDate")', timestamp_spec(options, 'InvoiceDate')) }} as transacted_at,
        {{ timestamp_problem('trim("InvoiceDate")', timestamp_spec(options, 'InvoiceDate'), 'unparseable_date') }} as transacted_at_problem,
        cast(null as {{ dbt.type_string() }}) as loaded_at_problem,
        case when record_problem is null then concat_ws(',', "Invoice", "Customer", "InvoiceDate", "Price", "Country")
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from source
),

arrived as (
    select *, {{ declared_arrival('transacted_at', 'retail', 'invoices') }} as loaded_at from parsed
),

checked as (
    select *, coalesce({{ arrival_after_build('loaded_at') }}, amount_problem) as parse_reason from arrived
)

{{ stage_transactions('checked', parse_reason='parse_reason', audited=true) }}
"""

RETAIL_LINES = [  # Invoice, Customer, InvoiceDate (UTC), Price, Country
    ("536365", "17850", "2011-01-04 08:26:00", "15.30", "United Kingdom"),
    ("536365", "17850", "2011-01-04 08:26:00", "15.30", "United Kingdom"),  # the same line twice: two purchases
    ("536366", "17850", "2011-02-01 08:28:00", "11.10", "United Kingdom"),
    ("536367", "13047", "2011-03-01 08:34:00", "54.08", "United Kingdom"),
    ("536368", "13047", "2011-06-01 08:34:00", "1,234.50", "United Kingdom"),  # ambiguous_amount
    ("536369", "12583", "2011-11-30 08:45:00", "20.00", "France"),
]


def _dbt_only_project(root: Path) -> Path:
    """A copy of the dbt project whose only clients are `whitespace_log` and `retail`."""
    import shutil

    import yaml

    from parity.config import PROJECT_ROOT
    from tests.data.test_shapes import SHAPES

    project = root / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    for staged in (project / "models" / "staging").iterdir():
        if staged.is_dir():
            shutil.rmtree(staged)
    for model in (project / "models" / "quarantine").iterdir():
        model.unlink()
    shutil.copytree(SHAPES / "models" / "staging" / "whitespace_log", project / "models" / "staging" / "whitespace_log")
    retail = project / "models" / "staging" / "retail"
    retail.mkdir()
    (retail / "_retail__sources.yml").write_text(RETAIL_SOURCES)
    (retail / "stg_retail__transactions.sql").write_text(RETAIL_TRANSACTIONS)
    (retail / "stg_retail__customers.sql").write_text("{{ stage_customers_from_transactions('retail') }}\n")
    quarantine = project / "models" / "quarantine"
    for client in ("whitespace_log", "retail"):
        (quarantine / f"quarantine_{client}.sql").write_text(f"{{{{ quarantine_for_client('{client}') }}}}\n")
    config_path = project / "dbt_project.yml"
    config = yaml.safe_load(config_path.read_text())
    config["vars"]["clients"] = ["whitespace_log", "retail"]
    config["vars"]["parsing"]["retail"] = {"date_order": "YMD", "timezone": "UTC", "decimal_separator": ".",
                                           "formats": {"InvoiceDate": "%Y-%m-%d %H:%M:%S"}}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _retail_csv(rows) -> str:
    return "".join(",".join(row) + "\n" for row in rows)


def test_dbt_only_clients_no_header_no_ids_old_timeline_equal_full_build(tmp_path: Path) -> None:
    """Both dbt-only clients: base build, a day appended, incremental == full. retail also holds
    (mid-file) a purchase whose declared arrival is a minute or two after the base build started: refused
    there as `future_date` (no row can have arrived after the build), it has arrived by the
    incremental build and must be accepted, as a full build then accepts it."""
    import time

    from tests.data.test_shapes import _whitespace_line

    settings = Settings(data_dir=tmp_path / "data", project_root=_dbt_only_project(tmp_path / "project"))
    raw = settings.raw_dir
    (raw / "whitespace_log").mkdir(parents=True)
    (raw / "retail").mkdir(parents=True)
    legacy = [("00001", "19970101", "1", "11.77"), ("00002", "19970112", "1", "12.00"),
              ("00003", "19970102", "2", "20.76"), ("00003", "19970330", "2", "20.76"),
              ("00004", "19971212", "2", "26.48"), ("00005", "19980101", "2", "29.33")]
    (raw / "whitespace_log" / "purchases.txt").write_text("".join(_whitespace_line(f) + "\n" for f in legacy))
    # arrives (purchase + 1 h) 150 s from now: after the base build's start, before the next build
    arrival = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=150)
    soon = ("536370", "12583", f"{arrival - timedelta(hours=1):%Y-%m-%d %H:%M:%S}", "9.99", "France")
    (raw / "retail" / "invoices.csv").write_text("Invoice,Customer,InvoiceDate,Price,Country\n"
                                                  + _retail_csv([*RETAIL_LINES[:3], soon, *RETAIL_LINES[3:]]))
    base = build(settings)
    staged = query(None, "select quarantine_reason from staging.stg_retail__transactions "
                   "where raw_record like '536370,%'", folder=base.build)["quarantine_reason"].tolist()
    if staged != ["future_date"]:  # the base build started after the arrival: nothing to check
        pytest.skip(f"the base build started after {arrival} (the purchase was {staged})")

    # the next day: a line re-sent verbatim and one re-aligned (same derived id, next occurrence), a
    # backdated purchase (arrival 1997, before the last snapshot), and retail lines the same way
    _append(raw / "whitespace_log" / "purchases.txt",
            _whitespace_line(legacy[1]) + "\n" + "  " + _whitespace_line(legacy[4]).replace(" ", "  ") + "\n"
            + _whitespace_line(("00002", "19970301", "1", "7.50")) + "\n")
    _append(raw / "retail" / "invoices.csv", _retail_csv([RETAIL_LINES[2], ("536371", "13047", "2011-04-01 09:00:00", "5.00", "UK")]))
    time.sleep(max(0.0, (arrival - datetime.now(timezone.utc)).total_seconds() + 2))

    # once accepted, retail's purchase of today moves its timeline from 2011 to today: its feature
    # rows grow fivefold, which the feature_rows guard refuses unless allowed
    allow = frozenset({"retail:feature_rows"})
    added = run_build(settings, load_build_config(), capture=True, incremental=True, allow=allow)
    assert added.mode == "incremental", _refused(added)
    rec = query(None, "select * from marts.reconciliation", folder=added.build)
    assert (rec["unaccounted_rows"] == 0).all(), rec.to_string()
    rebuilt = build(settings, allow=allow)
    assert rebuilt.mode == "full"
    accepted = query(None, "select quarantine_reason from staging.stg_retail__transactions where raw_record like '536370,%'",
                     folder=rebuilt.build)["quarantine_reason"].tolist()
    assert accepted == [None]  # arrived before this build: a full build takes it
    diffs = incremental.differences(added.build, rebuilt.build)
    assert "marts/customer_features_weekly" in diffs
    assert {name: d for name, d in diffs.items() if d != (0, 0)} == {}
