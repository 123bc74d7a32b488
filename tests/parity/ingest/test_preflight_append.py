"""The pre-flight of appended records (parity.ingest.preflight_append) says and counts what the
whole-file pre-flight says and counts: each case appends to a file a previous pre-flight read,
checks only the appended bytes, and compares with checking the whole file again (no dbt)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from parity.ingest import preflight
from parity.ingest.preflight import Known, RawSource, inspect_source
from parity.ingest.preflight_append import inspect_appended

HEADER = "id;customer;amount;note\n"


def _source(file: Path, fmt: str = "csv", encoding: str = "utf-8", reader: str | None = None) -> RawSource:
    """A source shaped like the project's audited ones (raw lines, nothing detected)."""
    enc = f", encoding='{encoding}'" if encoding else ""
    reader = reader or (f"read_csv('{file}', header=false, columns=struct_pack(raw_line := 'VARCHAR'), "
                        f"auto_detect=false, delim='\\n', quote='', escape='', strict_mode=false{enc})")
    return RawSource(client="acme", table="transactions", file=file, format=fmt, encoding=encoding,
                     delimiter=";" if fmt == "csv" else None, required_fields=("id",), reader_sql=reader)


def _rows(start: int, n: int, note: str = "ok") -> str:
    return "".join(f"T{i:06d};C{i % 97:04d};{i % 50},{i % 100:02d};{note}\n" for i in range(start, start + n))


def _base(tmp_path: Path, text: str, encoding: str = "utf-8", **kw) -> tuple[RawSource, Known]:
    file = tmp_path / "transactions.csv"
    file.write_bytes(text.encode(encoding))
    src = _source(file, encoding=encoding, **kw)
    problem, known = inspect_source(src)
    assert problem is None and known is not None and known.size >= preflight_min()
    return src, known


def _append(src: RawSource, data: bytes) -> None:
    with src.file.open("ab") as fh:
        fh.write(data)


def _both(src: RawSource, known: Known, whole_again: bool = False) -> tuple:
    """(problem, record) from the appended bytes only, and from the whole file (`whole_again`:
    the appended check must decline, and the whole file be read)."""
    assert (inspect_appended(src, known) is None) == whole_again
    return inspect_source(src, known), inspect_source(src)


def _same(appended: tuple, whole: tuple) -> None:
    (p_app, k_app), (p_whole, k_whole) = appended, whole
    assert (p_app and p_app.problem) == (p_whole and p_whole.problem)
    assert k_app == k_whole  # records, encoding facts, line feeds, clean end, size, mtime


def test_good_append_counts_the_new_records_only_and_equals_a_whole_check(tmp_path: Path, monkeypatch) -> None:
    src, known = _base(tmp_path, HEADER + _rows(0, 400))
    assert known.records == 400 and known.clean_end and known.size > preflight_min()
    _append(src, (_rows(400, 7, note="zoë") + '8;C;1,00;"a; quoted\nfield"\n').encode())
    read: list[int] = []
    real = preflight._scan_bytes
    monkeypatch.setattr(preflight, "_scan_bytes", lambda fh, *a, **k: read.append(fh.tell()) or real(fh, *a, **k))
    appended, whole = _both(src, known)
    assert read[0] == known.size  # the appended pass started where the known bytes end
    _same(appended, whole)
    assert appended[1].records == 408 and appended[1].non_ascii


def preflight_min() -> int:
    from parity.ingest.preflight_append import MIN_KNOWN_BYTES

    return MIN_KNOWN_BYTES


