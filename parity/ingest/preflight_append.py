"""Pre-flight of the records appended to a raw file whose first bytes a previous build checked.

An incremental build (parity.ingest.incremental) has proven that each raw file still starts with
exactly the bytes the published build read; that build's pre-flight recorded what it found about
them (parity.ingest.preflight.Known: records, UTF-8 validity, non-ASCII bytes, line feeds, a clean
end). Only the appended bytes are read here, with the same checks and the same messages as a
whole-file pre-flight: a last line cut off, bytes that are not the declared encoding (their
offset and line counted in the whole file), what the engine cannot read, and the records counted
by the same parser — the count is the previous count plus the appended records, which holds only
when the old bytes end between records (`clean_end`; otherwise the whole file is checked again).
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from parity.ingest import preflight
from parity.ingest.preflight import LATIN1, Known, Problem, RawSource

# the encodings whose bytes can be checked and decoded from any line start (one byte per
# character, or UTF-8, which resynchronises at every ASCII byte)
_APPENDABLE = ("utf-8", "utf8", *LATIN1)
# below this, a file is checked whole: its first 4 KB decide the wide-encoding check (UTF-16/32)
MIN_KNOWN_BYTES = 4096


def inspect_appended(src: RawSource, known: Known) -> tuple[Problem | None, Known | None] | None:
    """inspect_source of a file whose first `known.size` bytes are proven unchanged, reading only
    the bytes after them; None when that cannot be done exactly (the whole file is checked then)."""
    if (not known.clean_end or known.size < MIN_KNOWN_BYTES or src.encoding not in _APPENDABLE
            or src.format not in ("csv", *preflight.LINE_FORMATS)):
        return None
    try:
        before = src.file.stat()
        if not src.file.is_file() or before.st_size < known.size:
            return None  # not the file that was proven: the whole check says what is wrong
        problem, found = _appended(src, known, before)
    except OSError as err:
        return Problem(src.client, src.table, src.file, preflight._os_problem(err)), None
    except (csv.Error, ValueError) as err:  # UnicodeDecodeError is a ValueError
        return Problem(src.client, src.table, src.file, f"cannot count its records: {err}"), None
    if problem:
        return Problem(src.client, src.table, src.file, problem), None
    return None, found


def _appended(src: RawSource, known: Known, before: os.stat_result) -> tuple[str | None, Known | None]:
    """(the first problem, None) or (None, the whole file's record) from the appended bytes."""
    with src.file.open("rb") as fh:
        if before.st_size > known.size:
            problem = preflight._end_problem(fh)
            if problem:
                return problem, None
        fh.seek(known.size)
        scan = preflight._scan_bytes(fh, src.encoding in LATIN1, start=known.size, start_lines=known.lines)
        # the old bytes were valid (their build passed): the whole file's verdict from both parts
        scan.utf8 = scan.utf8 and known.utf8
        scan.non_ascii = scan.non_ascii or known.non_ascii
        problem = preflight._encoding_problem(src, scan)
        if problem:
            return problem, None
        if before.st_size > known.size:
            problem = _engine_problem(src, known)
            if problem:
                return problem, None
        fh.seek(known.size)
        records, clean = preflight.count_from(src, fh, header=False)
    after = src.file.stat()
    stable = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
    if before.st_size == known.size:
        clean = known.clean_end
    return None, Known(size=after.st_size, mtime_ns=after.st_mtime_ns if stable else -1,
                       records=known.records + records, utf8=scan.utf8, non_ascii=scan.non_ascii,
                       lines=scan.lines, clean_end=clean,
                       carriage_return=True if scan.carriage_return else known.carriage_return)


def _engine_problem(src: RawSource, known: Known) -> str | None:
    """The engine reads the appended records with the source's own reader: a file holding the
    header line (CSV) and the appended bytes, read in place of the raw file. Only for a reader
    that names the file once and detects nothing from the data (`auto_detect=false`: what it
    detects from a part may differ from the whole); else the engine scans the whole file."""
    literal = "'" + str(src.file).replace("'", "''") + "'"
    if src.reader_sql.count(literal) != 1 or "auto_detect=false" not in src.reader_sql.replace(" ", "").lower():
        return preflight._check_engine(src)
    with tempfile.TemporaryDirectory(prefix="parity-preflight-") as tmp:
        part = Path(tmp) / src.file.name
        with src.file.open("rb") as raw, part.open("wb") as out:
            if src.format == "csv":
                out.write(raw.readline())
            raw.seek(known.size)
            while chunk := raw.read(preflight.CHUNK):
                out.write(chunk)
        check = RawSource(**{**src.__dict__, "file": part,
                             "reader_sql": src.reader_sql.replace(literal, "'" + str(part).replace("'", "''") + "'")})
        problem = preflight._check_engine(check)
    if problem is None:
        return None
    return (problem.replace(str(part), str(src.file))
            + f" (in the records appended after byte {known.size}, line {known.lines + 1} of the file)")
