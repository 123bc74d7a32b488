"""Fresh features into Feast's Redis online store (the scale profile): `OnlineWriter` for Redis.

Pushed events recompute a few customers' fresh features (parity.features.fresh); on SQLite
`OnlineWriter` writes them, here `RedisWriter` does, in the layout Feast's `RedisOnlineStore`
writes and `RedisReader` reads (parity.features.online_redis): per customer one hash, one field
per feature (murmur3 of ``"<view>:<feature>"``, a serialized ``Value``, the bytes Feast's own
write produces) and the view's ``_ts:<view>`` field. Only the fresh features' fields are set, in
one HSET per customer (a reader sees all of a customer's new values or none); ``_ts`` — the
snapshot's event time — is kept, so serving's staleness rule still judges the snapshot, as with
the wide SQLite store. A customer whose hash has no ``_ts:<view>`` (not materialized) is not
written: it has no snapshot to add to.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from parity.features.fresh import KEY, OnlineWriter
from parity.features.online_redis import _timestamp, connect, field_key


class RedisWriter(OnlineWriter):
    """Writes fresh feature values into a view's fields of Feast's Redis hashes."""

    def __init__(self, plan: Any, view: Any, online_store: dict[str, Any], client: Any = None):
        from redis.cluster import RedisCluster

        from parity.features.online_manifest import string_key_prefix, value_message

        if plan.store_kind != "redis":
            raise ValueError(f"the serving plan of '{plan.name}' is for {plan.store_kind}, not Redis")
        self.layout, self.table, self.join_key, self.columns = "redis", view.online_name, view.join_key, {}
        self._message = value_message()
        self._lock = threading.Lock()
        self._client = client or connect(online_store)
        # MULTI/EXEC on one server (all of a push or none); a cluster's keys span slots, so there
        # each customer's single HSET is what stays atomic
        self._transaction = not isinstance(self._client, RedisCluster)
        self._prefix, self._project = string_key_prefix(view.join_key), plan.project.encode("utf8")
        self._ts_field = f"_ts:{view.online_name}".encode()

    def key(self, customer_id: str) -> bytes:
        """Feast's Redis key of a customer (as RedisReader.entity_key)."""
        import struct

        raw = customer_id.encode("utf8")
        return self._prefix + struct.pack("<I", len(raw)) + raw + self._project

    def rows(self, table: pa.Table, columns: Sequence[str], types: dict[str, str], event_at: datetime) -> list[tuple]:
        """(redis key, {hash field: Value bytes}) per customer; `event_at` is not stored (the
        view's `_ts` stays the snapshot's)."""
        fields = {name: field_key(self.table, name) for name in columns}
        return [(self.key(row[KEY]), {fields[name]: self.value(types[name], row[name])[0] for name in columns})
                for row in table.select([KEY, *columns]).to_pylist()]

    def known(self, keys: Sequence[bytes]) -> set[bytes]:
        """The keys whose hash holds the view's row (its `_ts` field)."""
        if not keys:
            return set()
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hexists(key, self._ts_field)
            held = pipe.execute()
        return {key for key, has in zip(keys, held) if has}

    def snapshot_times(self, keys: Sequence[bytes]) -> dict[bytes, datetime]:
        """The event time of each stored customer's view row (its `_ts` field)."""
        if not keys:
            return {}
        with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, self._ts_field)
            stamps = pipe.execute()
        return {key: _timestamp(raw) for key, raw in zip(keys, stamps) if raw is not None}

    def write(self, rows: list[tuple], columns: Sequence[str]) -> None:
        """One HSET per customer, all in one MULTI/EXEC on a single server."""
        if not rows:
            return
        with self._lock, self._client.pipeline(transaction=self._transaction) as pipe:
            for key, mapping in rows:
                pipe.hset(key, mapping=mapping)
            pipe.execute()

    def close(self) -> None:
        self._client.close()
