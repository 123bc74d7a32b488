"""Multi-worker serving: N worker processes on one address (`python -m serving --workers N`).

The supervisor imports everything once, binds the address, then forks the workers before any
thread or model exists; each worker builds its own app (model, online reader, prediction log,
metrics) and runs uvicorn on its own listening socket (SO_REUSEPORT: the kernel spreads new
connections over the workers by address hash; without SO_REUSEPORT, one shared listening socket).
Everything per worker stays as in one process:

- models: each worker polls the registry pointer (`reload_check_seconds`) and reloads on its own
  (promotion reaches every worker with no restart and no failed request); SIGHUP to the
  supervisor is forwarded to every worker (reload now);
- prediction log: each worker appends to its own write-ahead segments and Parquet parts
  (`<pid>-<id>` in their names) in the one log folder; a worker that dies leaves its segments
  for the next start's recovery (or a restarted worker's);
- /metrics: each worker keeps its own registry and snapshots it into `<metrics dir>/worker-<i>.prom`
  every second and on every scrape; whichever worker answers /metrics merges all live snapshots,
  each sample labelled `worker="<i>"` (sum over `worker` for totals). Another worker's samples
  are up to `SNAPSHOT_SECONDS` old.

SIGTERM/SIGINT are forwarded to every worker (each drains: `DrainingServer`); a worker that exits
while the supervisor is not stopping is started again (at most once per second).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("serving.workers")

WORKER_ENV = "PARITY_SERVING_WORKER"  # "<index>" in a worker of a multi-worker server
METRICS_ENV = "PARITY_SERVING_METRICS_DIR"  # where workers snapshot their metrics
SNAPSHOT_SECONDS = 1.0


BACKLOG = 2048


def bind(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """The server's socket, inherited by the workers. Where the kernel has SO_REUSEPORT it is
    bound but never listens (it holds the address; each worker listens on its own socket,
    `own_listener`), else it is the one listening socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    if not _reuse_port(sock):
        sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _reuse_port(sock: socket.socket) -> bool:
    return hasattr(socket, "SO_REUSEPORT") and bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))


def own_listener(sock: socket.socket, backlog: int = BACKLOG) -> None:
    """In a worker: turn the inherited socket (same object, same fd) into this worker's own
    listening socket on the same address (SO_REUSEPORT). The kernel then spreads new connections
    over the workers' sockets by address hash. On one shared socket, whichever worker woke first
    accepted every pending connection (uvloop accepts until none is left): on an idle machine one
    worker often held all 8 of the benchmark's keep-alive connections, and 2 workers did 1.06x one."""
    if not _reuse_port(sock):
        return
    own = socket.socket(sock.family, sock.type)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own.bind(sock.getsockname())
    own.listen(backlog)
    os.dup2(own.fileno(), sock.fileno())  # the fd uvicorn serves on is now this worker's own
    own.close()


def supervise(workers: int, sock: socket.socket, run_worker: Callable[[int], None], metrics_dir: Path) -> int:
    """Fork `workers` processes running `run_worker(index)`; forward SIGTERM/SIGINT/SIGHUP; restart
    a worker that exits unexpectedly; return when every worker has exited after a stop signal."""
    if threading.active_count() > 1:  # forking a threaded process can deadlock the child
        raise RuntimeError(f"cannot fork workers: {threading.active_count()} threads already run")
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("worker-*.prom"):
        stale.unlink(missing_ok=True)
    os.environ[METRICS_ENV] = str(metrics_dir)
    children: dict[int, int] = {}  # pid -> worker index
    stopping = {"signal": None}

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                os.environ[WORKER_ENV] = str(index)
                own_listener(sock)
                run_worker(index)
                code = 0
            except BaseException:  # noqa: BLE001 (the worker's traceback, then its exit)
                log.exception("serving worker %d failed", index)
            finally:
                os._exit(code)
        children[pid] = index
        log.info("serving worker %d started (pid %d)", index, pid)

    def forward(sig: int, _frame: Any) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping["signal"] = sig
        for pid in list(children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for index in range(workers):
        spawn(index)
    last_restart = 0.0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = children.pop(pid, None)
        if index is None:
            continue
        (metrics_dir / f"worker-{index}.prom").unlink(missing_ok=True)
        if stopping["signal"] is None:
            log.error("serving worker %d (pid %d) exited with %s: starting it again", index, pid,
                      os.waitstatus_to_exitcode(status))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - last_restart)))
            last_restart = time.monotonic()
            spawn(index)
    sock.close()
    return 0


# --------------------------------------------------------------------------------------------
# metrics across workers


def worker_index() -> str | None:
    """This process's worker index in a multi-worker server (None: a single-process server)."""
    return os.environ.get(WORKER_ENV)


def snapshot_path() -> Path | None:
    folder, index = os.environ.get(METRICS_ENV), worker_index()
    return None if folder is None or index is None else Path(folder) / f"worker-{index}.prom"


def write_snapshot(registry: Any) -> None:
    """Write this worker's metrics (text exposition) atomically to its snapshot file."""
    from prometheus_client import generate_latest

    path = snapshot_path()
    if path is None:
        return
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(generate_latest(registry))
    os.replace(tmp, path)


def start_snapshots(registry: Any, stop: threading.Event) -> threading.Thread | None:
    """Snapshot this worker's metrics every SNAPSHOT_SECONDS until `stop` (multi-worker only)."""
    if snapshot_path() is None:
        return None

    def loop() -> None:
        while not stop.wait(SNAPSHOT_SECONDS):
            try:
                write_snapshot(registry)
            except OSError as err:  # a full disk must not stop serving
                log.warning("metrics snapshot failed: %s", err)

    write_snapshot(registry)
    thread = threading.Thread(target=loop, name="metrics-snapshot", daemon=True)
    thread.start()
    return thread


def _families(text: str, worker: str) -> Iterator[Any]:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sample.labels["worker"] = worker
        yield family


def merged_exposition(registry: Any) -> bytes:
    """/metrics of a multi-worker server: every live worker's latest snapshot (this one's fresh),
    each sample labelled with its worker; one HELP/TYPE per metric family."""
    from prometheus_client import CollectorRegistry, generate_latest

    path = snapshot_path()
    if path is None:
        return generate_latest(registry)
    write_snapshot(registry)
    merged: dict[str, Any] = {}
    for snapshot in sorted(path.parent.glob("worker-*.prom")):
        worker = snapshot.stem.removeprefix("worker-")
        try:
            text = snapshot.read_text()
        except FileNotFoundError:  # the worker just exited
            continue
        for family in _families(text, worker):
            if family.name in merged:
                merged[family.name].samples.extend(family.samples)
            else:
                merged[family.name] = family

    class _Merged:
        def collect(self) -> Iterator[Any]:
            return iter(merged.values())

    out = CollectorRegistry(auto_describe=False)
    out.register(_Merged())
    return generate_latest(out)
