"""The real platform on generated data: datagen -> `python -m parity build` (section 4, measured)
-> apply -> materialize -> a fast training run, so serving has a model and an online store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.config import TRANSACTIONS_PER_SCALE
from bench.measure import PROJECT_ROOT

END_DATE = date(2026, 6, 1)
TRANSACTION_FILES = ("transactions.csv", "transactions.jsonl", "orders.csv")


def generate(data_dir: Path, transactions: int, seed: int = 42) -> dict[str, Any]:
    """Raw drops sized for about `transactions` raw transaction rows; the actual count."""
    from parity.ingest.datagen import generate as datagen

    scale = transactions / TRANSACTIONS_PER_SCALE
    started = time.perf_counter()
    files = datagen(data_dir / "raw", seed=seed, scale=scale, end_date=END_DATE)
    seconds = time.perf_counter() - started
    raw = sum(n for per_client in files.values() for name, n in per_client.items() if name in TRANSACTION_FILES)
    customers = sum(n for per_client in files.values() for name, n in per_client.items() if name not in TRANSACTION_FILES)
    return {"scale": scale, "raw_transactions": raw, "raw_customers": customers, "datagen_seconds": seconds}


def platform_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "PARITY_DATA_DIR": str(data_dir), "FEAST_USAGE": "False",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONWARNINGS": "ignore"}


def measure_build(data_dir: Path, timeout: float | None = None, min_free_gb: float = 20.0,
                  profiles_dir: Path | None = None) -> dict[str, Any]:
    """`python -m parity build` (dbt parse, preflight, dbt build with all tests, reconciliation):
    wall time, peak RSS of the process tree (wait4), dbt's own elapsed time and slowest nodes.

    The build runs in its own process group; it is stopped (and reported as not completed) after
    `timeout` seconds or when the disk holding `data_dir` falls below `min_free_gb` free (DuckDB
    spills to <warehouse>.tmp, which reached 50 GB on the 10M build). `profiles_dir` runs plain
    `dbt build` with another profiles.yml instead (e.g. a DuckDB memory_limit experiment)."""
    import signal
    import threading

    log = data_dir / "bench-build.log"
    env = platform_env(data_dir)
    if profiles_dir is None:
        cmd = [sys.executable, "-m", "parity", "build"]
    else:
        from parity.config import load_settings
        from parity.ingest.warehouse import dbt_executable

        settings = load_settings(data_dir)
        env = {**settings.env(), "PYTHONWARNINGS": "ignore"}
        cmd = [dbt_executable(), "build", "--project-dir", str(settings.dbt_project_dir),
               "--profiles-dir", str(profiles_dir)]
    stopped: dict[str, str] = {}
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        done = threading.Event()

        sampled = {"peak_kb": 0}

        def group_peak_kb() -> int:
            """Largest VmHWM among the live processes of the build's process group."""
            peak = 0
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    if os.getpgid(int(entry.name)) != proc.pid:
                        continue
                    for line in (entry / "status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
                except (OSError, ValueError):
                    continue
            return peak

        def watchdog() -> None:
            while not done.wait(2.0):
                sampled["peak_kb"] = max(sampled["peak_kb"], group_peak_kb())
                free_gb = shutil.disk_usage(data_dir).free / 2**30
                reason = None
                if timeout is not None and time.perf_counter() - started > timeout:
                    reason = f"stopped after {timeout:.0f} s (not finished)"
                elif free_gb < min_free_gb:
                    reason = f"stopped: disk free {free_gb:.1f} GB < {min_free_gb:.0f} GB (DuckDB spill)"
                if reason:
                    stopped["reason"] = reason
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                    return

        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    if stopped:
        import re

        started_nodes, finished = {}, set()
        for line in text.splitlines():
            match = re.search(r"(\d+) of \d+ (START|OK|PASS|ERROR|FAIL|WARN|SKIP)\b(.*)", line)
            if match and match.group(2) == "START":
                started_nodes[match.group(1)] = match.group(3).split("...")[0].replace("[RUN]", "").strip()
            elif match:
                finished.add(match.group(1))
        return {"completed": False, "stopped": stopped["reason"], "wall_seconds": wall,
                "unfinished_nodes": [name for i, name in started_nodes.items() if i not in finished],
                "peak_rss_mb": max(usage.ru_maxrss, sampled["peak_kb"]) / 1024,
                "peak_rss_note": "sampled every 2 s from the process group (VmHWM) until stopped"}
    if code != 0:
        tail = "\n".join(text.splitlines()[-30:])
        raise RuntimeError(f"`{' '.join(cmd[:4])}` failed (exit {code}):\n{tail}")
    from parity.config import load_settings

    published = load_settings(data_dir).published_dir
    # `parity build` keeps dbt build's run results in the build folder (run/), a plain dbt build in target/
    run_results = published / "run" / "run_results.json"
    if not run_results.exists():
        run_results = published / "target" / "run_results.json"
    results = json.loads(run_results.read_text())
    nodes = sorted(results["results"], key=lambda r: -r["execution_time"])
    by_kind: dict[str, float] = {}
    for node in results["results"]:
        kind = node["unique_id"].split(".")[0]
        by_kind[kind] = by_kind.get(kind, 0.0) + node["execution_time"]
    return {
        "completed": True,
        "wall_seconds": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "dbt_build_elapsed_seconds": results["elapsed_time"],
        "overhead_seconds": wall - results["elapsed_time"],
        "nodes": len(results["results"]),
        "node_seconds_by_kind": by_kind,
        "slowest_nodes": [{"node": n["unique_id"].split(".", 2)[-1], "kind": n["unique_id"].split(".")[0],
                           "seconds": n["execution_time"]} for n in nodes[:8]],
    }


def task_setup(args: dict[str, Any]) -> dict[str, Any]:
    """apply + materialize + a fast training run (promoted) on the platform data folder."""
    from parity.config import load_settings
    from parity.features.feature_store import apply, materialize
    from training.config import load_config, parse_assignments
    from training.pipeline import run

    settings = load_settings(args["data_dir"])
    os.environ["PARITY_DATA_DIR"] = str(settings.data_dir)
    timings = {}
    started = time.perf_counter()
    apply(settings)
    timings["apply_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    result = materialize(settings)
    timings["materialize_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    trained = run(settings, load_config(None, parse_assignments(list(args["train_overrides"]))))
    timings["train_seconds"] = time.perf_counter() - started
    return {**timings, "materialized_until": result["end"].isoformat(), "model_version": trained.version,
            "promoted": trained.promoted, "current": trained.current}
