"""Measuring: summary statistics, peak RSS, interleaved timing and fresh worker processes."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def stats(samples: list[float], scale: float = 1.0) -> dict[str, Any]:
    """median / p99 / max / min / mean of `samples` (x scale); p99 is the max when n < 100."""
    values = np.asarray(samples, dtype=float) * scale
    if values.size == 0:
        return {"n": 0}
    return {
        "n": int(values.size),
        "median": float(np.median(values)),
        "p99": float(np.percentile(values, 99)) if values.size >= 100 else float(values.max()),
        "max": float(values.max()),
        "min": float(values.min()),
        "mean": float(values.mean()),
    }


def _proc_status(field: str) -> int:
    """A VmXXX field of /proc/self/status in bytes (0 where /proc is unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes() -> int:
    """Current resident set size of this process."""
    return _proc_status("VmRSS")


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak RSS since start or since the last reset_peak_rss()."""
    return _proc_status("VmHWM")


def measured_call(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run fn once: wall seconds, RSS before, peak RSS during (after a VmHWM reset) and its growth."""
    gc.collect()
    reset = reset_peak_rss()
    before = rss_bytes()
    started = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - started
    peak = peak_rss_bytes()
    return out, {
        "seconds": seconds,
        "rss_before_mb": before / 2**20,
        "peak_rss_mb": peak / 2**20,
        "peak_growth_mb": (peak - before) / 2**20 if reset else float("nan"),
    }


def interleaved(methods: dict[str, Callable[[], Any]], reps: int, warmup: int = 1,
                on_first: Callable[[str, Any], None] | None = None,
                before: Callable[[str], None] | None = None, collect: bool = True) -> dict[str, list[float]]:
    """Time each method `reps` times, round-robin and rotating the order every round, so slow
    phases of a busy machine hit every method alike (ratios are computed from the same rounds).
    `on_first(name, output)` sees each method's first (warm-up) output, e.g. for correctness checks;
    `before(name)` runs untimed before every call (e.g. resetting a store); `collect` runs a full
    gc before every call (for calls of seconds; too slow between millisecond calls)."""
    names = list(methods)
    times: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(warmup + reps):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            if before is not None:
                before(name)
            if collect:
                gc.collect()
            started = time.perf_counter()
            out = methods[name]()
            elapsed = time.perf_counter() - started
            if round_ == 0 and on_first is not None:
                on_first(name, out)
            del out
            if round_ >= warmup:
                times[name].append(elapsed)
    return times


def run_worker(task: str, args: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    """Run `bench.worker <task>` in a fresh interpreter; its JSON result plus the child's peak RSS
    (ru_maxrss from wait4: the max over the child and every descendant it waited for)."""
    import threading

    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        spec, out, log = Path(tmp) / "args.json", Path(tmp) / "result.json", Path(tmp) / "log.txt"
        spec.write_text(json.dumps(args, default=str))
        env = {**os.environ, "FEAST_USAGE": "False", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
               "PYTHONWARNINGS": "ignore"}
        started = time.perf_counter()
        with open(log, "w") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "bench.worker", task, str(spec), str(out)],
                                    cwd=PROJECT_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
            watchdog = threading.Timer(timeout, proc.kill)
            watchdog.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                watchdog.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"bench worker '{task}' failed (exit {proc.returncode}):\n{tail}")
        result = json.loads(out.read_text())
        result["process"] = {"wall_seconds": wall, "max_rss_mb": usage.ru_maxrss / 1024}
        return result


PRODUCT_FILES = (
    "parity/features/retrieval.py", "parity/features/online.py", "parity/features/feature_store.py", "parity/models/prepare.py",
    "parity/models/registry.py", "serving/app.py", "serving/predict.py", "serving/log.py",
    "dbt_project/models/marts/customer_features_weekly.sql", "feature_repo/request_features.py",
)


def product_state() -> dict[str, str]:
    """Modification time and a short hash of each product file a benchmark exercises, so a result
    can be tied to the code it measured (the code changes while benchmarks run)."""
    import hashlib
    from datetime import datetime, timezone

    state = {}
    for name in PRODUCT_FILES:
        path = PROJECT_ROOT / name
        if path.exists():
            stamp = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
            state[name] = f"{stamp} sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
    return state
