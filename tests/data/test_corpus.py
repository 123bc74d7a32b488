"""The corruption corpus (tests/data/corpus.py) against the real pre-flight and one dbt build.

Every row-level kind is planted in one small generated drop and built once; each planted record
is found again by its file and line number and must end exactly as the corpus says. Every
file-level kind is checked on its own by the pre-flight (no dbt run). Then, for the whole build:
no traceback (the build and the pre-flight finish with a message or not at all), every physical
record accounted for (an independent count with Python's csv module), and no clear-text e-mail
or name in any table but staging, nor in any Parquet mart.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from parity.config import Settings
from parity.ingest.preflight import check_source, sources_from_manifest
from parity.ingest.warehouse import query
from tests.conftest import build, generate_raw
from tests.data.corpus import (
    ACCEPTED,
    BUILD_LEVEL,
    DUPLICATE,
    ENCODING,
    FILE_CASES,
    FILES,
    NOT_A_RECORD,
    PII_EMAIL,
    PII_NAME,
    PREFLIGHT_CASES,
    ROW_CASES,
    RowCase,
    good_customer,
    render,
)

pytestmark = pytest.mark.data

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
TABLE_INDEX = {"customers": 0, "transactions": 1}


def _path(settings: Settings, client: str, table: str) -> Path:
    return settings.raw_dir / client / FILES[client][TABLE_INDEX[table]]


def _append(path: Path, data: bytes) -> int:
    """Append bytes; the 1-based number of the first line they start."""
    first = path.read_bytes().count(b"\n") + 1
    with path.open("ab") as fh:
        fh.write(data)
    return first


def plant(settings: Settings) -> dict[str, tuple[str, int]]:
    """Append the planted customers and every row case; (file, first line) of each case."""
    for client in FILES:
        _append(_path(settings, client, "customers"), render(client, good_customer(client)))
    where = {}
    for number, case in enumerate(ROW_CASES):
        path = _path(settings, case.client, case.table)
        where[case.name] = (str(path), _append(path, case.lines(f"CX-{number:03d}")))
    for change in FILE_CASES:
        path = _path(settings, change.client, change.table)
        path.write_bytes(change.rewrite(path.read_bytes()))
    return where


def physical_records(path: Path, client: str) -> int:
    """Records as an independent reader counts them: Python's csv module (quotes honoured,
    blank lines skipped, header excluded) or the non-blank lines of JSON lines."""
    data = path.read_bytes()
    if client == "bolt":
        return sum(1 for line in data.split(b"\n") if line.strip(b"\r"))
    csv.field_size_limit(10**9)
    text = data.decode("utf-8-sig" if ENCODING[client] == "utf-8" else ENCODING[client])
    rows = [r for r in csv.reader(io.StringIO(text, newline=""),
                                  delimiter=";" if client == "acme" else ",") if r]
    return len(rows) - 1


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, tuple[str, int]]]:
    settings = generate_raw(tmp_path_factory.mktemp("corpus"), scale=0.05, seed=13)
    where = plant(settings)
    build(settings)  # raises with dbt's message on any failure: no traceback reaches the user
    return settings, where


@pytest.fixture(scope="module")
def staged(corpus: tuple[Settings, dict]) -> pd.DataFrame:
    settings, _ = corpus
    parts = [query(settings, f"select '{table}' as source_table, line_number, source_file, "
                             f"quarantine_reason from staging.stg_{client}__{table}")
             for client in FILES for table in ("customers", "transactions")]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def quarantined(corpus: tuple[Settings, dict]) -> pd.DataFrame:
    settings, _ = corpus
    return pd.concat([query(settings, f"select * from quarantine.quarantine_{c}") for c in FILES],
                     ignore_index=True)


def test_the_corpus_covers_at_least_60_kinds() -> None:
    names = [c.name for c in ROW_CASES] + [c.name for c in FILE_CASES] + [
        c.name for c in PREFLIGHT_CASES]
    assert len(names) == len(set(names))
    assert len(names) >= 60, len(names)
    assert BUILD_LEVEL  # and the build-level kinds are named with where they are checked


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c.name)
def test_each_row_case_ends_as_the_corpus_says(corpus: tuple[Settings, dict], staged: pd.DataFrame,
                                               quarantined: pd.DataFrame, case: RowCase) -> None:
    settings, where = corpus
    file, line = where[case.name]
    at = staged[(staged["source_file"] == file) & (staged["line_number"] == line)]
    if case.expected == NOT_A_RECORD:
        assert at.empty, at.to_string()
        return
    assert len(at) == 1, f"{case.name}: no staged record at {file}:{line}"
    reason = at["quarantine_reason"].iloc[0]
    if case.expected in (ACCEPTED, DUPLICATE):
        assert pd.isna(reason), f"{case.name}: quarantined as {reason}"
        if case.expected == DUPLICATE:
            tid = f"CX-{[c.name for c in ROW_CASES].index(case.name):03d}"
            record_id = case.change.get("buchungsnr", tid)
            dups = query(settings, "select count(*) as n from intermediate.int_transactions_duplicates"
                                   f" where client_id = '{case.client}' and transaction_id = '{record_id}'")
            assert dups["n"].iloc[0] == 1
        return
    # an orphan passes staging; the quarantine takes it later, with the same line
    assert reason == (None if case.expected == "orphan_customer" else case.expected) or (
        pd.isna(reason) and case.expected == "orphan_customer"), f"{case.name}: {reason}"
    hit = quarantined[(quarantined["source_file"] == file) & (quarantined["line_number"] == line)]
    assert hit["quarantine_reason"].tolist() == [case.expected], case.name


def test_accepted_cases_keep_their_values(corpus: tuple[Settings, dict]) -> None:
    """A quoted newline, a quoted delimiter and a sloppy id are read right, not just accepted."""
    settings, where = corpus
    rows = query(settings, "select source_file, line_number, category, customer_id, amount_local "
                           "from staging.stg_acme__transactions union all select source_file, "
                           "line_number, category, customer_id, amount_local from "
                           "staging.stg_cora__transactions")

    def at(name: str) -> pd.Series:
        file, line = where[name]
        return rows[(rows["source_file"] == file) & (rows["line_number"] == line)].iloc[0]

    assert at("quoted_newline")["category"] == "books\nmusic"
    assert at("quoted_delimiter")["category"] == "books; music"
    assert at("quoted_comma")["category"] == "toys, games"
    assert at("whitespace_id")["customer_id"] == "acme:AC-990001"
    spaced = at("unicode_spaces_around_values")
    assert (spaced["customer_id"], spaced["category"], spaced["amount_local"]) == ("cora:CR-99001", "books", 12.5)
    assert at("good_row")["amount_local"] == pytest.approx(12.5)


def test_whole_file_changes_still_build(corpus: tuple[Settings, dict]) -> None:
    """A BOM and reversed columns (cora's customers), CR LF line ends (bolt's customers)."""
    settings, _ = corpus
    customers = query(settings, "select customer_id, country, birth_year, quarantine_reason from "
                                "staging.stg_cora__customers union all select customer_id, country,"
                                " birth_year, quarantine_reason from staging.stg_bolt__customers")
    for key, country in (("cora:CR-99001", "GB"), ("bolt:b-99001", "US")):
        row = customers[customers["customer_id"] == key]
        assert row["quarantine_reason"].isna().all() and len(row) == 1, key
        assert row[["country", "birth_year"]].values.tolist() == [[country, 1980]]
    # and nothing in those files was rejected for its shape
    shape = {"field_count_mismatch", "delimiter_mismatch", "format_mismatch", "malformed_quoting"}
    assert not set(customers["quarantine_reason"].dropna()) & shape


def test_every_physical_record_is_accounted_for(corpus: tuple[Settings, dict]) -> None:
    settings, _ = corpus
    rec = query(settings, "select * from marts.reconciliation")
    assert (rec["unaccounted_rows"] == 0).all(), rec.to_string()
    planted = rec[rec["client_id"].isin(list(FILES))]  # the clients the corpus is planted in
    assert len(planted) == 2 * len(FILES)
    for row in planted.itertuples():
        path = _path(settings, row.client_id, row.source_table)
        expected = physical_records(path, row.client_id)
        # the pre-flight's count, our own count and the records staging read all agree
        assert row.physical_rows == row.raw_rows == expected, (row.client_id, row.source_table)


def test_no_clear_text_email_or_name_outside_staging(corpus: tuple[Settings, dict]) -> None:
    settings, _ = corpus
    cols = query(settings, "select table_schema, table_name, column_name from "
                           "information_schema.columns where data_type = 'VARCHAR' "
                           "and table_schema <> 'staging'")
    assert {"quarantine", "intermediate", "marts"} <= set(cols["table_schema"])
    checks = [f"""select '{r.table_schema}.{r.table_name}.{r.column_name}' as col, count(*) as n
                  from "{r.table_schema}"."{r.table_name}"
                  where regexp_matches("{r.column_name}", '{EMAIL.pattern}')
                     or contains(lower("{r.column_name}"), '{PII_NAME.lower()}')"""
              for r in cols.itertuples()]
    hits = query(settings, " union all ".join(checks))
    assert hits["n"].sum() == 0, hits[hits["n"] > 0].to_string()
    for mart in settings.marts_dir.glob("*.parquet"):
        frame = pd.read_parquet(mart)
        for column in frame.select_dtypes(include="object"):
            text = frame[column].dropna().astype(str)
            assert not text.str.contains(EMAIL).any(), (mart.name, column)
    # the planted e-mail did reach staging: the scan above is not vacuous
    staged = query(settings, "select count(*) as n from staging.stg_acme__transactions "
                             f"where contains(raw_record, '{PII_EMAIL}') or transaction_id = '{PII_EMAIL}'")
    assert staged["n"].iloc[0] > 0


def test_quarantine_finds_every_line_again(corpus: tuple[Settings, dict],
                                           quarantined: pd.DataFrame) -> None:
    """Every quarantined record names its file and line (orphans included); records rejected in
    staging also carry the hash of their text (orphans were accepted there: no hash)."""
    assert quarantined["source_file"].notna().all()
    assert quarantined["line_number"].notna().all()
    staged = quarantined[quarantined["quarantine_reason"] != "orphan_customer"]
    assert staged["raw_line_sha256"].str.fullmatch("[0-9a-f]{64}").all()


@pytest.fixture(scope="module")
def declared(corpus: tuple[Settings, dict]) -> dict:
    settings, _ = corpus
    manifest = json.loads(settings.dbt_manifest_path.read_text())
    return {(s.client, s.table): s for s in sources_from_manifest(manifest)}


@pytest.mark.parametrize("case", PREFLIGHT_CASES, ids=lambda c: c.name)
def test_each_unreadable_file_stops_at_the_preflight(declared: dict, tmp_path: Path, case,
                                                     request: pytest.FixtureRequest) -> None:
    if case.known_gap:
        request.applymarker(pytest.mark.xfail(reason=case.known_gap, strict=False))
    table = {"customers": FILES[case.client][0], "transactions": FILES[case.client][1]}[case.table]
    source = next(s for (c, _), s in declared.items() if c == case.client and s.file.name == table)
    broken = tmp_path / source.file.name
    broken.write_bytes(case.corrupt(source.file.read_bytes()))
    src = dataclasses.replace(source, file=broken,
                              reader_sql=source.reader_sql.replace(str(source.file), str(broken)))
    problem = check_source(src)
    assert problem is not None, f"{case.name}: the pre-flight accepted it"
    message = str(problem)
    assert f"client '{case.client}'" in message and str(broken) in message, message
    assert case.expected.lower() in message.lower(), message


def test_readme_lists_every_reason_code() -> None:
    """The README's row-level table names every code of vars.quarantine_reasons, and no other."""
    from parity.config import PROJECT_ROOT, dbt_vars

    codes = set(dbt_vars(PROJECT_ROOT)["quarantine_reasons"])
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("### Row-level parsing outcomes", 1)[1].split("\n## ", 1)[0]
    table = {code for line in section.splitlines() if line.startswith("| `")
             for code in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert codes == table, (codes - table, table - codes)
