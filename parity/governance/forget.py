"""`make forget CUSTOMER=<client>:<id>` (admin): erase a customer everywhere the platform controls.

Order, so that a failure at any step leaves a state a re-run completes (every step is idempotent):
1. the erasure record (hashed key, raw file lines, places before) and the suppression list entry
   (staging turns the customer's records into tombstones on every later build);
2. files rewritten without the customer's rows, each atomically (temp file + rename): batch
   scores, client exports, prediction log parts, saved training sets (their sidecar records the
   erasure; the models trained on them are listed), the fresh-events log (under its appenders'
   lock) and the pushed-rows history, any other Parquet/CSV with a customer_id;
   SQLite rows deleted in one transaction per file (Feast online store, review decisions, the
   console's action log); the customer's hash in a Redis online store (governance.redis_store);
   access-request exports deleted;
3. a full rebuild published atomically (never a half-built state), then every other build
   folder deleted (the previous one too: a rollback must not bring the customer back), then an
   incremental materialization (the changed client's rows are reloaded; the customer's online
   rows are already gone);
   then the event log and pushed rows once more (events a running service accepted before it
   judged with the rebuilt, suppressing plan); then the fresh features of the other customers
   of the customer's pushed event ids (a correction had moved such a purchase to the erased
   customer: it is the previous owner's again, governance.moved) are recomputed online;
4. proof: trace again (0 rows in places the platform controls), reconciliation balanced.
Raw drops are the client's files and are not modified (their lines are listed for the client).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from parity import suppression
from parity.config import Settings
from parity.features.online_manifest import entity_key_bytes
from parity.features.retrieval import ENTITY_KEY
from parity.governance import moved, redis_store
from parity.governance import trace as tracing
from parity.governance.customer import Customer
from parity.governance.places import KEY, Place
from parity.ingest.events import event_log_path, events_dir, line_names_customer, rewrite_log

# files whose mentions of the key are replaced by ERASED (text stays valid JSON/HTML/log text)
TEXT_SUFFIXES = (".log", ".json", ".jsonl", ".html", ".md", ".txt", ".yaml", ".yml", ".csv", ".sql")
ERASED = "<erased>"


@dataclass
class ForgetReport:
    """What an erasure changed, what it could not, and the proof."""

    customer: Customer
    rewritten: list[str] = field(default_factory=list)  # "<rows> <location>"
    deleted: list[str] = field(default_factory=list)
    models_trained_with: list[str] = field(default_factory=list)
    not_erased: list[str] = field(default_factory=list)
    raw_lines: dict[str, list[int]] = field(default_factory=dict)
    build: str | None = None
    recomputed: list[str] = field(default_factory=list)  # other owners of its event ids, recomputed
    after: tracing.Trace | None = None


def forget(settings: Settings, customer: Customer, actor: str, rebuild: Any,
           refresh_online: Any = None, clock: Callable[[], datetime] | None = None) -> ForgetReport:
    """Erase the customer (`rebuild(settings)` publishes a full build and returns its name;
    `refresh_online(settings)`, e.g. an incremental materialization, then brings the online
    store's bookkeeping in line with the rebuilt marts; `clock`: the instant fresh features are
    recomputed at, default now); returns the report."""
    before = tracing.trace(settings, customer)
    owners = moved.other_owners(settings, customer)  # before the log loses the customer's lines
    report = ForgetReport(customer)
    report.raw_lines = {p.location: _lines(p) for p in before.places if p.area == "raw"}
    _write_record(settings, customer, actor, before, report.raw_lines)
    suppression.add(settings.data_dir, customer.key_sha256)
    builds_dir = settings.builds_dir.resolve()
    for place in before.places:
        location = Path(place.location.split("::", 1)[0])
        if not place.erasable or place.area == "warehouse" or _under(location, builds_dir):
            continue  # raw drops are the client's; builds are replaced by the rebuild below
        _erase_place(settings, place, location, customer, report)
    report.build = rebuild(settings)
    _drop_other_builds(settings, report)
    _events_again(settings, customer, report)
    if refresh_online is not None:
        refresh_online(settings)
    # after the materialization, which re-applies the pushed history: the recomputed rows are newer
    report.recomputed = moved.recompute_owners(settings, owners, clock)
    report.after = tracing.trace(settings, customer)
    return report


def _events_again(settings: Settings, customer: Customer, report: ForgetReport) -> None:
    """The fresh-events log and pushed rows once more, after the rebuild: a running service may
    have accepted the customer's events before it judged with the rebuilt (suppressing) plan."""
    log = event_log_path(settings.data_dir)
    if log.exists():
        removed = rewrite_log(log, lambda line: line_names_customer(line, customer.key))
        if removed:
            report.rewritten.append(f"{removed} lines accepted during the erasure: {log}")
    for part in sorted((events_dir(settings.data_dir) / "pushed").glob("*/part-*.parquet")):
        removed = rewrite_parquet(part, customer.key)
        if removed:
            report.rewritten.append(f"{removed} rows pushed during the erasure: {part}")


