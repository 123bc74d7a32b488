"""`make trace CUSTOMER=<client>:<id>`: every place the platform holds a customer's data, with row
counts, and an export of it (JSON with the records, CSV of the places) for an access request.

Places are discovered, not listed: every build's warehouse (every table or view with a customer
key), every Parquet/CSV file under the data folder with a ``customer_id`` column (marts of every
build, saved training sets, prediction log parts, batch scores, client exports, ...), every
SQLite file (the Feast online store by its serialized entity key, review decisions, the
console's action log), and every other file by the bytes of the key (monitoring outputs, logs,
write-ahead segments). Raw drops are the client's files: their lines are found through staging's
mapping (``source_file`` + ``line_number`` of the rows staging keyed to the customer).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from parity.config import Settings
from parity.governance import places, redis_store
from parity.governance.customer import Customer
from parity.governance.places import Place
from parity.ingest import warehouse
from parity.ingest.events import event_log_path, line_names_customer
from parity.jsonable import jsonable

GOVERNANCE_DIR = "governance"
ACCESS_DIR = "access_requests"
ERASURES_DIR = "erasures"


@dataclass
class Trace:
    """Where one customer's data is: the places found and the places that could not be read."""

    customer: Customer
    places: list[Place]
    problems: list[str] = field(default_factory=list)
    traced_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def held_rows(self) -> int:
        """Rows in places the platform controls (raw drops excluded: the client's files)."""
        return sum(p.rows for p in self.places if p.erasable)

    def summary(self) -> list[dict[str, Any]]:
        """One row per place: area, location, rows, erasable, detail."""
        return [{"area": p.area, "location": p.location, "rows": p.rows, "erasable": p.erasable,
                 "detail": p.detail} for p in self.places]


def governance_dir(settings: Settings) -> Path:
    """Where governance records live: erasure records, access exports, approvals ledgers."""
    return settings.data_dir / GOVERNANCE_DIR


def trace(settings: Settings, customer: Customer, with_records: bool = False) -> Trace:
    """Search every store under the data folder for the customer (read-only)."""
    found: list[Place] = []
    problems: list[str] = []
    published = settings.published_dir.resolve() if settings.published_dir.exists() else None
    # every build folder with a warehouse of either profile (parity.ingest.warehouse reads both)
    builds = sorted(f for f in settings.builds_dir.iterdir() if warehouse.exists(f)) if settings.builds_dir.is_dir() else []
    for folder in builds:
        label = _build_label(settings, folder, published)
        try:
            found += places.warehouse_places(folder, label, customer, with_records)
        except duckdb.Error as err:
            problems.append(f"{warehouse.location(folder)}: not searched ({str(err).splitlines()[0]})")
    found += _raw_places(settings, customer, published, problems)
    found += redis_store.redis_places(settings, customer, problems)  # the online store outside the folder
    # dbt's target/run folders and its debug log hold compiled code and manifests (the project's
    # unit-test fixtures included, whose made-up ids may equal a real one), not data
    # (a Spark build's table files are searched as its warehouse above)
    # the scale profile's local services keep their data files under the data folder: Redis is
    # searched through its server (above), PostgreSQL holds the Feast registry (definitions only)
    skip = (settings.raw_dir, settings.data_dir / "dbt", settings.services_dir,
            *(d for b in builds for d in (b / "target", b / "run", b / "spark")))
    log = event_log_path(settings.data_dir)
    for path in places.data_files(settings.data_dir, skip):
        try:
            found += _event_log_places(path, customer, with_records) if path == log else \
                _file_places(path, customer, with_records)
        except (duckdb.Error, OSError, ValueError, UnicodeDecodeError) as err:
            problems.append(f"{path}: not searched ({str(err).splitlines()[0] if str(err) else type(err).__name__})")
    return Trace(customer, found, problems)


def _build_label(settings: Settings, folder: Path, published: Path | None) -> str:
    previous = settings.data_dir / "previous"
    if published is not None and folder.resolve() == published:
        return f"build {folder.name} (published)"
    if previous.exists() and folder.resolve() == previous.resolve():
        return f"build {folder.name} (previous, kept for rollback)"
    return f"build {folder.name}"


