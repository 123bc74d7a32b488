"""The tails an incremental build cuts from raw files (parity.ingest.raw_tails): read with the
source's own DuckDB line reader and numbered as the record readers number them (raw_lines,
macros/raw_records.sql), a tail's lines are exactly the whole file's lines from `first_line` on,
with the file's first lines (a CSV header) ahead of them — for shapes the generator never makes:
blank lines, a byte-order mark, a last line the append completes, a quoted field spanning the
old end, a header-only file, an empty append. A file holding a carriage return is never cut."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from parity.ingest import raw_tails
from parity.ingest.preflight import Known, RawSource

READER = ("read_csv('{file}', header=false, columns=struct_pack(raw_line := 'VARCHAR'), auto_detect=false, "
          "delim='\\n', quote='', escape='', strict_mode=false, max_line_size=67108864, encoding='{encoding}')")


def _source(path: Path, fmt: str = "csv", encoding: str = "utf-8") -> RawSource:
    return RawSource("c", "t", path, fmt, encoding, ",", (), READER.format(file=path, encoding=encoding))


def _lines(reader: str) -> list[tuple[int, str | None]]:
    with duckdb.connect() as con:
        return con.execute(f"select row_number() over (), raw_line from {reader}").fetchall()


def _known(old: bytes) -> Known:
    return Known(size=len(old), mtime_ns=0, records=0, utf8=True, non_ascii=False, lines=old.count(b"\n"),
                 clean_end=old.endswith(b"\n"), carriage_return=b"\r" in old)


def _check(tmp_path: Path, old: bytes, appended: bytes, context: int, monkeypatch: pytest.MonkeyPatch,
           fmt: str = "csv", encoding: str = "utf-8") -> raw_tails.Tail | None:
    """Cut the tail of `old` + `appended` and check its lines against the whole file's."""
    monkeypatch.setattr(raw_tails, "CONTEXT_BYTES", context)
    path = tmp_path / "raw.txt"
    path.write_bytes(old + appended)
    src = _source(path, fmt, encoding)
    tail = raw_tails.cut_tail(src, _known(old), tmp_path / "tails" / "raw.txt")
    if tail is None:
        return None
    whole = _lines(src.reader_sql)
    cut = _lines(src.reader_sql.replace(f"'{path}'", f"'{tail.tail}'"))
    numbered = [(n if n <= tail.head_lines else n + tail.first_line - tail.head_lines - 1, text) for n, text in cut]
    assert numbered[:tail.head_lines] == whole[:tail.head_lines]
    assert numbered[tail.head_lines:] == whole[tail.first_line - 1:]
    # the tail starts no later than the old file's last line, or right after its head
    assert (tail.first_line <= old.count(b"\n") + (0 if old.endswith(b"\n") else 1)
            or tail.first_line == tail.head_lines + 1)
    return tail


def _rows(n: int, start: int = 0) -> bytes:
    return b"".join(b"T-%06d,C-%04d,12.50,books\n" % (i, i % 97) for i in range(start, start + n))


HEADER = b"id,customer,amount,category\n"


def test_tail_lines_are_the_whole_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tail = _check(tmp_path, HEADER + _rows(2000), _rows(50, 2000), 4096, monkeypatch)
    assert tail is not None and tail.head_lines == 1 and tail.first_line > 1500


@pytest.mark.parametrize("old, appended", [
    # blank lines and a byte-order mark before the header, blank lines between and after records
    (b"\xef\xbb\xbf\n\n" + HEADER + _rows(500) + b"\n\n" + _rows(500, 500) + b"\n", _rows(20, 1000) + b"\n"),
    # the old last line without its line feed: the append completes it
    (HEADER + _rows(1000) + b"T-999999,C-0001,1", b"2.50,books\n" + _rows(3, 1000)),
    # a quoted field with line feeds spanning the old end, closed by the append
    (HEADER + _rows(1000) + b'T-999998,C-0001,3.00,"books\nand\n', b'more"\n' + _rows(3, 1000)),
    # nothing appended
    (HEADER + _rows(1000), b""),
    # a header-only file, then records
    (HEADER, _rows(10)),
])
def test_tail_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: bytes, appended: bytes) -> None:
    assert _check(tmp_path, old, appended, 2048, monkeypatch) is not None


def test_jsonl_and_latin1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = b"".join(b'{"id": "%d", "name": "M\\u00fcller"}\n' % i for i in range(3000))
    tail = _check(tmp_path, old, b'{"id": "x"}\n', 1000, monkeypatch, fmt="jsonl")
    assert tail is not None and tail.first_line > 2900
    latin = HEADER + b"".join(b"T-%06d,C-\xe9%04d,1,b\xfccher\n" % (i, i) for i in range(2000))
    assert _check(tmp_path, latin, b"T-1,C-1,1,b\xfccher\n", 1000, monkeypatch, encoding="latin-1") is not None


def test_whole_file_when_the_tail_would_not_be_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crlf = HEADER.replace(b"\n", b"\r\n") + _rows(1000).replace(b"\n", b"\r\n")
    assert _check(tmp_path, crlf, b"T-1,C-1,1,b\r\n", 1000, monkeypatch) is None
    # a carriage return only in the appended bytes
    assert _check(tmp_path, HEADER + _rows(1000), b"T-1,C-1,1,b\r\n", 1000, monkeypatch) is None
    # a line longer than the context: no line start to cut at
    assert _check(tmp_path, HEADER + b"T-1,C-1,1," + b"x" * 5000 + b"\n", _rows(2), 1000, monkeypatch) is None
    # a first line the old bytes end in (a header without its line feed)
    assert _check(tmp_path, b"id,customer,amount", b",category\n" + _rows(2), 1000, monkeypatch) is None
    # a wide encoding
    path = tmp_path / "wide.txt"
    path.write_bytes(HEADER + _rows(10))
    assert raw_tails.cut_tail(_source(path, encoding="utf-16"), _known(HEADER), tmp_path / "w") is None
