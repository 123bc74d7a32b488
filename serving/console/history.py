"""The customer page's online score history: an in-memory index of the prediction log's parts.

Scanning the log per lookup costs ~0.4 ms per Parquet part (DuckDB opens each footer) and the log
writes a part every few seconds while traffic flows, so a page that scanned it missed 2 s at
2,500 parts (bench/console.py, `--console-log-parts`). Instead the service keeps, in memory,
which parts hold a customer's primary-role rows (a 64-bit hash of the key per part: ~12 bytes a
row, no customer data) and reads only those parts, filtering on the exact key (a hash collision
costs a part read, never a wrong row). The index is synced with the folder before each lookup:
parts not seen yet are read, parts rewritten (an erasure rewrites them) or removed (retention)
are dropped and re-read. Nothing is kept on disk; a restart rebuilds it on the first lookup.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd

READ_CHUNK = 500  # parts per read_parquet call while syncing


class LogIndex:
    """The history columns of one prediction-log folder, by part file (thread-safe)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._parts: dict[str, tuple[int, int, int]] = {}  # part path -> (inode, mtime_ns, size) as indexed
        self._unreadable: dict[str, tuple[str, tuple[int, int, int]]] = {}  # part -> (DuckDB's error, its stat then)
        self._lock = threading.Lock()
        self._con: Any = None
        self._next_id = 0  # the next part number

    def _connect(self) -> Any:
        import duckdb

        con = duckdb.connect()
        con.execute("create table parts (part_id integer, part varchar)")
        con.execute("create table keys (key_hash ubigint, part_id integer)")
        return con

    def sync(self) -> list[str]:
        """Bring the index up to the folder's parts; the problems of parts that cannot be read."""
        current = {}
        for path in self.folder.glob("**/*.parquet"):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed while listing
                continue
            current[str(path)] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        stale = [p for p, seen in self._parts.items() if current.get(p) != seen]
        if stale:
            self._con.execute("delete from keys where part_id in (select part_id from parts where part in "
                              "(select unnest(?)))", [stale])
            self._con.execute("delete from parts where part in (select unnest(?))", [stale])
            for path in stale:
                del self._parts[path]
        for path in [p for p in self._unreadable if current.get(p) is None]:
            del self._unreadable[path]
        new = sorted(p for p in current if p not in self._parts
                     and self._unreadable.get(p, ("", None))[1] != current[p])
        for i in range(0, len(new), READ_CHUNK):
            self._read(new[i:i + READ_CHUNK], current)
        return [f"{p}: {why}" for p, (why, _) in sorted(self._unreadable.items())]

    def _read(self, parts: list[str], current: dict[str, tuple[int, int, int]]) -> None:
        """Index `parts` in one read; when one of them is unreadable, each on its own."""
        import duckdb

        try:
            self._insert(parts)
        except duckdb.Error as err:  # one INSERT: nothing of the failed read was kept
            if len(parts) > 1:
                for part in parts:
                    self._read([part], current)
                return
            self._unreadable[parts[0]] = (str(err).splitlines()[0], current[parts[0]])
            return
        for part in parts:
            self._parts[part] = current[part]
            self._unreadable.pop(part, None)

    def _insert(self, parts: list[str]) -> None:
        """One transaction: the parts' numbers and rows, or nothing."""
        first = self._next_id
        self._con.execute("begin")
        try:
            self._con.execute("insert into parts select ? + generate_subscripts(?, 1) - 1, unnest(?)",
                              [first, parts, parts])
            self._con.execute(
                "insert into keys select distinct hash(customer_id), parts.part_id "
                "from read_parquet(?, union_by_name=true, hive_partitioning=false, filename=true) as rows "
                "join parts on parts.part = rows.filename where role = 'primary'", [parts])
            self._con.execute("commit")
        except Exception:
            self._con.execute("rollback")
            raise
        self._next_id += len(parts)

    def history(self, customer_id: str, limit: int) -> tuple[pd.DataFrame, list[str]]:
        """The customer's newest `limit` online scores (what a scan of the whole log returns) and
        the parts that could not be read."""
        import duckdb

        with self._lock:
            if self._con is None:
                self._con = self._connect()
            problems = self.sync()
            parts = [r[0] for r in self._con.execute(
                "select part from parts where part_id in (select part_id from keys where key_hash = hash(?)) "
                "order by part", [customer_id]).fetchall()]
            if not parts:
                return pd.DataFrame(columns=["at", "score", "model_version", "status", "source"]), problems
            try:
                frame = self._con.execute(
                    "select request_at as at, score, model_version, status, 'online' as source "
                    "from read_parquet(?, union_by_name=true, hive_partitioning=false) "
                    "where customer_id = ? and role = 'primary' order by logged_at desc limit ?",
                    [parts, customer_id, limit]).df()
            except duckdb.Error as err:  # a part replaced or removed since the sync: said, not hidden
                return pd.DataFrame(columns=["at", "score", "model_version", "status", "source"]), [
                    *problems, f"{self.folder}: {str(err).splitlines()[0]}"]
        return frame, problems


_INDEXES: dict[Path, LogIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_of(folder: Path) -> LogIndex:
    """The process's index of a log folder (one per folder)."""
    with _INDEXES_LOCK:
        return _INDEXES.setdefault(folder.resolve(), LogIndex(folder.resolve()))
