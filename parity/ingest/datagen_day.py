"""Append one more day's drop to generated raw files (incremental-build tests and `bench`).

For acme, bolt and cora the new day's records are copies of the client's own recent records with
new ids, event and arrival times on the new day, plus one late row (an event `late_days` before
the new day, arriving on it) and one correction (an existing transaction id re-sent with a new
amount, arriving on the new day). dune's monthly log is left as it is (no daily arrivals).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Layout:
    """Where a client's transaction file keeps the fields a new record changes."""

    file: str
    encoding: str
    delimiter: str | None  # None: JSON lines
    fields: tuple[str, ...]  # id, event time, amount, arrival
    event_format: str
    arrival_format: str
    zone: str


LAYOUTS = {
    "acme": Layout("transactions.csv", "latin-1", ";", ("buchungsnr", "datum", "betrag", "exportiert_am"),
                   "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "Europe/Berlin"),
    "bolt": Layout("transactions.jsonl", "utf-8", None, ("txn_id", "ts", "amount_cents", "received_at"),
                   "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S+00:00", "UTC"),
    "cora": Layout("orders.csv", "utf-8", ",", ("Order Ref", "Order Date", "Total", "Ingested At"),
                   "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "UTC"),
}


def _records(path: Path, layout: Layout) -> tuple[list[str], list[dict[str, str]]]:
    """The header (CSV) and the plain records (no quotes) of a file, as dicts."""
    lines = path.read_text(encoding=layout.encoding).splitlines()
    if layout.delimiter is None:
        return [], [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]
    header = lines[0].split(layout.delimiter)
    rows = [line.split(layout.delimiter) for line in lines[1:] if '"' not in line]
    return header, [dict(zip(header, row, strict=True)) for row in rows if len(row) == len(header)]


def _format(layout: Layout, field: str, value: object) -> str:
    if isinstance(value, datetime):
        local = value.astimezone(ZoneInfo(layout.zone))
        return local.strftime(layout.event_format if field == layout.fields[1] else layout.arrival_format)
    if layout.fields[2] == field and layout.delimiter is None:
        return str(int(round(float(value) * 100)))
    if layout.fields[2] == field:
        text = f"{float(value):.2f}"
        return text.replace(".", ",") if layout.delimiter == ";" else text
    return str(value)


def _line(layout: Layout, header: list[str], record: dict[str, object]) -> str:
    if layout.delimiter is None:
        out = {k: (int(v) if k == layout.fields[2] else v) for k, v in record.items()}
        return json.dumps(out, separators=(",", ":"))
    return layout.delimiter.join(str(record[h]) for h in header)


def _amount(layout: Layout, value: object) -> float | None:
    """The record's amount in units (None when it does not parse: such templates are skipped)."""
    try:
        number = float(str(value).replace(",", ".")) if layout.delimiter == ";" else float(str(value))
    except ValueError:
        return None
    return number / 100 if layout.delimiter is None else number


def append_day(raw_dir: Path, day: date, records_per_client: int = 20, late_days: int = 5,
               seed: int = 17) -> dict[str, int]:
    """Append `day`'s drop to each client's transaction file; returns records appended per client."""
    rng = random.Random(seed)
    appended: dict[str, int] = {}
    midnight = datetime.combine(day, time(0), tzinfo=timezone.utc)
    for client, layout in LAYOUTS.items():
        path = raw_dir / client / layout.file
        if not path.exists():
            continue
        header, records = _records(path, layout)
        id_f, event_f, amount_f, arrival_f = layout.fields
        usable = [r for r in records if str(r[id_f]).strip() and "TEST" not in str(r).upper()
                  and (_amount(layout, r[amount_f]) or 0) > 0]
        recent = usable[-max(200, records_per_client):]
        new: list[dict[str, object]] = []
        for n in range(records_per_client):
            event = midnight + timedelta(minutes=rng.randrange(0, 18 * 60))
            new.append({**rng.choice(recent), id_f: f"{rng.choice(recent)[id_f]}-d{day:%Y%m%d}-{n}",
                        event_f: event, arrival_f: event + timedelta(minutes=rng.randrange(1, 300))})
        late = {**rng.choice(recent), event_f: midnight - timedelta(days=late_days),
                arrival_f: midnight + timedelta(hours=20)}
        late[id_f] = f"{late[id_f]}-late{day:%Y%m%d}"
        corrected = {**rng.choice(recent), arrival_f: midnight + timedelta(hours=21)}
        lines = []
        for record in [*new, late, corrected]:
            record[amount_f] = (_amount(layout, record[amount_f]) or 0) + (1.25 if record is corrected else 0)
            lines.append(_line(layout, header, {k: _format(layout, k, v) for k, v in record.items()}))
        with path.open("a", encoding=layout.encoding, newline="") as fh:
            fh.write("".join(line + "\n" for line in lines))
        appended[client] = len(lines)
    return appended