def _raw_places(settings: Settings, customer: Customer, published: Path | None, problems: list[str]) -> list[Place]:
    """The client's raw lines, through the published build's staging mapping; after an erasure
    (staging suppresses the customer) through the erasure record written by `forget`."""
    lines: dict[str, list[int]] = {}
    if published is not None and warehouse.exists(published):
        try:
            lines = places.raw_lines(published, customer)
        except duckdb.Error as err:
            problems.append(f"raw line mapping: not read ({str(err).splitlines()[0]})")
    # staging's mapping also names the event log's lines: the platform's file, traced on its own
    lines = {name: numbers for name, numbers in lines.items() if not is_event_log(name)}
    found = [Place("raw", name, len(numbers), "lines " + _ranges(numbers), erasable=False)
             for name, numbers in lines.items()]
    record = erasure_record_path(settings, customer)
    if record.exists():
        erased = json.loads(record.read_text())
        for name, numbers in erased.get("raw_lines", {}).items():
            if name not in lines and not is_event_log(name):
                found.append(Place("raw", name, len(numbers), "lines " + _ranges(numbers) + " (suppressed in "
                                   f"staging since {erased.get('erased_at')}; the client's file)", erasable=False))
    return found


def _event_log_places(path: Path, customer: Customer, with_records: bool) -> list[Place]:
    """The fresh-events log (the platform's, appended by the service): the customer's lines."""
    numbers, records = [], []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if line_names_customer(raw.rstrip(b"\n"), customer.key):
                numbers.append(number)
                if with_records:
                    records.append({"line_number": number, "event": raw.decode("utf-8", "replace").rstrip("\n")})
    if not numbers:
        return []
    return [Place("events", str(path), len(numbers), "lines " + _ranges(numbers), records=records)]


def _file_places(path: Path, customer: Customer, with_records: bool) -> list[Place]:
    name = path.name
    if name.endswith(places.SKIPPED_SUFFIXES) or name.endswith(places.WAREHOUSE_SUFFIXES):
        return []  # warehouses are searched table by table above
    if path.suffix in (".parquet", ".csv") and path.stat().st_size > 0:
        place = places.tabular_file_place(path, customer, with_records)
        if place is not None or path.suffix == ".parquet":
            return [place] if place else []
        # a CSV without a customer_id column is still searched for the key's text below
    if path.suffix in places.SQLITE_SUFFIXES and path.read_bytes()[:16] == b"SQLite format 3\x00":
        return places.sqlite_places(path, customer, with_records)
    place = places.mention_place(path, customer)
    return [place] if place else []


def is_event_log(name: str) -> bool:
    """Whether a staged row's source file is an event log (`<data>/events/log.jsonl` of this or
    the data folder the build ran for), not a client's raw drop."""
    return Path(name).parts[-2:] == event_log_path(Path(".")).parts[-2:]


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def erasure_record_path(settings: Settings, customer: Customer) -> Path:
    """`forget`'s record of one erasure, named by the hashed key (never the id)."""
    return governance_dir(settings) / ERASURES_DIR / f"{customer.key_sha256}.json"


def export(result: Trace, folder: Path) -> dict[str, Path]:
    """Write trace.json (places and each place's records) and trace.csv (places) for an access
    request; returns their paths. The export holds the customer's data itself."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "customer_id": result.customer.key,
        "traced_at": result.traced_at,
        "held_rows": result.held_rows,
        "places": [dict(row, records=jsonable(p.records)) for row, p in zip(result.summary(), result.places)],
        "not_searched": result.problems,
    }
    paths = {"json": folder / "trace.json", "csv": folder / "trace.csv"}
    tmp = paths["json"].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2, default=str) + "\n")
    tmp.replace(paths["json"])
    tmp = paths["csv"].with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["area", "location", "rows", "erasable", "detail"])
        writer.writeheader()
        writer.writerows(result.summary())
    tmp.replace(paths["csv"])
    return paths


def access_dir(settings: Settings, customer: Customer) -> Path:
    """Default folder of an access request's export (named by the hashed key)."""
    return governance_dir(settings) / ACCESS_DIR / customer.key_sha256[:16]
