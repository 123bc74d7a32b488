"""The suppression list: customers erased on request, as sha256 of their canonical key.

One home, ``<data>/governance/suppression.json``; every dbt run gets it through
``Settings.env`` (``PARITY_ERASED_CUSTOMER_KEYS``) and staging turns the customer's records into
tombstones (dbt_project/macros/erasure.sql), so no rebuild brings an erased customer back. Only
hashes are kept: the list itself names nobody in clear text (a sha256 of a short id space is a
pseudonym, not anonymisation: whoever holds an id can test it against the list).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

FILE = Path("governance") / "suppression.json"
ENV = "PARITY_ERASED_CUSTOMER_KEYS"
# one environment string must stay under Linux's 128 KiB per-argument limit (~67 bytes a key)
MAX_KEYS = 1800
_HEX = re.compile(r"^[0-9a-f]{64}\Z")


class SuppressionError(ValueError):
    """The suppression list is unreadable, malformed or full."""


def path(data_dir: Path) -> Path:
    """Where the suppression list of a data folder lives."""
    return Path(data_dir) / FILE


def entries(data_dir: Path) -> list[dict[str, str]]:
    """Every entry ({"sha256", "added_at"}), oldest first; [] when nothing was erased."""
    file = path(data_dir)
    if not file.exists():
        return []
    try:
        body = json.loads(file.read_text())
        found = body["keys"]
        bad = [e for e in found if not isinstance(e, dict) or not _HEX.match(str(e.get("sha256", "")))]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SuppressionError(f"{file}: unreadable suppression list ({err})") from None
    if bad:
        raise SuppressionError(f"{file}: entries without a lowercase sha256 hex digest: {bad[:3]}")
    return found


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
    if len(found) >= MAX_KEYS:
        raise SuppressionError(f"{path(data_dir)}: {MAX_KEYS} keys is the most dbt can be handed through "
                               f"{ENV}; move the list to a dbt source before erasing more customers")
    found.append({"sha256": key_sha256, "added_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    file = path(data_dir)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".json.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        handle.write(json.dumps({"keys": found}, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, file)
    return True


def env_value(data_dir: Path) -> str:
    """The JSON list dbt reads (``erased_customer_keys()`` in macros/erasure.sql)."""
    return json.dumps(keys(data_dir))