def _lines(place: Place) -> list[int]:
    numbers: list[int] = []
    for part in place.detail.removeprefix("lines ").split(" (")[0].split(", "):
        if part:
            low, _, high = part.partition("-")
            numbers += range(int(low), int(high or low) + 1)
    return numbers


def _under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def _erase_place(settings: Settings, place: Place, location: Path, customer: Customer, report: ForgetReport) -> None:
    """One place: rewrite a file, delete SQLite rows, delete an access export, or say why not."""
    access = tracing.governance_dir(settings) / tracing.ACCESS_DIR
    if redis_store.is_redis(place.location):
        done = redis_store.delete(settings, customer, place.location)
        report.deleted.append(f"{done} ({place.rows} feature values): {place.location}")
    elif place.area == "events" or location == event_log_path(settings.data_dir):
        # under the appenders' lock: a running service's EventLog reopens the new file
        removed = rewrite_log(location, lambda line: line_names_customer(line, customer.key))
        report.rewritten.append(f"{removed} lines: {location}")
    elif _under(location, access):
        shutil.rmtree(location.parent, ignore_errors=True)
        report.deleted.append(f"access-request export {location.parent}")
    elif place.area == "parquet":
        removed = rewrite_parquet(location, customer.key)
        report.rewritten.append(f"{removed} rows: {location}")
        if location.with_suffix(".json").exists() and location.name.startswith("dataset-"):
            report.models_trained_with += _note_training_set(settings, location, removed)
    elif place.area == "csv":
        report.rewritten.append(f"{rewrite_csv(location, customer.key)} rows: {location}")
    elif place.area in ("sqlite", "online_store"):
        report.deleted.append(f"{delete_sqlite_rows(location, place.location.split('::', 1)[1], customer)} "
                              f"rows: {place.location}")
    elif place.area == "mention" and location.suffix in TEXT_SUFFIXES:
        report.rewritten.append(f"{redact_text(location, customer.key)} mentions redacted: {location}")
    else:
        report.not_erased.append(f"{place.location}: {place.rows} {place.area} ({place.detail}); not a table "
                                 "the platform can rewrite (e.g. a live prediction-log segment: run forget "
                                 "again after the service compacts it)")


def _atomic_tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def rewrite_parquet(path: Path, key: str) -> int:
    """Rewrite a Parquet file without the key's rows (temp file + rename); rows removed."""
    table = pq.read_table(path)
    keep = pc.invert(pc.fill_null(pc.equal(table[KEY], key), False))
    kept = table.filter(keep)
    if kept.num_rows == table.num_rows:
        return 0  # nothing of the customer: the file is left as it is
    tmp = _atomic_tmp(path)
    pq.write_table(kept, tmp)
    os.replace(tmp, path)
    return table.num_rows - kept.num_rows


