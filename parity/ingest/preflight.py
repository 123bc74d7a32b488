"""Pre-flight check of every raw file a dbt source reads, before dbt touches anything.

A file that cannot be read at all (missing, empty, truncated, wrong encoding, wrong delimiter,
missing required columns) stops the build here with a message naming the client, the file and
the problem — before any model is written, so no client's data is half-built. Rows that are
merely bad are not this module's business: staging quarantines them.

The checks are driven by the source YAML (`meta.file`, `format`, `encoding`, `delimiter`,
`required_fields`), so onboarding a client needs no Python change.

It also counts each file's physical records without the engine (a real CSV parser honouring
quotes, delimiter and encoding, header excluded; non-empty lines of JSON lines) and writes them
where dbt reads them (`physical_counts.csv` in the build folder, source `build.physical_counts`):
reconciliation balances against that count, so a record the engine's reader drops silently is an
unaccounted row that fails the build.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

CHUNK = 16 * 1024 * 1024
# formats with one record per line and no header (JSON lines; header-less text, fixed width)
LINE_FORMATS = ("jsonl", "text")
LATIN1 = ("latin-1", "latin1", "iso-8859-1")
# C1 control characters: valid ISO-8859-1 code points that no text carries, and DuckDB refuses
_C1 = re.compile(rb"[\x80-\x9f]")


@dataclass(frozen=True)
class RawSource:
    """One raw file as declared in a dbt source."""

    client: str
    table: str
    file: Path
    format: str
    encoding: str
    delimiter: str | None
    required_fields: tuple[str, ...]
    reader_sql: str
    # the canonical table its staging model feeds (stg_<client>__<entity>), which reconciliation
    # counts by; the source's own name when no staging model reads it
    entity: str = ""
    # an empty file is a valid state of this source (the event log before the first push)
    may_be_empty: bool = False


@dataclass(frozen=True)
class Problem:
    """A raw file that cannot be read, with the client, file and what is wrong."""

    client: str
    table: str
    file: Path
    problem: str

    def __str__(self) -> str:
        return f"client '{self.client}', file {self.file} (source {self.client}.{self.table}): {self.problem}"


class RawFileError(RuntimeError):
    """Raised when at least one raw file cannot be read; the message lists every problem."""

    def __init__(self, problems: list[Problem], message: str | None = None):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(message or f"{len(problems)} raw file(s) cannot be read; nothing was built:\n{lines}")


def sources_from_manifest(manifest: dict[str, Any]) -> list[RawSource]:
    """Raw file declarations of every dbt source that has a `meta.file`."""
    found = []
    children = manifest.get("child_map", {})
    for unique_id, node in manifest["sources"].items():
        meta = {**node.get("source_meta", {}), **node.get("meta", {})}
        if "file" not in meta:
            continue
        client = meta.get("client_id", node["source_name"])
        found.append(
            RawSource(
                entity=_staged_as(children.get(unique_id, []), client) or node["name"],
                client=client,
                table=node["name"],
                file=Path(meta["file"]),
                format=meta.get("format", "csv"),
                encoding=meta.get("encoding", "utf-8").lower(),
                delimiter=meta.get("delimiter"),
                required_fields=tuple(meta.get("required_fields", [])),
                reader_sql=meta["external_location"],
                may_be_empty=bool(meta.get("may_be_empty", False)),
            )
        )
    return sorted(found, key=lambda s: (s.client, s.table))


def _staged_as(children: list[str], client: str) -> str | None:
    """The entity of the staging model reading a source (model.parity.stg_<client>__<entity>)."""
    prefix = f"stg_{client}__"
    for child in children:
        name = child.rsplit(".", 1)[-1]
        if child.startswith("model.") and name.startswith(prefix):
            return name[len(prefix):]
    return None


_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _wide_encoding(head: bytes, declared: str) -> str | None:
    """A UTF-16/32 file where a byte encoding is declared: by its byte-order mark, or by the NUL
    bytes every other byte that UTF-16 text without a mark has (text files have no NULs)."""
    if declared.lower().replace("_", "-").startswith(("utf-16", "utf16", "utf-32", "utf32")):
        return None
    found = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    if found is None and len(head) >= 16 and head.count(0) >= len(head) // 3:
        found = "UTF-16 or UTF-32 (no byte-order mark; NUL bytes between the characters)"
    if found is None:
        return None
    return f"wrong encoding: the file is {found} but the source declares {declared}; re-encode it as {declared}"


def _check_bytes(src: RawSource) -> str | None:
    """Existence, emptiness, truncation and encoding, streaming the file once."""
    if not src.file.exists():
        return "file not found"
    if src.file.is_dir():
        return "is a directory, not a file"
    size = src.file.stat().st_size
    if size == 0:
        return None if src.may_be_empty else "file is empty"
    with src.file.open("rb") as fh:
        wide = _wide_encoding(fh.read(4096), src.encoding)
        if wide:  # before the line-end check: a UTF-16 file ends in "\n\x00", not a cut line
            return wide
        fh.seek(-1, io.SEEK_END)
        if fh.read(1) not in (b"\n", b"\r"):
            return "file is truncated: the last line has no line terminator (cut off mid-write?)"
        fh.seek(0)
        utf8 = codecs.getincrementaldecoder("utf-8")()
        offset, is_utf8, has_non_ascii, lines, c1_at = 0, True, False, 0, None
        latin1 = src.encoding in LATIN1
        while chunk := fh.read(CHUNK):
            if not has_non_ascii and not chunk.isascii():
                has_non_ascii = True
            if is_utf8:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError as err:
                    is_utf8 = False
                    bad_at = offset + err.start
            if latin1 and c1_at is None and has_non_ascii:
                found = _C1.search(chunk)
                if found:
                    c1_at = (offset + found.start(), lines + chunk.count(b"\n", 0, found.start()) + 1,
                             chunk[found.start()])
            lines += chunk.count(b"\n")
            offset += len(chunk)
    if src.encoding in ("utf-8", "utf8") and not is_utf8:
        return f"wrong encoding: not valid UTF-8 at byte {bad_at} (declared utf-8; is it Latin-1?)"
    if latin1 and is_utf8 and has_non_ascii:
        return "wrong encoding: the file is UTF-8 but the source declares latin-1"
    if c1_at is not None:
        # DuckDB's latin-1 reader refuses the whole file at such a byte ("File is not latin-1
        # encoded", no position); Windows-1252 puts printable characters there (0x80 is the euro sign)
        at, line, byte = c1_at
        return (f"wrong encoding: byte 0x{byte:02x} at byte {at} (line {line}) is a control character in "
                f"latin-1, which the engine cannot read; the file is probably Windows-1252 "
                f"(where 0x{byte:02x} is {bytes([byte]).decode('cp1252', errors='replace')!r}): "
                "re-encode it as latin-1 or UTF-8 and declare that encoding")
    return None


def _first_line(src: RawSource) -> str:
    # utf-8-sig: a byte-order mark is not part of the first column's name (DuckDB strips it too)
    encoding = "utf-8-sig" if src.encoding in ("utf-8", "utf8") else src.encoding
    with src.file.open("r", encoding=encoding, newline="") as fh:
        return fh.readline()


def _check_fields(src: RawSource) -> str | None:
    """Header (CSV) or first record (JSON lines) carries every required field."""
    line = _first_line(src)
    if src.format == "csv":
        delim = src.delimiter or ","
        header = next(csv.reader([line], delimiter=delim))
        header = [h.strip() for h in header]
        missing = [f for f in src.required_fields if f not in header]
        if missing and len(header) == 1:
            other = max((";", ",", "\t", "|"), key=line.count)
            if line.count(other) > 0 and other != delim:
                return f"wrong delimiter: expected {delim!r} but the header is {other!r}-delimited"
        if missing:
            return f"missing required column(s) {missing}; header has {header}"
    elif src.format == "jsonl":
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            return f"first line is not a JSON object ({err.msg}); is this JSON lines?"
        if not isinstance(record, dict):
            return "first line is not a JSON object; is this JSON lines?"
        missing = [f for f in src.required_fields if f not in record]
        if missing:
            return f"missing required field(s) {missing} in the first record; it has {sorted(record)}"
    return None


def _unbalanced_quote_line(src: RawSource) -> int | None:
    """The first line (1 = header) with an odd number of '"': a quote opened and not closed on
    its line, which makes a CSV reader swallow the following lines. Only called once the engine
    has failed, as a hint for the operator (our drops have no multi-line quoted fields)."""
    encoding = "utf-8-sig" if src.encoding in ("utf-8", "utf8") else src.encoding
    with src.file.open("r", encoding=encoding, errors="replace", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if line.count('"') % 2:
                return number
    return None


def _check_engine(src: RawSource) -> str | None:
    """The engine itself can scan the whole file with the source's reader."""
    try:
        duckdb.connect().execute(f"select count(*) from {src.reader_sql}").fetchone()
    except duckdb.Error as err:
        problem = f"DuckDB cannot read it: {str(err).splitlines()[0]}"
        line = _unbalanced_quote_line(src) if src.format == "csv" else None
        if line is not None:
            problem += f" -- line {line} opens a quote (\") that is not closed on that line"
        return problem
    return None


