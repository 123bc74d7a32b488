"""Section 5 and the HTTP half of section 3: spawning `python -m serving` and `feast serve`,
cold start (spawn -> first 200 on the readiness URL), and an import-time profile of serving."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.measure import PROJECT_ROOT, stats
from bench.online import wait_http
from bench.platform_data import platform_env


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM (serving flushes its log; gunicorn stops its workers), SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Server:
    """A server child process: spawn, wait until its readiness URL answers 200, stop."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, ready_path: str, log: Path,
                 key: str | None = None):
        self.name, self.cmd, self.env, self.port, self.ready_path, self.log = name, cmd, env, port, ready_path, log
        self.key = key
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.ready_seconds: float | None = None

    def start(self) -> Server:
        with open(self.log, "a") as out:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(self.cmd, cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self) -> float:
        wait_http(self.base + self.ready_path, self.proc)
        self.ready_seconds = time.perf_counter() - self.started
        return self.ready_seconds

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


def serving(data_dir: Path, log: Path, workers: int = 1) -> Server:
    """`python -m serving` on a free port (ready = /readyz 200: model, registry, online store; with
    several workers, the first worker that is ready answers)."""
    port, key = _free_port(), secrets.token_hex(16)
    env = {**platform_env(data_dir), "PARITY_API_KEYS": key}
    name = "serving" if workers == 1 else f"serving_{workers}_workers"
    return Server(name, [sys.executable, "-m", "serving", "--port", str(port), "--log-level", "warning",
                         "--workers", str(workers)], env, port, "/readyz", log, key=key)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def server_pids(server: Server) -> list[int]:
    """The server's process and its worker processes."""
    return [] if server.proc is None else [server.proc.pid, *_children(server.proc.pid)]


def peak_rss(server: Server) -> dict[str, float]:
    """Peak RSS (VmHWM, MB) of a running server process and of each of its worker processes."""
    if server.proc is None:
        return {}
    pids = {"main": server.proc.pid, **{f"worker_{i}": c for i, c in enumerate(_children(server.proc.pid))}}
    return {name: kb / 1024 for name, pid in pids.items() if (kb := _status_kb(pid, "VmHWM")) is not None}


def feast_serve(data_dir: Path, log: Path, repo: Path | None = None) -> Server:
    """`feast -c <repo> serve` with 1 worker, no access log, no worker recycling (ready = /health 200)."""
    port = _free_port()
    feast = Path(sys.executable).parent / "feast"
    cmd = [str(feast), "-c", str(repo or PROJECT_ROOT / "feature_repo"), "serve", "-p", str(port),
           "--workers", "1", "--max-requests", "1000000", "--no-access-log"]
    return Server("feast_serve", cmd, platform_env(data_dir), port, "/health", log)


@contextmanager
def running(*servers: Server, together: bool = False) -> Iterator[tuple[Server, ...]]:
    """Start the servers one after another (each spawn -> ready alone) or all at once; stop all."""
    try:
        if together:
            for server in servers:
                server.start()
            for server in servers:
                server.wait_ready()
        else:
            for server in servers:
                server.start().wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def cold_starts(data_dir: Path, log: Path, reps: int, first: dict[str, float] | None = None) -> dict[str, Any]:
    """Spawn -> ready, alternating the two servers, one at a time; `first` adds samples already taken."""
    samples: dict[str, list[float]] = {"serving": [], "feast_serve": []}
    for name, value in (first or {}).items():
        samples[name].append(value)
    while len(samples["serving"]) < reps or len(samples["feast_serve"]) < reps:
        for name, make in (("serving", serving), ("feast_serve", feast_serve)):
            if len(samples[name]) < reps:
                with running(make(data_dir, log)) as (server,):
                    samples[name].append(server.ready_seconds)
    return {"seconds": {name: stats(values) for name, values in samples.items()}, "samples": samples}


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_profile(data_dir: Path, top: int = 12) -> dict[str, Any]:
    """`python -X importtime` of everything the serving process imports before it is ready, in
    its order: the app and uvicorn, the model runtime (numpy trees: `parity.models.loaded`, no
    xgboost), the Feast-free online reader. Per root package: the sum of its modules' own import
    time (whoever imported them first), plus whether Feast / scikit-learn / xgboost / scipy got
    imported at all."""
    code = ("import gc; gc.disable(); import time, sys; t = time.perf_counter(); "
            "import uvicorn, serving.app; a = time.perf_counter(); "
            "import serving.models, parity.models.loaded; b = time.perf_counter(); "
            "import parity.features.online, parity.features.online_manifest, parity.models.segments; c = time.perf_counter(); "
            "print('PHASES', a - t, b - a, c - b); "
            "print('LOADED', ','.join(m for m in ('feast', 'sklearn', 'xgboost', 'scipy') if m in sys.modules) or '-')")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=PROJECT_ROOT,
                          env=platform_env(data_dir), capture_output=True, text=True)
    by_package: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            package = match.group(4).split(".")[0]
            by_package[package] = by_package.get(package, 0.0) + int(match.group(1)) / 1e6
    phases = next((line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("PHASES")), None)
    loaded = next((line.split()[1] for line in proc.stdout.splitlines() if line.startswith("LOADED")), "?")
    ranked = sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
    return {
        "note": "-X importtime inflates absolute times; compare packages with each other",
        "phases_seconds": None if phases is None else {
            "serving.app + uvicorn (pydantic, fastapi, pandas, numpy...)": float(phases[0]),
            "model runtime (numpy trees, TreeSHAP tables; no xgboost)": float(phases[1]),
            "parity.features.online + manifest reader (no feast)": float(phases[2]),
        },
        "feast_sklearn_xgboost_or_scipy_imported": loaded,
        "self_seconds_by_package": dict(ranked),
    }
