"""Incremental build vs full build (`python -m bench --sections incremental`, or
`python -m bench.incremental --transactions N`).

On generated drops of about N raw transactions: a full build of day N (`python -m parity
build`), one more day's drop appended (parity.ingest.datagen_day: a day's share of the
transactions, a late row and a correction per client), then `python -m parity build
--incremental` and a full build of day N+1 in the same data folder, timed as wall time of the
whole command (pre-flight, dbt build with every test, publish). The two day-N+1 builds are
compared table by table with EXCEPT ALL both ways (parity.ingest.incremental.differences); the
slowest dbt nodes of both say where the time goes. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.measure import PROJECT_ROOT

# raw transactions of the incremental point per bench size (BENCH_INCREMENTAL_TRANSACTIONS overrides)
TRANSACTIONS = {"tiny": 20_000, "default": 1_000_000, "large": 10_000_000}


def _build(data_dir: Path, *args: str) -> dict[str, Any]:
    """One `python -m parity build` (wall seconds, the build it published, its slowest dbt nodes)."""
    from bench.platform_data import platform_env

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "parity", "build", *args], cwd=PROJECT_ROOT,
                          env=platform_env(data_dir), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"python -m parity build {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    folder = (data_dir / "published").resolve()
    run_results = json.loads((folder / "run" / "run_results.json").read_text())
    results = run_results["results"]
    slowest = sorted(results, key=lambda r: r.get("execution_time") or 0, reverse=True)[:6]
    info = json.loads((folder / "build.json").read_text())
    return {"seconds": seconds, "build": str(folder), "mode": info.get("mode"),
            # the 1-minute load average before and after (the machine is shared: say how busy)
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "refused": info.get("incremental_refused"),
            "dbt_node_seconds": sum(r.get("execution_time") or 0 for r in results),
            # where the wall time went: parse, check + copy, pre-flight, dbt build, guards, ...
            "phase_seconds": info.get("phase_seconds", {}),
            # of the dbt build phase, the nodes' run: the rest is dbt's start and its parse
            "dbt_run_seconds": round(run_results.get("elapsed_time") or 0, 2),
            "feature_customers": info.get("feature_customers"),  # what the incremental mart computed
            "data_test_seconds": round(sum(r.get("execution_time") or 0 for r in results
                                           if r["unique_id"].startswith("test.")), 2),
            "slowest": [[r["unique_id"].split(".", 2)[-1], round(r.get("execution_time") or 0, 2)] for r in slowest]}


def run(transactions: int, work: Path) -> dict[str, Any]:
    """The incremental point at about `transactions` raw transactions (see the module docstring)."""
    from bench.platform_data import END_DATE, generate
    from parity.ingest.datagen_day import append_day
    from parity.ingest.incremental import differences

    data_dir = work / f"incremental_{transactions}"
    generated = generate(data_dir, transactions)
    day_n = _build(data_dir)
    # a day's share of the drop: the generator spreads ~2 years of transactions over 3 daily clients
    per_client = max(5, generated["raw_transactions"] // (730 * 3))
    appended = append_day(data_dir / "raw", END_DATE + timedelta(days=1), records_per_client=per_client)
    incremental = _build(data_dir, "--incremental")
    full = _build(data_dir)
    diffs = differences(Path(incremental["build"]), Path(full["build"]))
    unequal = {name: list(d) for name, d in diffs.items() if d != (0, 0)}
    return {"raw_transactions": generated["raw_transactions"], "datagen_seconds": generated["datagen_seconds"],
            "appended_records": appended, "full_day_n": day_n, "incremental": incremental, "full": full,
            "ratio": incremental["seconds"] / full["seconds"], "tables_compared": len(diffs),
            "unequal_tables": unequal, "identical": incremental["mode"] == "incremental" and not unequal}


def transactions_for(size: str) -> int:
    return int(os.environ.get("BENCH_INCREMENTAL_TRANSACTIONS") or TRANSACTIONS[size])


def markdown(point: dict[str, Any]) -> str:
    """The point as a few lines of Markdown."""
    inc, full = point["incremental"], point["full"]
    return "\n".join([
        f"Incremental build at {point['raw_transactions']:,} raw transactions, one day appended "
        f"({sum(point['appended_records'].values()):,} records incl. a late row and a correction per client):",
        "", "| build | wall s | load before/after | dbt run s | dbt node s | data tests s | phases s | slowest nodes |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- | --- |",
        *(f"| {name} | {b['seconds']:.1f} | {'/'.join(str(x) for x in b.get('load_average', []))} | "
          f"{b.get('dbt_run_seconds', 0):.1f} | {b['dbt_node_seconds']:.1f} | {b.get('data_test_seconds', 0):.1f} | "
          + ", ".join(f"{k} {v}" for k, v in b.get("phase_seconds", {}).items()) + " | "
          + ", ".join(f"{n} {s}s" for n, s in b["slowest"][:4]) + " |"
          for name, b in (("full, day N", point["full_day_n"]), ("incremental, day N+1", inc), ("full, day N+1", full))),
        "", f"feature mart of the incremental build, customers: {inc.get('feature_customers')}",
        "", f"incremental / full: **{point['ratio']:.0%}** (target <= 10%); identical tables "
        f"(EXCEPT ALL both ways, {point['tables_compared']} tables): {point['identical']}"
        + (f"; differing: {point['unequal_tables']}" if point["unequal_tables"] else ""), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.incremental", description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=TRANSACTIONS["default"])
    parser.add_argument("--work", type=Path, default=PROJECT_ROOT / "bench" / "work" / "incremental")
    parser.add_argument("--out", type=Path, help="write incremental.json and incremental.md here")
    args = parser.parse_args(argv)
    import shutil

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    point = run(args.transactions, args.work)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "incremental.json").write_text(json.dumps(point, indent=1) + "\n")
        (args.out / "incremental.md").write_text(markdown(point))
    print(markdown(point))
    return 0 if point["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