def _os_problem(err: OSError) -> str:
    """An OSError as the operator needs it: what is wrong with the path, no traceback."""
    if isinstance(err, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(err, PermissionError):
        return "cannot be read: permission denied"
    return f"cannot be read: {err.strerror or err}"


def count_records(src: RawSource) -> int:
    """Physical records in the file, counted without the engine: CSV records by Python's csv
    parser (quotes, the declared delimiter and encoding; header and blank lines excluded), JSON
    lines and header-less text as non-empty lines."""
    if src.format in LINE_FORMATS:
        with src.file.open("rb") as fh:
            return sum(1 for line in fh if line.strip(b"\r\n"))
    if src.format != "csv":
        raise ValueError(f"no physical record count for format {src.format!r} (known: csv, "
                         f"{', '.join(LINE_FORMATS)})")
    csv.field_size_limit(sys.maxsize)  # a 40 MB field is still one record, not an error
    encoding = "utf-8-sig" if src.encoding in ("utf-8", "utf8") else src.encoding
    with src.file.open("r", encoding=encoding, newline="") as fh:
        rows = sum(1 for row in csv.reader(fh, delimiter=src.delimiter or ",", quotechar='"') if row)
    return max(rows - 1, 0)  # the header


def check_source(src: RawSource) -> Problem | None:
    """The first problem with one raw file, or None when it is readable."""
    problem, _ = inspect_source(src)
    return problem


def inspect_source(src: RawSource) -> tuple[Problem | None, int | None]:
    """(the first problem, None) for an unreadable file, else (None, its physical record count)."""
    try:
        for check in (_check_bytes, _check_fields, _check_engine):
            if check is not _check_bytes and src.may_be_empty and src.file.stat().st_size == 0:
                break  # nothing to read (e.g. the event log before the first push)
            problem = check(src)
            if problem:
                return Problem(src.client, src.table, src.file, problem), None
        return None, count_records(src)
    except OSError as err:
        return Problem(src.client, src.table, src.file, _os_problem(err)), None
    except (csv.Error, UnicodeDecodeError, ValueError) as err:
        return Problem(src.client, src.table, src.file, f"cannot count its records: {err}"), None


def inspect_all(sources: Iterable[RawSource], workers: int = 2) -> list[tuple[Problem | None, int | None]]:
    """`inspect_source` of every raw file (all clients, not just the first failing one), in the
    order of `sources`. Files are checked `workers` at a time: DuckDB's scan releases the GIL, so
    one file's engine scan overlaps another's byte checks (~3.5 s -> ~2 s at 10M rows)."""
    from concurrent.futures import ThreadPoolExecutor

    sources = list(sources)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(sources)))) as pool:
        return list(pool.map(inspect_source, sources))


