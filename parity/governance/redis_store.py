"""The online store that lives outside the data folder: Feast's Redis store (the scale profile).

Feast's RedisOnlineStore keeps one hash per entity and project, keyed by the serialized entity
key + the project name, with one field per feature and a ``_ts:<view>`` field per view
(parity.features.online_redis). A customer's online data is therefore exactly one key per
project: trace counts its feature fields, forget deletes the key (every view at once).

Which Redis: the selected profile's Feast config when its online store is Redis, and the scale
profile's too when the data folder was used with it (a `feast-scale` folder), so an embedded-profile
trace does not miss a customer still online in the scale profile's Redis.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
from typing import Any

import yaml

from parity.config import Settings
from parity.features.online_manifest import string_key_prefix
from parity.features.retrieval import ENTITY_KEY
from parity.governance.customer import Customer
from parity.governance.places import Place

SCHEME = "redis://"


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """One Redis online store and the Feast project whose keys it holds."""

    online_store: dict[str, Any]
    project: str

    @property
    def label(self) -> str:
        return f"{SCHEME}{self.online_store.get('connection_string')}/{self.project}"


def targets(settings: Settings) -> list[RedisTarget]:
    """The Redis online stores of this data folder (see the module docstring); [] when none."""
    from parity.features.feature_store import store_config

    candidates = [settings]
    if not settings.is_scale and (settings.data_dir / "feast-scale").is_dir():
        candidates.append(dataclasses.replace(settings, profile="scale", feast_config=""))
    found: list[RedisTarget] = []
    for chosen in candidates:
        config = store_config(chosen)
        online = config.get("online_store") or {}
        if isinstance(online, dict) and online.get("type") == "redis":
            target = RedisTarget(dict(online), str(config.get("project") or ""))
            if target.label not in {t.label for t in found}:
                found.append(target)
    return found


def entity_key(customer: Customer, project: str) -> bytes:
    """Feast's Redis key of the customer (as RedisReader.entity_key builds it)."""
    raw = customer.key.encode("utf8")
    return string_key_prefix(ENTITY_KEY) + struct.pack("<I", len(raw)) + raw + project.encode("utf8")


def redis_places(settings: Settings, customer: Customer, problems: list[str]) -> list[Place]:
    """The customer's hash in each Redis online store (rows: its feature values); an unreachable
    Redis is a problem named, never a silent 0."""
    try:
        chosen = targets(settings)
    except (OSError, ValueError, yaml.YAMLError) as err:  # an unreadable Feast config: said, never skipped silently
        problems.append(f"online store of {settings.feature_store_yaml}: not searched ({err})")
        return []
    if not chosen:
        return []
    import redis

    from parity.features.online_redis import connect

    found = []
    for target in chosen:
        try:
            client = connect(target.online_store)
            try:
                fields = client.hkeys(entity_key(customer, target.project))
            finally:
                client.close()
        except (redis.RedisError, ValueError) as err:
            problems.append(f"{target.label}: not searched ({type(err).__name__}: {err}; run `make services-up`)")
            continue
        views = sorted(f[len(b"_ts:"):].decode() for f in fields if f.startswith(b"_ts:"))
        values = len(fields) - len(views)
        if fields:  # (the location never names the customer: it goes into the erasure record)
            found.append(Place("online_store", target.label, values,
                               f"the customer's Redis hash: {values} feature values of views {', '.join(views)}"))
    return found


def delete(settings: Settings, customer: Customer, location: str) -> str:
    """Delete the customer's hash from the Redis store named by a place's `location`, then ask
    Redis to rewrite its snapshot (its RDB file held the hash); says what was done."""
    import redis

    from parity.features.online_redis import connect

    for target in targets(settings):
        if location == target.label:
            client = connect(target.online_store)
            try:
                deleted = int(client.delete(entity_key(customer, target.project)))
                try:
                    client.bgsave()
                    saved = "snapshot rewrite requested (BGSAVE)"
                except redis.RedisError as err:  # e.g. a save under way, or BGSAVE not allowed
                    saved = f"snapshot not rewritten now ({err}): Redis's next save drops the hash"
            finally:
                client.close()
            return f"{deleted} key; {saved}"
    raise ValueError(f"{location}: not a Redis online store of this data folder")


def is_redis(location: str | Path) -> bool:
    """Whether a place's location names a Redis store (not a file)."""
    return str(location).startswith(SCHEME)