@pytest.mark.parametrize("case", ["cut_mid_record", "latin1_in_utf8", "utf8_in_latin1", "c1_in_latin1"])
def test_bad_append_gets_the_whole_file_message(tmp_path: Path, case: str) -> None:
    encoding = "utf-8" if case in ("cut_mid_record", "latin1_in_utf8") else "latin-1"
    src, known = _base(tmp_path, HEADER + _rows(0, 300), encoding=encoding)
    data = {"cut_mid_record": _rows(300, 3).encode() + b'T9;C1;2,00;"open',
            "latin1_in_utf8": _rows(300, 3).encode() + "T9;C1;2,00;J\xf6rg\n".encode("latin-1"),
            "utf8_in_latin1": _rows(300, 3).encode() + "T9;C1;2,00;Jörg\n".encode(),
            "c1_in_latin1": _rows(300, 3).encode() + b"T9;C1;\x8025,00;b\xfccher\n"}[case]
    _append(src, data)
    appended, whole = _both(src, known)
    assert appended[0] is not None, case
    assert appended[0].problem == whole[0].problem  # the same words, offsets and line numbers
    bad_at = known.size + data.find(bytes([0xF6]))
    expected = {"cut_mid_record": "truncated", "latin1_in_utf8": f"at byte {bad_at}",
                "utf8_in_latin1": "the file is UTF-8", "c1_in_latin1": f"(line {known.lines + 4})"}[case]
    assert expected in appended[0].problem


def test_engine_failure_in_appended_records_names_the_raw_file(tmp_path: Path) -> None:
    file = tmp_path / "transactions.csv"
    strict = (f"read_csv('{file}', header=true, auto_detect=false, delim=';', quote='\"', strict_mode=true, "
              "columns={'id': 'VARCHAR', 'customer': 'VARCHAR', 'amount': 'VARCHAR', 'note': 'VARCHAR'})")
    src, known = _base(tmp_path, HEADER + _rows(0, 300), reader=strict)
    _append(src, _rows(300, 2).encode() + b"T9;C1;2,00;x;an extra column\n")
    appended, whole = _both(src, known)
    assert whole[0] is not None and "DuckDB cannot read it" in whole[0].problem
    assert appended[0] is not None and "DuckDB cannot read it" in appended[0].problem
    assert "parity-preflight-" not in appended[0].problem  # names no scratch file
    assert f"after byte {known.size}" in appended[0].problem


def test_open_quote_at_the_known_end_is_counted_whole(tmp_path: Path) -> None:
    # the old bytes end inside a quoted field: records after them cannot be counted on their own
    src, known = _base(tmp_path, HEADER + _rows(0, 300) + 'T8;C1;1,00;"open\n')
    assert not known.clean_end
    _append(src, b'still open";x\n' + _rows(300, 2).encode())
    appended, whole = _both(src, known, whole_again=True)
    _same(appended, whole)
    assert appended[1].records == 303


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_line_formats_append(tmp_path: Path, fmt: str) -> None:
    file = tmp_path / f"x.{fmt}"
    line = '{"id": "T%06d", "amount": 1}\n' if fmt == "jsonl" else "T%06d  C0001 2024-01-01\n"
    file.write_text("".join(line % i for i in range(300)))
    src = dataclasses.replace(_source(file, fmt=fmt), required_fields=("id",) if fmt == "jsonl" else ())
    problem, known = inspect_source(src)
    assert problem is None and known is not None and known.records == 300
    _append(src, ("\n" + "".join(line % i for i in range(300, 305))).encode())  # a blank line too
    appended, whole = _both(src, known)
    _same(appended, whole)
    assert appended[1].records == 305


def test_nothing_appended_keeps_the_record(tmp_path: Path) -> None:
    src, known = _base(tmp_path, HEADER + _rows(0, 300))
    appended, whole = _both(src, known)
    _same(appended, whole)


def test_shorter_file_is_checked_whole(tmp_path: Path) -> None:
    # never trusted: the caller proves the prefix, but a file that shrank since is read again
    src, known = _base(tmp_path, HEADER + _rows(0, 300))
    src.file.write_bytes((HEADER + _rows(0, 200)).encode())
    appended, whole = _both(src, known, whole_again=True)
    _same(appended, whole)
    assert appended[1].records == 200
