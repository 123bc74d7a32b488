"""The raw bytes an incremental build's staging models re-parse, cut from each raw file.

An incremental build re-parses, per audited staging model, only the records from the previous
build's last record on (and a few records refused for an arrival after the build;
macros/incremental.sql). DuckDB's line reader has no byte offset to start at, and reading the
whole file to number its lines was most of such a run's staging time. So before dbt runs, each
raw file whose first bytes the base build read (and proved unchanged: parity.ingest.incremental)
gets a *tail* in the build folder: its first lines up to the first non-blank one (a CSV's header;
a byte-order mark stays where the reader drops it), then every byte from a line start at most
CONTEXT_BYTES before the old end. ``raw_tails.json`` says, per raw file, where the tail is, how
many lines its head holds and the file's line number of the first line after the head; the
record readers (macros/raw_records.sql, raw_lines) read the tail in place of the file with the
source's own reader and number its lines as the whole file's. dbt reads the whole file instead
when a record it must re-parse starts before the tail.

A tail is cut only where the line numbers are exact: the line reader (DuckDB's read_csv with the
newline as delimiter) detects the file's newline from its bytes and splits at a lone carriage
return, so a file holding any carriage return (CRLF) is read whole; without one, its lines are the
line feeds' (counted by the base build's pre-flight: Known.lines; it also records whether the old
bytes hold a carriage return, else they are scanned here). Encodings other than UTF-8 and
Latin-1 (whose line feed is one byte) are read whole too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from parity.ingest.preflight import LATIN1, Known, RawSource

INDEX_FILE = "raw_tails.json"
TAILS_DIR = "raw_tails"
# how far back from the old end a tail starts (the previous last record starts there: a record
# spanning more is read from the whole file)
CONTEXT_BYTES = 1 << 16
_CHUNK = 1 << 22
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Tail:
    """Where a raw file's tail is and how its lines map to the file's."""

    file: str  # the raw file, as the source's reader names it
    tail: str  # the tail file
    head_lines: int  # its first lines, the file's own lines 1..head_lines
    first_line: int  # the file's line number of the tail's next line


def _has_carriage_return(path: Path, known: Known) -> bool:
    """Whether the file holds a carriage return byte anywhere (only the bytes after `known`'s when
    its pre-flight recorded that they hold none)."""
    if known.carriage_return:
        return True
    with path.open("rb") as fh:
        if known.carriage_return is False:
            fh.seek(known.size)
        while chunk := fh.read(_CHUNK):
            if b"\r" in chunk:
                return True
    return False


def _head_end(path: Path, size: int) -> tuple[int, int]:
    """(byte offset after, number of lines of) the file's lines up to its first non-blank one."""
    offset = lines = 0
    with path.open("rb") as fh:
        while offset < size:
            line = fh.readline(1 << 26)
            if not line:
                break
            offset += len(line)
            lines += 1
            text = line[len(_BOM):] if lines == 1 and line.startswith(_BOM) else line
            if text.rstrip(b"\n"):
                break
    return offset, lines


def _ends_line(path: Path, offset: int) -> bool:
    """Whether the byte before `offset` is a line feed."""
    with path.open("rb") as fh:
        fh.seek(offset - 1)
        return fh.read(1) == b"\n"


def cut_tail(src: RawSource, known: Known, out: Path) -> Tail | None:
    """Write `src`'s tail to `out` (see the module docstring); None when the file is read whole."""
    path = src.file
    literal = "'" + str(path).replace("'", "''") + "'"
    if (src.encoding.lower() not in ("utf-8", "utf8", *LATIN1) or src.reader_sql.count(literal) != 1
            or "auto_detect=false" not in src.reader_sql.replace(" ", "").lower()):
        return None
    size = path.stat().st_size
    if size < known.size or known.size == 0 or _has_carriage_return(path, known):
        return None
    head_end, head_lines = _head_end(path, known.size)
    if head_end > known.size or (head_lines and not _ends_line(path, head_end)):
        return None  # a first line the old bytes end in: the appended bytes continue it
    with path.open("rb") as fh:
        start = max(head_end, known.size - CONTEXT_BYTES)
        fh.seek(start)
        window = fh.read(known.size - start)
        if start > head_end:
            # the first line starting in the window (a line cut by the window's start is not read)
            cut = window.find(b"\n")
            if cut < 0:
                return None
            window = window[cut + 1:]
            start += cut + 1
            if not window:
                return None  # the old last line is longer than the context
        if window.startswith(_BOM) and start > 0:
            return None  # kept in the file's line, dropped at a file's start
        first_line = known.lines - window.count(b"\n") + 1
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as tail:
            fh.seek(0)
            tail.write(fh.read(head_end))
            fh.seek(start)
            while chunk := fh.read(_CHUNK):
                tail.write(chunk)
    return Tail(file=str(path), tail=str(out), head_lines=head_lines, first_line=first_line)


def write_tails(folder: Path, sources: list[RawSource], known: dict[Path, Known]) -> list[Tail]:
    """Cut the tail of every raw file of `sources` whose first bytes `known` describes, into
    `folder` (TAILS_DIR), and write the index (INDEX_FILE) the record readers look them up in."""
    tails = []
    for number, src in enumerate(sources):
        found = known.get(src.file)
        if found is None:
            continue
        tail = cut_tail(src, found, folder / TAILS_DIR / f"{number}-{src.file.name}")
        if tail is not None:
            tails.append(tail)
    (folder / INDEX_FILE).write_text("".join(json.dumps(asdict(t)) + "\n" for t in tails))
    return tails


def remove_tails(folder: Path) -> None:
    """Drop the tails after the build (the index stays: it says what was cut)."""
    import shutil

    shutil.rmtree(folder / TAILS_DIR, ignore_errors=True)
