"""Pre-flight checks of raw files: every unreadable file is named with its client and problem.

The unit tests build sources from a tiny hand-written dbt manifest over small files in tmp_path
(no dbt). The end-to-end test runs `python -m parity build` on a generated drop and proves that a
broken file stops the build before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parity.config import PROJECT_ROOT
from parity.ingest import preflight
from parity.ingest.preflight import Problem, RawFileError, RawSource, check_source, run_preflight

ACME_TX_FIELDS = ["buchungsnr", "kundennummer", "datum", "betrag", "waehrung", "kategorie", "art",
                  "exportiert_am"]
ACME_TX_ROWS = [
    ACME_TX_FIELDS,
    ["AT-0000001", "AC-000001", "19/06/2024 15:27", "66,56", "EUR", "spielwaren", "K",
     "19/06/2024 19:38:01"],
    ["AT-0000002", "AC-000002", "20/06/2024 10:01", "-12,50", "EUR", "bücher", "R",
     "21/06/2024 08:00:00"],
]
CORA_FIELDS = ["Client ID", "E-Mail", "Full Name", "Country Code", "Year of Birth", "Source",
               "Registered", "Ingested At"]
CORA_ROWS = [
    CORA_FIELDS,
    ["  cr-00013 ", "x@y.org", "Seán Ó Briain", "IE", "1984", "social", "2024-06-25",
     "2024-06-26 19:38:14"],
]
BOLT_FIELDS = ["txn_id", "customer", "ts", "amount_cents", "currency", "category", "kind",
               "received_at"]
BOLT_RECORD = {"txn_id": "bt-0000001", "customer": "b-00022", "ts": "2024-06-16T19:30:20-05:00",
               "amount_cents": 4748, "currency": "USD", "category": "fashion",
               "kind": "purchase", "received_at": "2024-06-17T04:59:29+00:00"}


def _csv_text(rows: list[list[str]], delim: str) -> str:
    return "".join(delim.join(r) + "\n" for r in rows)


def _jsonl_text(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _node(client: str, table: str, file: Path, fmt: str, encoding: str, delimiter: str | None,
          required: list[str]) -> dict:
    """A dbt manifest source node shaped like the ones dbt writes for our sources YAML."""
    if fmt == "csv":
        reader = (f"read_csv('{file}', delim='{delimiter}', header=true, encoding='{encoding}', "
                  "all_varchar=true, null_padding=true, quote='\"')")
    else:
        reader = (f"read_csv('{file}', header=false, names=['raw_line'], delim='\x01', quote='', "
                  "escape='', all_varchar=true)")
    meta = {"file": str(file), "format": fmt, "encoding": encoding,
            "required_fields": required, "external_location": reader}
    if delimiter is not None:
        meta["delimiter"] = delimiter
    return {"source_name": client, "name": table, "source_meta": {"client_id": client},
            "meta": meta}


def _manifest(*nodes: dict) -> dict:
    return {"sources": {f"source.parity.{n['source_name']}.{n['name']}": n for n in nodes}}


def acme_source(file: Path, encoding: str = "latin-1", delimiter: str = ";") -> RawSource:
    node = _node("acme", "transactions", file, "csv", encoding, delimiter, ACME_TX_FIELDS)
    (src,) = preflight.sources_from_manifest(_manifest(node))
    return src


def cora_source(file: Path) -> RawSource:
    node = _node("cora", "clients", file, "csv", "utf-8", ",", CORA_FIELDS)
    (src,) = preflight.sources_from_manifest(_manifest(node))
    return src


def bolt_source(file: Path) -> RawSource:
    node = _node("bolt", "transactions", file, "jsonl", "utf-8", None, BOLT_FIELDS)
    (src,) = preflight.sources_from_manifest(_manifest(node))
    return src


def _problem(src: RawSource) -> str:
    found = check_source(src)
    assert found is not None, f"{src.file} should have been rejected"
    assert isinstance(found, Problem)
    assert (found.client, found.table, found.file) == (src.client, src.table, src.file)
    # the rendered problem names the client and the file, for the operator reading the log
    assert f"'{src.client}'" in str(found) and str(src.file) in str(found)
    return found.problem


# --- manifest parsing ---------------------------------------------------------------------


def test_sources_from_manifest_reads_meta_and_skips_sources_without_a_file(tmp_path: Path) -> None:
    acme = _node("acme", "customers", tmp_path / "c.csv", "csv", "Latin-1", ";", ["kundennummer"])
    acme["source_name"] = "acme_raw"  # the client comes from meta.client_id, not the source name
    no_file = {"source_name": "bolt", "name": "events", "source_meta": {}, "meta": {}}
    bolt = _node("bolt", "transactions", tmp_path / "t.jsonl", "jsonl", "utf-8", None, BOLT_FIELDS)
    sources = preflight.sources_from_manifest(_manifest(acme, no_file, bolt))
    assert [(s.client, s.table) for s in sources] == [("acme", "customers"), ("bolt", "transactions")]
    assert sources[0].encoding == "latin-1" and sources[0].delimiter == ";"
    assert sources[0].required_fields == ("kundennummer",)
    assert sources[1].format == "jsonl" and sources[1].delimiter is None
    assert sources[1].file == tmp_path / "t.jsonl"


# --- good files pass ----------------------------------------------------------------------


def test_good_latin1_csv_passes(tmp_path: Path) -> None:
    f = tmp_path / "transactions.csv"
    f.write_bytes(_csv_text(ACME_TX_ROWS, ";").encode("latin-1"))
    assert b"\xfc" in f.read_bytes()  # really Latin-1 bytes (ü), not ASCII
    assert check_source(acme_source(f)) is None


def test_good_latin1_csv_with_crlf_line_endings_passes(tmp_path: Path) -> None:
    f = tmp_path / "transactions.csv"
    f.write_bytes(_csv_text(ACME_TX_ROWS, ";").replace("\n", "\r\n").encode("latin-1"))
    assert check_source(acme_source(f)) is None


def test_good_utf8_csv_passes(tmp_path: Path) -> None:
    f = tmp_path / "clients.csv"
    f.write_text(_csv_text(CORA_ROWS, ","), encoding="utf-8")
    assert check_source(cora_source(f)) is None


def test_good_jsonl_passes(tmp_path: Path) -> None:
    f = tmp_path / "transactions.jsonl"
    f.write_text(_jsonl_text([BOLT_RECORD, {**BOLT_RECORD, "txn_id": "bt-0000002",
                                            "category": "spëcial"}]), encoding="utf-8")
    assert check_source(bolt_source(f)) is None


def test_good_utf8_split_across_read_chunks_passes(tmp_path: Path, monkeypatch) -> None:
    """A multi-byte character cut by a chunk boundary is still valid UTF-8."""
    monkeypatch.setattr(preflight, "CHUNK", 7)
    f = tmp_path / "clients.csv"
    f.write_text(_csv_text(CORA_ROWS + [["CR-00014", "é@ü.de", "Zoë Ñúñez", "GB", "1990",
                                         "organic", "2024-06-25", "2024-06-26 19:38:14"]], ","),
                 encoding="utf-8")
    assert check_source(cora_source(f)) is None


def test_good_utf8_files_with_byte_order_mark_pass(tmp_path: Path) -> None:
    """DuckDB strips a UTF-8 BOM, so preflight must not read it as part of the first field."""
    bom = b"\xef\xbb\xbf"
    csv_file, jsonl_file = tmp_path / "clients.csv", tmp_path / "transactions.jsonl"
    csv_file.write_bytes(bom + _csv_text(CORA_ROWS, ",").encode("utf-8"))
    jsonl_file.write_bytes(bom + _jsonl_text([BOLT_RECORD]).encode("utf-8"))
    assert check_source(cora_source(csv_file)) is None
    assert check_source(bolt_source(jsonl_file)) is None


# --- unreadable files are named with their problem ----------------------------------------


def test_file_not_found(tmp_path: Path) -> None:
    assert "file not found" in _problem(acme_source(tmp_path / "nope.csv"))


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "transactions.csv"
    f.write_bytes(b"")
    assert "empty" in _problem(acme_source(f))


def test_truncated_file_without_final_newline(tmp_path: Path) -> None:
    f = tmp_path / "transactions.csv"
    f.write_bytes(_csv_text(ACME_TX_ROWS, ";").encode("latin-1")[:-9])  # cut mid-line
    assert "truncated" in _problem(acme_source(f))


def test_utf8_file_declared_latin1(tmp_path: Path) -> None:
    f = tmp_path / "transactions.csv"
    f.write_text(_csv_text(ACME_TX_ROWS, ";"), encoding="utf-8")
    problem = _problem(acme_source(f, encoding="latin-1"))
    assert "wrong encoding" in problem and "UTF-8" in problem and "latin-1" in problem


def test_latin1_bytes_in_file_declared_utf8(tmp_path: Path) -> None:
    f = tmp_path / "clients.csv"
    data = _csv_text(CORA_ROWS, ",").encode("latin-1")
    f.write_bytes(data)
    bad_at = data.index("á".encode("latin-1"))
    problem = _problem(cora_source(f))
    assert "wrong encoding" in problem and "not valid UTF-8" in problem
    assert f"at byte {bad_at}" in problem  # the offset of the first bad byte


def test_latin1_byte_found_past_the_first_read_chunk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(preflight, "CHUNK", 16)
    f = tmp_path / "clients.csv"
    good = _csv_text(CORA_ROWS, ",").encode("utf-8")
    bad_line = "CR-00099,a@b.c,Jörg,DE,1970,organic,2024-06-25,2024-06-26 19:38:14\n"
    f.write_bytes(good + bad_line.encode("latin-1"))
    problem = _problem(cora_source(f))
    assert "wrong encoding" in problem
    assert f"at byte {len(good) + bad_line.index('ö')}" in problem


@pytest.mark.parametrize("chunk", [preflight.CHUNK, 16])
def test_windows_1252_byte_in_latin1_file_names_byte_and_line(tmp_path: Path, monkeypatch, chunk: int) -> None:
    # a euro sign written by Windows (0x80): a C1 control in latin-1, which DuckDB's reader refuses
    # for the whole file without saying where; the pre-flight names the byte, the line and the cause
    monkeypatch.setattr(preflight, "CHUNK", chunk)
    f = tmp_path / "transactions.csv"
    good = _csv_text(ACME_TX_ROWS, ";").encode("latin-1")
    bad = b"AT-0000009;AC-000049;04/06/2024 10:47;\x8025,04;EUR;b\xfccher;K;05/06/2024 14:04:17\n"
    f.write_bytes(good + bad)
    problem = _problem(acme_source(f))
    lines = good.count(b"\n") + 1
    at = len(good) + bad.index(bytes([0x80]))
    assert f"byte 0x80 at byte {at} (line {lines})" in problem
    assert "Windows-1252" in problem and "\u20ac" in problem


def test_comma_file_for_semicolon_source_is_a_wrong_delimiter(tmp_path: Path) -> None:
    f = tmp_path / "transactions.csv"
    f.write_bytes(_csv_text(ACME_TX_ROWS, ",").encode("latin-1"))
    problem = _problem(acme_source(f))
    assert "wrong delimiter" in problem and "';'" in problem and "','" in problem


def test_semicolon_file_for_comma_source_is_a_wrong_delimiter(tmp_path: Path) -> None:
    f = tmp_path / "clients.csv"
    f.write_text(_csv_text(CORA_ROWS, ";"), encoding="utf-8")
    problem = _problem(cora_source(f))
    assert "wrong delimiter" in problem and "','" in problem and "';'" in problem


def test_missing_required_column(tmp_path: Path) -> None:
    f = tmp_path / "transactions.csv"
    rows = [[v for i, v in enumerate(r) if i != 3] for r in ACME_TX_ROWS]  # drop "betrag"
    f.write_bytes(_csv_text(rows, ";").encode("latin-1"))
    problem = _problem(acme_source(f))
    assert "missing required column" in problem and "'betrag'" in problem
    assert "'waehrung'" not in problem.split(";")[0]  # only the missing one is listed as missing


def test_unclosed_quote_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "transactions.csv"
    rows = ACME_TX_ROWS + [["AT-0000003", "AC-000003", "21/06/2024 09:00", "5,00", "EUR", "spielwaren", "K",
                            "21/06/2024 10:00:00"]]
    rows[2] = ['"' + rows[2][0], *rows[2][1:]]  # a quote opened in line 3 and never closed
    f.write_bytes(_csv_text(rows, ";").encode("latin-1"))
    problem = _problem(acme_source(f))
    assert problem.startswith("DuckDB cannot read it")
    assert "line 3 opens a quote" in problem


def test_jsonl_first_line_not_json(tmp_path: Path) -> None:
    f = tmp_path / "transactions.jsonl"
    f.write_text(_csv_text([BOLT_FIELDS, list(map(str, BOLT_RECORD.values()))], ","),
                 encoding="utf-8")
    assert "not a JSON object" in _problem(bolt_source(f))


def test_jsonl_first_line_is_json_but_not_an_object(tmp_path: Path) -> None:
    f = tmp_path / "transactions.jsonl"
    f.write_text(json.dumps(list(BOLT_RECORD.values())) + "\n", encoding="utf-8")
    assert "not a JSON object" in _problem(bolt_source(f))


def test_jsonl_first_record_lacks_required_fields(tmp_path: Path) -> None:
    f = tmp_path / "transactions.jsonl"
    record = {k: v for k, v in BOLT_RECORD.items() if k not in ("kind", "received_at")}
    f.write_text(_jsonl_text([record, BOLT_RECORD]), encoding="utf-8")
    problem = _problem(bolt_source(f))
    assert "missing required field" in problem and "'kind'" in problem
    assert "'received_at'" in problem


def test_run_preflight_reports_every_broken_file_of_every_client(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(_jsonl_text([BOLT_RECORD]), encoding="utf-8")
    truncated = tmp_path / "acme.csv"
    truncated.write_bytes(_csv_text(ACME_TX_ROWS, ";").encode("latin-1")[:-3])
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(_manifest(
        _node("acme", "transactions", truncated, "csv", "latin-1", ";", ACME_TX_FIELDS),
        _node("bolt", "transactions", good, "jsonl", "utf-8", None, BOLT_FIELDS),
        _node("cora", "clients", tmp_path / "missing.csv", "csv", "utf-8", ",", CORA_FIELDS),
    )))
    with pytest.raises(RawFileError) as caught:
        run_preflight(manifest)
    problems = caught.value.problems
    assert [(p.client, p.file) for p in problems] == [("acme", truncated),
                                                      ("cora", tmp_path / "missing.csv")]
    message = str(caught.value)
    assert "acme" in message and str(truncated) in message and "truncated" in message
    assert "cora" in message and "file not found" in message and "bolt" not in message

    # with the broken files fixed, run_preflight returns every declared source
    truncated.write_bytes(_csv_text(ACME_TX_ROWS, ";").encode("latin-1"))
    (tmp_path / "missing.csv").write_text(_csv_text(CORA_ROWS, ","), encoding="utf-8")
    assert [s.client for s in run_preflight(manifest)] == ["acme", "bolt", "cora"]


# --- end to end: `python -m parity build` stops before writing anything --------------------


def _cli_build(data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PARITY_DATA_DIR": str(data_dir),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run([sys.executable, "-m", "parity", "build"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _fingerprint(paths: list[Path]) -> dict[str, tuple[int, int, str]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size,
                     hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths}


@pytest.mark.data
def test_cli_build_stops_on_an_unreadable_file_before_writing_anything(tmp_path: Path) -> None:
    from tests.conftest import generate_raw

    settings = generate_raw(tmp_path / "data", scale=0.05)
    victim = settings.raw_dir / "acme" / "transactions.csv"
    original = victim.read_bytes()

    def corrupt() -> None:
        victim.write_bytes(original[:-12])  # cut mid-line: no final newline

    def assert_rejected(proc: subprocess.CompletedProcess) -> None:
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "acme" in proc.stderr and str(victim) in proc.stderr
        assert "truncated" in proc.stderr
        # only the broken file is reported: the other clients' files are fine
        assert proc.stderr.count("  - client ") == 1, proc.stderr
        assert "preflight:" not in proc.stdout  # preflight did not pass

    # 1. no previous build: nothing at all is written
    corrupt()
    assert_rejected(_cli_build(settings.data_dir))
    assert not settings.warehouse_path.exists()
    assert not list(settings.marts_dir.glob("*.parquet"))

    # 2. a good build writes the warehouse and the marts
    victim.write_bytes(original)
    good = _cli_build(settings.data_dir)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "unaccounted rows: 0" in good.stdout
    written = [settings.warehouse_path, *sorted(settings.marts_dir.glob("*.parquet"))]
    assert {p.name for p in written} >= {"warehouse.duckdb", "customer_features_weekly.parquet",
                                         "churn_labels.parquet"}
    before = _fingerprint(written)

    # 3. the file breaks again: the previous build is left exactly as it was
    corrupt()
    assert_rejected(_cli_build(settings.data_dir))
    assert _fingerprint(written) == before
    assert sorted(settings.marts_dir.glob("*.parquet")) == written[1:]


def test_a_file_no_source_declares_is_named(tmp_path: Path) -> None:
    # a drop re-sent under a new name sits beside the declared file and is never read: say so
    folder = tmp_path / "raw" / "acme"
    folder.mkdir(parents=True)
    declared = folder / "transactions.csv"
    declared.write_bytes(_csv_text(ACME_TX_ROWS, ";").encode("latin-1"))
    (folder / "transactions_2026-06-02.csv").write_bytes(declared.read_bytes())
    (folder / "_manifest.json").write_text("{}")
    (folder / "archive").mkdir()
    assert preflight.undeclared_files([acme_source(declared)]) == [folder / "transactions_2026-06-02.csv"]
