"""The customer page's online score history: an in-memory index of the prediction log's parts.

Scanning the log per lookup costs ~0.4 ms per Parquet part (DuckDB opens each footer) and the log
writes a part every few seconds while traffic flows, so a page that scanned it missed 2 s at
2,500 parts (bench/console.py, `--console-log-parts`). Instead the service keeps the history
columns of the log's primary-role rows in one in-memory DuckDB table, synced with the folder
before each query: parts not seen yet are read, parts rewritten (an erasure rewrites them) or
removed (retention) have their rows dropped and re-read. The index holds nothing the log does
not hold at that moment, and nothing on disk; a restart rebuilds it on the first lookup.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd

COLUMNS = ("customer_id", "request_at", "logged_at", "score", "model_version", "status")
READ_CHUNK = 500  # parts per read_parquet call while syncing


class LogIndex:
    """The history columns of one prediction-log folder, by part file (thread-safe)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._parts: dict[str, tuple[int, int, int]] = {}  # part path -> (inode, mtime_ns, size) as indexed
        self._unreadable: dict[str, tuple[str, tuple[int, int, int]]] = {}  # part -> (DuckDB's error, its stat then)
        self._lock = threading.Lock()
        self._con: Any = None

    def _connect(self) -> Any:
        import duckdb

        con = duckdb.connect()
        con.execute("create table log (part varchar, customer_id varchar, request_at timestamptz, "
                    "logged_at timestamptz, score double, model_version varchar, status varchar)")
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
            self._con.execute("delete from log where part in (select unnest(?))", [stale])
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
        self._con.execute(
            "insert into log select filename, customer_id, request_at, logged_at, score, model_version, status "
            "from read_parquet(?, union_by_name=true, hive_partitioning=false, filename=true) "
            "where role = 'primary'", [parts])

    def history(self, customer_id: str, limit: int) -> tuple[pd.DataFrame, list[str]]:
        """The customer's newest `limit` online scores (as the log scan returned them) and the
        parts that could not be read."""
        with self._lock:
            if self._con is None:
                self._con = self._connect()
            problems = self.sync()
            frame = self._con.execute(
                "select request_at as at, score, model_version, status, 'online' as source from log "
                "where customer_id = ? order by logged_at desc limit ?", [customer_id, limit]).df()
        return frame, problems


_INDEXES: dict[Path, LogIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_of(folder: Path) -> LogIndex:
    """The process's index of a log folder (one per folder)."""
    with _INDEXES_LOCK:
        return _INDEXES.setdefault(folder.resolve(), LogIndex(folder.resolve()))