def check_all(sources: Iterable[RawSource], workers: int = 2) -> list[Problem]:
    """Problems of every raw file, in the order of `sources`."""
    return [p for p, _ in inspect_all(sources, workers) if p is not None]


def write_counts(path: Path, sources: list[RawSource], counts: list[int]) -> None:
    """The physical counts as the CSV dbt reads (source `build.physical_counts`)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["client_id", "source_table", "raw_table", "file", "physical_rows"])
        for src, count in zip(sources, counts, strict=True):
            writer.writerow([src.client, src.entity or src.table, src.table, str(src.file), count])
    os.replace(tmp, path)


def check_present(manifest_path: Path, raw_dir: Path, why: str) -> None:
    """Every declared raw file is there (a non-empty file, unless it may be empty), without reading
    it: raise RawFileError naming the missing raw folder, each missing client folder, or each
    missing or empty file; `why` says what needs them."""
    try:
        sources = sources_from_manifest(json.loads(manifest_path.read_text()))
    except (OSError, ValueError) as err:
        raise RawFileError([], f"cannot read dbt's manifest {manifest_path}: {err}") from None
    inside = [src.file for src in sources if raw_dir in src.file.parents]
    if inside and (not raw_dir.is_dir() or not any(raw_dir.iterdir())):
        state = "does not exist" if not raw_dir.exists() else "is not a folder" if not raw_dir.is_dir() else "is empty"
        raise RawFileError([], f"the raw folder {raw_dir} {state}; {why} "
                               f"({len(inside)} raw files declared there, e.g. {inside[0]})")
    problems = []
    for src in sources:
        if not src.file.parent.is_dir():
            problems.append(Problem(src.client, src.table, src.file, f"its folder {src.file.parent} does not exist"))
        elif not src.file.is_file():
            problems.append(Problem(src.client, src.table, src.file, "file not found"))
        elif src.file.stat().st_size == 0 and not src.may_be_empty:
            problems.append(Problem(src.client, src.table, src.file, "file is empty"))
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise RawFileError(problems, f"{len(problems)} raw file(s) missing; {why}:\n{lines}")


def undeclared_files(sources: Iterable[RawSource]) -> list[Path]:
    """Files in a client's drop folder (`<data>/raw/<client>/`) that no source declares: never
    read, so a drop re-sent under a new name (`transactions_0602.csv`) would be lost silently.
    Names starting with '_' or '.' (the generator's `_manifest.json`, editor files) are left out."""
    sources = list(sources)
    declared = {src.file for src in sources}
    folders = {src.file.parent for src in sources if src.file.parent.parent.name == "raw"}
    return sorted(path for folder in folders if folder.is_dir() for path in folder.iterdir()
                  if path.is_file() and path not in declared and not path.name.startswith(("_", ".")))


def run_preflight(manifest_path: Path, counts_path: Path | None = None) -> list[RawSource]:
    """Check every declared raw file; raise RawFileError naming each unreadable one. With
    `counts_path`, write each file's physical record count there."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as err:
        raise RawFileError([], f"cannot read dbt's manifest {manifest_path}: {err}") from None
    sources = sources_from_manifest(manifest)
    results = inspect_all(sources)
    problems = [p for p, _ in results if p is not None]
    if problems:
        raise RawFileError(problems)
    if counts_path is not None:
        write_counts(counts_path, sources, [c for _, c in results])
    return sources
