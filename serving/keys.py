"""API keys with a client scope and roles, stored hashed (never a plaintext key at rest).

A keys file (`api_keys_file` in serving/config.yaml) lists, per key, a name (what logs and
metrics show, never the key), the key's SHA-256, the clients whose customers it may score
(`"*"`: all) and its roles (`score`: POST /v1/predict, `read_model`: GET /v1/model, `push`:
POST /v1/events). Keys given
in PARITY_API_KEYS / `api_keys` (not at rest in a file the service owns) keep every client and
role. `python -m serving.keys hash` prints the SHA-256 of a key read from stdin.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

# admin: move a model's current pointer (the console's promote / roll back)
ROLES = ("score", "read_model", "push", "admin")
ROUTE_ROLES = {"/v1/predict": "score", "/v1/model": "read_model", "/v1/events": "push"}


class KeysError(ValueError):
    """The keys file is unreadable or invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: its name, hash, client scope (None: every client) and roles."""

    name: str
    sha256: str
    clients: frozenset[str] | None
    roles: frozenset[str]

    def may_score(self, client: str) -> bool:
        return self.clients is None or client in self.clients


def hash_key(plain: str) -> str:
    """The SHA-256 (hex) a keys file stores for a key."""
    return hashlib.sha256(plain.encode()).hexdigest()


def load_keys(path: Path) -> list[ApiKey]:
    """The keys of a keys file (`keys: [{name, sha256, clients, roles}]`), validated."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise KeysError(f"{path}: cannot read the API keys file ({err})") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise KeysError(f"{path}: expected `keys:` with a list of {{name, sha256, clients, roles}}")
    keys, names = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}: keys[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "sha256", "clients", "roles"}:
            raise KeysError(f"{where}: only name, sha256, clients and roles are allowed")
        name, digest = entry.get("name"), str(entry.get("sha256", "")).lower()
        if not isinstance(name, str) or not name or name in names:
            raise KeysError(f"{where}: `name` must be a unique non-empty string")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise KeysError(f"{where} ({name}): `sha256` must be 64 hex digits (python -m serving.keys hash)")
        clients = entry.get("clients")
        if clients != "*" and (not isinstance(clients, list) or not clients
                                or not all(isinstance(c, str) and c for c in clients)):
            raise KeysError(f"{where} ({name}): `clients` must be '*' or a non-empty list of client names")
        roles = entry.get("roles")
        if not isinstance(roles, list) or not roles or set(roles) - set(ROLES):
            raise KeysError(f"{where} ({name}): `roles` must be a non-empty list of {list(ROLES)}")
        names.add(name)
        keys.append(ApiKey(name, digest, None if clients == "*" else frozenset(clients), frozenset(roles)))
    return keys


def plain_keys(keys: Sequence[str]) -> list[ApiKey]:
    """Keys from the environment / config list: every client, every role."""
    return [ApiKey(f"key-{i + 1}", hash_key(k), None, frozenset(ROLES)) for i, k in enumerate(keys)]


def authenticate(keys: Sequence[ApiKey], offered: str | None) -> ApiKey | None:
    """The key entry whose hash matches (every entry compared, in constant time each)."""
    if not offered:
        return None
    digest = hash_key(offered)
    found = None
    for key in keys:
        if hmac.compare_digest(digest, key.sha256):
            found = key
    return found


if __name__ == "__main__":
    if sys.argv[1:] != ["hash"]:
        raise SystemExit("usage: python -m serving.keys hash < key.txt")
    print(hash_key(sys.stdin.read().strip()))