def rewrite_csv(path: Path, key: str) -> int:
    """Rewrite a CSV file without the key's rows, other rows' text kept (temp file + rename)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or KEY not in rows[0]:
        return 0
    index = rows[0].index(KEY)
    kept = [rows[0]] + [row for row in rows[1:] if len(row) <= index or row[index] != key]
    tmp = _atomic_tmp(path)
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(kept)
    os.replace(tmp, path)
    return len(rows) - len(kept)


def redact_text(path: Path, key: str) -> int:
    """Replace every occurrence of the key in a text file by ERASED (temp file + rename)."""
    data = path.read_bytes()
    count = data.count(key.encode("utf8"))
    if count:
        tmp = _atomic_tmp(path)
        tmp.write_bytes(data.replace(key.encode("utf8"), ERASED.encode("utf8")))
        os.replace(tmp, path)
    return count


def delete_sqlite_rows(path: Path, table: str, customer: Customer) -> int:
    """Delete the customer's rows of one SQLite table, as trace found them, in one transaction."""
    quoted = '"' + table.replace('"', '""') + '"'
    con = sqlite3.connect(path, timeout=30)
    try:
        columns = {row[1]: (row[2] or "").upper() for row in con.execute(f"pragma table_info({quoted})")}
        if KEY in columns:
            where, params = f'"{KEY}" = ?', [customer.key]
        elif "entity_key" in columns:
            where, params = "entity_key = ?", [entity_key_bytes(ENTITY_KEY, customer.key)]
        else:
            texts = [c for c, kind in columns.items() if "CHAR" in kind or "TEXT" in kind or kind == ""]
            where = " or ".join(f'instr("{c}", ?) > 0' for c in texts)
            params = [customer.key] * len(texts)
        with con:
            deleted = con.execute(f"delete from {quoted} where {where}", params).rowcount
    finally:
        con.close()
    return deleted


def _note_training_set(settings: Settings, path: Path, removed: int) -> list[str]:
    """Record the erasure in a saved training set's sidecar (its original fingerprint is kept, so
    a retrain from it is refused as changed) and list the models trained on it."""
    sidecar = path.with_suffix(".json")
    body = json.loads(sidecar.read_text())
    body.setdefault("erasures", []).append({"at": _now(), "rows_removed": removed})
    tmp = _atomic_tmp(sidecar)
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, sidecar)
    used = []
    for meta in sorted(settings.registry_dir.glob("*/v*/metadata.json")):
        try:
            fingerprint = json.loads(meta.read_text()).get("data_fingerprint") or {}
        except (OSError, ValueError):
            continue
        if fingerprint.get("sha256") == body.get("sha256"):
            used.append(f"{meta.parent.parent.name}/{meta.parent.name}")
    return used


def _drop_other_builds(settings: Settings, report: ForgetReport) -> None:
    """Delete every build folder but the published one (and the `previous` link)."""
    from parity.ingest import builds

    if not settings.builds_dir.is_dir():
        return  # nothing built in this folder (its published build lives elsewhere)
    with builds.build_lock(settings, "forget: dropping builds made before the erasure"):
        published = settings.published_dir.resolve()
        link = settings.data_dir / "previous"
        if link.is_symlink():
            link.unlink()
        for folder in sorted(settings.builds_dir.iterdir()):
            if folder.is_dir() and folder.resolve() != published:
                shutil.rmtree(folder)
                report.deleted.append(f"build {folder.name} (made before the erasure)")


def _write_record(settings: Settings, customer: Customer, actor: str, before: tracing.Trace,
                  raw_lines: dict[str, list[int]]) -> None:
    """The erasure's evidence, named by the hashed key: when, by whom, where the data was."""
    path = tracing.erasure_record_path(settings, customer)
    path.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(path.read_text()) if path.exists() else {}
    lines = {name: sorted(set(numbers) | set(raw_lines.get(name, [])))  # a re-run keeps what was found
             for name, numbers in {**raw_lines, **earlier.get("raw_lines", {})}.items()}
    body = {"key_sha256": customer.key_sha256, "erased_at": earlier.get("erased_at", _now()), "by": actor,
            "runs": [*earlier.get("runs", []), _now()], "raw_lines": lines,
            "places_before": [{k: v for k, v in row.items() if k != "detail"} for row in before.summary()]}
    tmp = _atomic_tmp(path)
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
