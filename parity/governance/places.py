"""Readers that find one customer's rows in each kind of store the platform writes.

Every reader is generic over what it reads: a DuckDB warehouse is searched in every table or view
with a ``customer_id`` column (or ``client_id`` + ``source_customer_id``, the quarantine's key),
a Parquet/CSV file when it has a ``customer_id`` column, a SQLite file in every table with a
``customer_id`` column, a Feast ``entity_key`` column (the serialized key) or, failing those, a
text column mentioning the key; any other file by the bytes of the key. A new table, file or
output folder is therefore searched without being listed here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from parity.features.online_manifest import entity_key_bytes
from parity.features.retrieval import ENTITY_KEY
from parity.governance.customer import Customer
from parity.ingest import warehouse

# the canonical key column, and the quarantine's (client + the client's own id)
KEY, SOURCE_KEY = ENTITY_KEY, "source_customer_id"
WAREHOUSE_SUFFIXES = (".duckdb", ".duckdb.wal")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SKIPPED_SUFFIXES = (".lock", "-shm", ".png", ".svg", ".gpickle", ".msgpack")
MAX_SCAN_BYTES = 512 * 1024 * 1024  # larger unknown files are reported, not read whole


@dataclass
class Place:
    """Rows of one customer in one place (a table, a file, a raw drop's lines)."""

    area: str  # raw, warehouse, parquet, csv, sqlite, online_store (SQLite or Redis), events, mention
    location: str
    rows: int
    detail: str = ""
    erasable: bool = True  # False: a place the platform does not own (the client's raw drop)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _predicate(columns: set[str], customer: Customer) -> tuple[str, list[Any]] | None:
    """How a relation with these columns names the customer, or None when it cannot."""
    if KEY in columns:
        return f"{_quote(KEY)} = ?", [customer.key]
    if SOURCE_KEY in columns and "client_id" in columns:
        return f"client_id = ? and {_quote(SOURCE_KEY)} = ?", [customer.client_id, customer.source_id]
    return None


def warehouse_places(build: Path, label: str, customer: Customer, with_records: bool) -> list[Place]:
    """Every table or view of a build's warehouse holding the customer (opened read-only, through
    parity.ingest.warehouse: a DuckDB file or a Spark build's tables)."""
    found = []
    path = warehouse.location(build)
    with warehouse.connect(build) as con:
        kinds = dict(((s, t), k) for s, t, k in con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database()").fetchall())
        for (schema, table), columns in sorted(_relations(con).items()):
            where = _predicate(columns, customer)
            if where is None:
                continue
            sql = f"from {_quote(schema)}.{_quote(table)} where {where[0]}"
            rows = con.execute(f"select count(*) {sql}", where[1]).fetchone()[0]
            if rows:
                view = "; a view: its rows live where it reads from" if kinds.get((schema, table)) == "VIEW" else ""
                place = Place("warehouse", f"{path}::{schema}.{table}", rows, label + view)
                if with_records:
                    place.records = _records(con.execute(f"select * {sql}", where[1]))
                found.append(place)
    return found


def raw_lines(build: Path, customer: Customer) -> dict[str, list[int]]:
    """Raw file -> line numbers of the customer's records, through staging's mapping (every
    relation with source_file + line_number that names the customer), never by matching the
    raw text (a client's raw id may be spelled differently from the canonical one)."""
    lines: dict[str, set[int]] = {}
    with warehouse.connect(build) as con:
        for (schema, table), columns in sorted(_relations(con).items()):
            where = _predicate(columns, customer)
            if where is None or not {"source_file", "line_number"} <= columns:
                continue
            for source_file, line in con.execute(
                f"select distinct source_file, line_number from {_quote(schema)}.{_quote(table)} "
                f"where {where[0]} and source_file is not null and line_number is not null", where[1]
            ).fetchall():
                lines.setdefault(source_file, set()).add(int(line))
    return {name: sorted(found) for name, found in sorted(lines.items())}


def tabular_file_place(path: Path, customer: Customer, with_records: bool) -> Place | None:
    """A Parquet or CSV file with a customer_id column: its rows of the customer."""
    reader = "read_parquet(?)" if path.suffix == ".parquet" else "read_csv(?, all_varchar = true, header = true)"
    with duckdb.connect() as con:
        columns = {row[0] for row in con.execute(f"describe select * from {reader}", [str(path)]).fetchall()}
        where = _predicate(columns, customer)
        if where is None:
            return None
        sql = f"from {reader} where {where[0]}"
        rows = con.execute(f"select count(*) {sql}", [str(path), *where[1]]).fetchone()[0]
        if not rows:
            return None
        place = Place(path.suffix.lstrip("."), str(path), rows)
        if with_records:
            place.records = _records(con.execute(f"select * {sql}", [str(path), *where[1]]))
        return place


def sqlite_places(path: Path, customer: Customer, with_records: bool) -> list[Place]:
    """Tables of a SQLite file naming the customer: a customer_id column, a Feast online
    store's serialized entity_key, or (for free-text tables such as an action log) a text
    column mentioning the key."""
    found = []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            info = con.execute(f"pragma table_info({_quote(table)})").fetchall()
            columns = {row[1]: (row[2] or "").upper() for row in info}
            if KEY in columns:
                where, params, area = f"{_quote(KEY)} = ?", [customer.key], "sqlite"
            elif "entity_key" in columns:
                key = entity_key_bytes(ENTITY_KEY, customer.key)
                where, params, area = "entity_key = ?", [key], "online_store"
            else:
                texts = [c for c, kind in columns.items() if "CHAR" in kind or "TEXT" in kind or kind == ""]
                if not texts:
                    continue
                where = " or ".join(f"instr({_quote(c)}, ?) > 0" for c in texts)
                params, area = [customer.key] * len(texts), "sqlite"
            cursor = con.execute(f"select * from {_quote(table)} where {where}", params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            if rows:
                records = [dict(zip(names, r)) for r in rows] if with_records and area != "online_store" else []
                found.append(Place(area, f"{path}::{table}", len(rows), records=records))
    finally:
        con.close()
    return found


def mention_place(path: Path, customer: Customer) -> Place | None:
    """Any other file: how many times the canonical key's bytes occur in it."""
    size = path.stat().st_size
    if size > MAX_SCAN_BYTES:
        return Place("unread", str(path), 0, f"{size} bytes: larger than the scan limit, not searched")
    count = path.read_bytes().count(customer.key.encode("utf8"))
    return Place("mention", str(path), count, "occurrences of the key in the file") if count else None


def data_files(data_dir: Path, skip: tuple[Path, ...]) -> Iterator[Path]:
    """Every regular file under the data folder, symlinks not followed, `skip` folders left out."""
    stack = [data_dir]
    skipped = {p.resolve() for p in skip}
    while stack:
        folder = stack.pop()
        for entry in sorted(folder.iterdir()):
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.resolve() not in skipped:
                    stack.append(entry)
            elif entry.is_file():
                yield entry


def _relations(con: Any) -> dict[tuple[str, str], set[str]]:
    """(schema, table or view) -> its column names, for every relation of the open database."""
    relations: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_catalog = current_database()").fetchall():
        relations.setdefault((schema, table), set()).add(column)
    return relations


def _records(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
