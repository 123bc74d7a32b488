"""The suppression list: customers erased on request, as sha256 of their canonical key.

One home, ``<data>/governance/suppression.csv`` (header ``key_sha256,added_at``, one erased
customer a line). Every dbt run is told where it is (``Settings.env``: ``PARITY_ERASED_CUSTOMERS_FILE``,
set only when the list holds a key) and staging joins it (dbt_project/macros/erasure.sql): the
customer's records become tombstones, so no rebuild brings an erased customer back. The file is
read by the engine, never inlined into the SQL, so the list has no size limit (an environment
variable holding the keys, as before, capped it at ~1,800: Linux's 128 KiB per variable).
Only hashes are kept: the list names nobody in clear text (a sha256 of a short id space is a
pseudonym, not anonymisation: whoever holds an id can test it against the list).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

FILE = Path("governance") / "suppression.csv"
LEGACY_FILE = Path("governance") / "suppression.json"  # the first format (keys handed over in a variable)
ENV = "PARITY_ERASED_CUSTOMERS_FILE"
HEADER = ["key_sha256", "added_at"]
_HEX = re.compile(r"^[0-9a-f]{64}\Z")


class SuppressionError(ValueError):
    """The suppression list is unreadable or malformed."""


def path(data_dir: Path) -> Path:
    """Where the suppression list of a data folder lives."""
    return Path(data_dir) / FILE


def entries(data_dir: Path) -> list[dict[str, str]]:
    """Every entry ({"sha256", "added_at"}), oldest first; [] when nothing was erased. A list in
    the first format (suppression.json) is converted once."""
    file = path(data_dir)
    if not file.exists():
        legacy = Path(data_dir) / LEGACY_FILE
        if not legacy.exists():
            return []
        found = _legacy_entries(legacy)
        _write(file, found)
        legacy.unlink()
        return found
    try:
        rows = list(csv.reader(io.StringIO(file.read_text(encoding="utf-8"), newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SuppressionError(f"{file}: unreadable suppression list ({err})") from None
    if not rows or rows[0] != HEADER:
        raise SuppressionError(f"{file}: the first line must be the header {','.join(HEADER)}")
    bad = [f"line {n}" for n, row in enumerate(rows[1:], start=2) if len(row) != 2 or not _HEX.match(row[0])]
    if bad:
        raise SuppressionError(f"{file}: {', '.join(bad[:5])}: not '<lowercase sha256 hex digest>,<added_at>'")
    return [{"sha256": key, "added_at": added} for key, added in rows[1:]]


def _legacy_entries(file: Path) -> list[dict[str, str]]:
    try:
        found = json.loads(file.read_text())["keys"]
        bad = [e for e in found if not isinstance(e, dict) or not _HEX.match(str(e.get("sha256", "")))]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SuppressionError(f"{file}: unreadable suppression list ({err})") from None
    if bad:
        raise SuppressionError(f"{file}: entries without a lowercase sha256 hex digest: {bad[:3]}")
    return [{"sha256": e["sha256"], "added_at": str(e.get("added_at", ""))} for e in found]


def keys(data_dir: Path) -> list[str]:
    """The hashed keys of the suppression list."""
    return [entry["sha256"] for entry in entries(data_dir)]


def add(data_dir: Path, key_sha256: str) -> bool:
    """Add a hashed key (atomically: temp file + rename); False when it was already listed."""
    if not _HEX.match(key_sha256):
        raise SuppressionError(f"not a lowercase sha256 hex digest: {key_sha256!r}")
    found = entries(data_dir)
    if any(entry["sha256"] == key_sha256 for entry in found):
        return False
    found.append({"sha256": key_sha256, "added_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    _write(path(data_dir), found)
    return True


def _write(file: Path, found: list[dict[str, str]]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows([entry["sha256"], entry["added_at"]] for entry in found)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, file)


def dbt_env(data_dir: Path) -> dict[str, str]:
    """What a dbt run needs to suppress: the list's path when it holds a key (checked here, so a
    malformed list stops the build before dbt runs), else nothing (staging is left as it is)."""
    return {ENV: str(path(data_dir).resolve())} if keys(data_dir) else {}


def env_value(data_dir: Path) -> str:
    """The erased keys as one JSON text: what a build's erasures were (incremental builds compare
    it with their base's, parity.ingest.incremental)."""
    return json.dumps(keys(data_dir))
