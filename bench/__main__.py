"""`python -m bench`: benchmark the platform's hot paths against raw DuckDB/SQLite and plain Feast.

Generates its own data in a scratch folder (default bench/work/<size>, gitignored), measures

1. training-set retrieval (synthetic mart of controllable size, its own small Feast repo)
2. materialization into the SQLite online store (same synthetic repo)
3. online reads in-process; /v1/predict over loopback HTTP vs `feast serve` at 1..500 customers
   with the /healthz floor (a latency curve, plotted), and throughput at several concurrencies
   of one vs several serving workers
4. `python -m parity build` (dbt) wall time and peak RSS on generated raw drops
5. cold start of `python -m serving` vs `feast serve`
6. the consistency check (`make consistency`): logged predictions re-checked per second
7. pushed events: accept -> online lag of POST /v1/events at a bounded rate (bench/events.py)
8. the console's customer page in headless Chromium with ~100k customers online (bench/console.py)
9. incremental build of one appended day vs a full build, tables compared (bench/incremental.py)

and writes <out>/results.json and <out>/results.md. Correctness checks (the methods give the same
rows and values) are part of the results; timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import report, synth
from bench.config import SIZES, Size
from bench.measure import PROJECT_ROOT, product_state, run_worker

SECTIONS = ("dbt", "retrieval", "materialization", "online", "http", "cold_start", "consistency", "events", "console",
            "incremental")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_platform(size: Size, work: Path, results: dict[str, Any], sections: set[str]) -> Path | None:
    """Section 4 (dbt points) and the platform data folder for sections 3 and 5."""
    from bench import platform_data

    points = []
    serving_dir = None
    for i, transactions in enumerate(sorted(size.dbt_transactions)):
        data_dir = work / f"platform_{transactions}"
        shutil.rmtree(data_dir, ignore_errors=True)
        log(f"datagen ~{transactions:,} raw transactions -> {data_dir}")
        generated = platform_data.generate(data_dir, transactions)
        log(f"python -m parity build ({generated['raw_transactions']:,} raw transactions)")
        build = platform_data.measure_build(data_dir, timeout=size.dbt_timeout)
        points.append({"target_transactions": transactions, **generated, **build})
        results["dbt"] = points  # kept even if a later point fails
        log(f"  dbt: {build['wall_seconds']:.1f}s wall, peak RSS {build['peak_rss_mb']:.0f} MB"
            + ("" if build["completed"] else f" — {build['stopped']}"))
        if i == 0 and build["completed"]:
            serving_dir = data_dir  # the smallest build serves sections 3 and 5
        elif not os.environ.get("BENCH_KEEP_LARGE"):
            shutil.rmtree(data_dir, ignore_errors=True)  # the 10M folder is many GB
    results["dbt"] = points
    if serving_dir is not None and sections & {"online", "http", "cold_start", "events"}:
        log("apply + materialize + fast training run on the smallest build")
        results["platform_setup"] = run_worker("platform_setup", {
            "data_dir": str(serving_dir), "train_overrides": list(size.train_overrides)})
    return serving_dir


def run_synthetic(size: Size, work: Path, results: dict[str, Any], sections: set[str]) -> None:
    """Sections 1 and 2 on synthetic marts, one repo per entity count."""
    retrieval_entities = {c.entities for c in size.retrieval_cases} if "retrieval" in sections else set()
    materialize_entities = set(size.materialize_entities) if "materialization" in sections else set()
    entity_counts = sorted(retrieval_entities | materialize_entities | (
        {min(c.entities for c in size.retrieval_cases)} if "consistency" in sections else set()))
    results["retrieval"], results["materialization"] = {}, {}
    checked = "consistency" not in sections or not size.consistency_rows  # run once, on the first mart
    for entities in entity_counts:
        root = work / f"synthetic_{entities}"
        shutil.rmtree(root, ignore_errors=True)
        parquet = root / "marts" / "customer_features_weekly.parquet"
        rows = synth.write_features(parquet, entities, size.weeks)
        cases = []
        for case in size.retrieval_cases:
            if case.entities != entities or "retrieval" not in sections:
                continue
            path = root / f"entities_{case.rows}.parquet"
            synth.entity_frame(case.rows, entities, size.weeks).to_parquet(path)
            cases.append({"name": case.name, "entity_path": str(path), "reps": size.retrieval_reps})
        materialize = entities in size.materialize_entities and "materialization" in sections
        log(f"synthetic mart {entities:,} entities x {size.weeks} weeks = {rows:,} rows: "
            f"{len(cases)} retrieval case(s){', materialization' if materialize else ''}")
        args = {"root": str(root / "repo"), "parquet": str(parquet), "retrieval_cases": cases,
                "materialize_reps": size.materialize_reps if materialize else 0}
        if not checked:
            args["consistency"] = {"rows": size.consistency_rows, "entities": entities, "weeks": size.weeks,
                                   "chunk_rows": 50_000, "reps": 3}
            checked = True
        out = run_worker("synthetic", args)
        if out.get("consistency"):
            results["consistency"] = {**out["consistency"], "feature_rows": rows}
            log(f"  consistency check: {out['consistency']['checked_rows']:,} logged predictions, "
                f"{out['consistency']['rows_per_second']:,.0f} rows/s, correct={out['consistency']['correct']}")
        for case in cases:
            block = out["retrieval"][case["name"]]
            block["feature_rows"] = rows
            if size.isolated_memory:
                block["isolated_memory"] = {
                    m: run_worker("retrieval_memory", {**args, **case, "method": m})
                    for m in ("platform", "raw", "feast")}
            results["retrieval"][case["name"]] = block
            log(f"  retrieval {case['name']}: " + ", ".join(
                f"{m} {block['times'][m]['median']:.3f}s" for m in ("platform", "raw", "feast"))
                + f", correct={block['correct']}")
        if out["materialization"]:
            block = out["materialization"]
            block["feature_rows"] = rows
            if size.isolated_memory:
                block["isolated_memory"] = {
                    m: run_worker("materialize_memory", {**args, "method": m}) for m in ("platform", "raw", "feast")}
            name = f"{entities // 1000}k_entities" if entities >= 1000 else f"{entities}_entities"
            results["materialization"][name] = block
            log(f"  materialize {name}: " + ", ".join(
                f"{m} {block['times'][m]['median']:.3f}s" for m in ("platform", "raw", "feast"))
                + f", correct={block['correct']}")


def _known_ids(data_dir: Path, count: int) -> list[str]:
    """Customers present in the newest snapshot (so they are in the online store)."""
    import duckdb

    from parity.config import load_settings

    path = load_settings(data_dir).marts_dir / "customer_features_weekly.parquet"
    rows = duckdb.connect().execute(
        f"select customer_id from read_parquet('{path}') where snapshot_at = "
        f"(select max(snapshot_at) from read_parquet('{path}')) order by hash(customer_id) limit {count}").fetchall()
    return [r[0] for r in rows]


def run_serving(size: Size, work: Path, data_dir: Path, results: dict[str, Any], sections: set[str]) -> None:
    """Sections 3 (in-process and HTTP) and 5."""
    from bench import online, servers

    request_at = datetime.fromisoformat(results["platform_setup"]["materialized_until"])
    ids = _known_ids(data_dir, max(size.http_reps))
    if "online" in sections:
        log("online reads in-process (1 and 100 entities)")
        results["online"] = run_worker("online_inprocess", {
            "data_dir": str(data_dir), "ids": ids[:100], "request_at": request_at.isoformat(),
            "reps": {str(k): v for k, v in size.online_reps.items()}})
    first: dict[str, float] = {}
    server_log = work / "servers.log"
    if "http" in sections:
        log("HTTP: python -m serving and feast serve (cold start sample 1 of each)")
        api, fs = servers.serving(data_dir, server_log), servers.feast_serve(data_dir, server_log)
        with servers.running(api, fs, together=size.overlap_sections):
            # spawned one at a time (or together in smoke mode, see meta.timings_comparable)
            first = {"serving": api.ready_seconds, "feast_serve": fs.ready_seconds}
            log(f"latency curve at {sorted(size.http_reps)} customers (+ /healthz floor), {size.http_repeats} block(s)")
            results["http"] = online.http_bench(api.base, api.key, fs.base, ids, request_at, size.http_reps,
                                                size.http_repeats)
            fs.stop()  # idle, but its memory and timers are not part of the throughput runs
            log(f"throughput: 1 vs {size.serving_workers} serving workers at concurrency {size.throughput_concurrency}")
            with servers.running(servers.serving(data_dir, server_log, workers=size.serving_workers)) as (multi,):
                results["throughput"] = {
                    "by_concurrency": online.throughput(api, multi, ids[0], request_at, size.throughput_concurrency,
                                                        size.throughput_seconds, size.throughput_rounds),
                    "workers": size.serving_workers, "multi_ready_seconds": multi.ready_seconds,
                    "peak_rss_mb": {api.name: servers.peak_rss(api), multi.name: servers.peak_rss(multi)}}
        results["http"]["feast_serve_request"] = (
            "features: the 16 batch features of churn_v1 + last_purchase_at (what the platform reads); "
            "feast serve cannot compute churn_v1's python-mode on-demand feature from JSON: request_at "
            "reaches the UDF as a str ('str' object has no attribute 'tzinfo')")
    if "events" in sections and size.event_seconds:
        from bench import events

        log(f"events: POST /v1/events at {size.event_rate:g}/s for {size.event_seconds:g} s, accept -> online lag")
        api = servers.serving(data_dir, server_log)
        with servers.running(api):
            results["events"] = events.run(data_dir, api, _known_ids(data_dir, 2000), size.event_rate,
                                           size.event_seconds)
        lag = results["events"]["lag"] or {}
        log(f"  events: {results['events']['online_events']} online, lag median {lag.get('median', float('nan')):.3f} s, "
            f"p99 {lag.get('p99', float('nan')):.3f} s, correct={results['events']['correct']}")
    if "cold_start" in sections:
        log(f"cold start x{size.cold_start_reps} (serving vs feast serve, alternating)")
        results["cold_start"] = servers.cold_starts(data_dir, server_log, size.cold_start_reps, first)
        if size.name != "tiny":
            results["cold_start"]["import_profile"] = servers.import_profile(data_dir)


def run_console(size: Size, work: Path, results: dict[str, Any], data_dir: Path | None) -> None:
    """Section 8: the customer page at ~`size.console_customers` customers online (own data)."""
    from bench import console

    results["console"] = console.run(work, size.console_customers, size.console_lookups, size.console_batches,
                                     list(size.train_overrides), log, data_dir, size.console_log_parts)
    block = results["console"]
    log(f"  console: {block['online_customers']:,} online, customer page rendered p50 "
        f"{block['rendered_ms'].get('p50', float('nan')):.0f} ms, p95 {block['rendered_ms'].get('p95', float('nan')):.0f} ms"
        f", correct={block['correct']}")
    if block.get("padded_log"):
        padded = block["padded_log"]["rendered_ms"]
        log(f"  console, log padded to {block['padded_log']['log_parts']} parts: p50 {padded['p50']:.0f} ms, "
            f"p95 {padded['p95']:.0f} ms")


def collect_checks(results: dict[str, Any]) -> bool:
    """Every correctness flag in the results."""
    flags = [b["correct"] for b in results.get("retrieval", {}).values()]
    # a build that fails raises; one stopped at dbt_timeout is a timing, reported, not an error
    flags += [bool(p.get("completed") or p.get("stopped")) for p in results.get("dbt", [])]
    flags += [b["correct"] for b in results.get("materialization", {}).values()]
    if "online" in results:
        flags.append(results["online"]["correct"])
    if "http" in results:
        flags.append(results["http"]["correct"])
    if "consistency" in results:
        flags.append(results["consistency"]["correct"])
    for block in results.get("throughput", {}).get("by_concurrency", {}).values():
        flags.append(all(n == 0 for n in block["errors"].values()))
    if "events" in results:
        flags.append(results["events"]["correct"])
    if "console" in results:
        flags.append(results["console"]["correct"])
    if "incremental" in results:
        flags.append(results["incremental"]["identical"])
    return bool(flags) and all(flags)


NOTES = [
    "The platform's training-set path is `parity.features.retrieval.training_frame`: Feast's "
    "get_historical_features on the project's offline store (`parity.features.stores.AsofDuckDBOfflineStore`: "
    "one DuckDB ASOF join per view) for the batch features and the on-demand inputs, then the "
    "registered on-demand function on its Arrow input columns, `conform` and typed pandas. `plain "
    "Feast` is Feast's own `duckdb` store and `sqlite` online store over the same files; its python "
    "on-demand view runs over `to_pydict()` of the whole joined table.",
    "raw retrieval: one DuckDB `ASOF LEFT JOIN` with the TTL applied as a CASE and the on-demand "
    "feature in SQL; `SET asof_loop_join_threshold = 0` (DuckDB 1.5 otherwise plans a nested-loop join "
    "for a registered Arrow table it cannot size: ~7x slower at 10k rows, minutes at 100k).",
    "raw materialization: latest row per entity with `arg_max(<whole row>, snapshot_at)` (plain "
    "`arg_max(col, ts)` skips NULLs and would return an older value), Feast's exact bytes (entity "
    "key v3, ValueProto, NaT sentinel for a missing timestamp, value_text, epoch event_ts), one "
    "executemany of Feast's own upsert.",
    "Peak RSS growth: the call's peak minus the RSS before it, in a fresh process per method "
    "(default/large) or inline after a VmHWM reset (tiny).",
    "`feast serve` is started with 1 worker, no access log and no worker recycling; it serves the "
    "stored features only (see http.feast_serve_request).",
    "The 10M dbt build is stopped after `dbt_timeout` seconds (and when the disk gets low: DuckDB "
    "spills to <warehouse>.tmp); its peak RSS is sampled from the process group until then.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="default",
                        help="tiny (<~1 min, smoke test), default (~15 min) or large (full matrix, dbt 1M/10M)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results",
                        help="folder for results.json and results.md (default: bench/results)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: bench/work/<size>; wiped first)")
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all; for --size tiny "
                        "all but incremental, which builds three times)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder afterwards")
    parser.add_argument("--console-data", type=Path, metavar="DIR",
                        help="section console: its data folder (prepared there when it holds no "
                             "bench-console.json, else reused as it is; default <work>/console_<customers>)")
    parser.add_argument("--dbt-transactions", type=_counts, metavar="N[,N]",
                        help="dbt build points (raw transactions) instead of the size's, e.g. 10000000 for "
                             "the 10M point alone (`--size large --sections dbt --dbt-transactions 10000000`)")
    parser.add_argument("--materialize-entities", type=_counts, metavar="N[,N]",
                        help="materialization entity counts instead of the size's, e.g. 10000,100000")
    parser.add_argument("--dbt-timeout", type=float, metavar="SECONDS",
                        help="stop a dbt build after this many seconds (default: the size's)")
    parser.add_argument("--merge-from", type=Path, metavar="RESULTS_JSON",
                        help="measure nothing: add the dbt points and retrieval/materialization cases of "
                             "another run's results.json to <out>/results.json and rewrite <out>/results.md "
                             "(e.g. a partial `--size large` run next to the default results)")
    parser.add_argument("--console-log-parts", type=int, metavar="N",
                        help="section console: measure again with the prediction log padded to N Parquet parts "
                             "(copies of its own parts: an older log's file count)")
    parser.add_argument("--console-customers", type=int, metavar="N",
                        help="section console: customers to generate (default: the size's, 100k for default/large)")
    args = parser.parse_args(argv)
    if args.merge_from:
        return merge_results(args.merge_from, args.out)
    size = _overridden(SIZES[args.size], args)
    if args.console_customers is not None:
        from dataclasses import replace

        size = replace(size, console_customers=args.console_customers)
    if args.console_log_parts is not None:
        from dataclasses import replace

        size = replace(size, console_log_parts=args.console_log_parts)
    chosen = args.sections or ",".join(s for s in SECTIONS if size.name != "tiny" or s != "incremental")
    sections = {s.strip() for s in chosen.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    if sections & {"online", "http", "cold_start", "events"}:
        sections.add("dbt")  # serving needs the platform data built
    work = (args.work or PROJECT_ROOT / "bench" / "work" / size.name).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.setdefault("FEAST_USAGE", "False")

    started = time.perf_counter()
    results: dict[str, Any] = {"meta": {
        "size": size.name, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "sections": sorted(sections), "work_dir": str(work), "config": _config_dict(size),
        "timings_comparable": not size.overlap_sections, "product_files": product_state(),
        "load": _load_average()}}
    try:
        serving_dir = None
        if size.overlap_sections and "dbt" in sections:
            # smoke-test mode: both halves mostly wait on their own subprocesses
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                platform_future = pool.submit(run_platform, size, work, results, sections)
                if sections & {"retrieval", "materialization", "consistency"}:
                    run_synthetic(size, work, results, sections)
                serving_dir = platform_future.result()
        else:
            serving_dir = run_platform(size, work, results, sections) if "dbt" in sections else None
            if sections & {"retrieval", "materialization", "consistency"}:
                run_synthetic(size, work, results, sections)
        if serving_dir is not None and sections & {"online", "http", "cold_start", "events"}:
            run_serving(size, work, serving_dir, results, sections)
        if "console" in sections and size.console_customers:
            run_console(size, work, results, args.console_data)
        if "incremental" in sections:  # 9. incremental vs full build (bench/incremental.py)
            from bench import incremental

            log("incremental build vs full build")
            results["incremental"] = incremental.run(incremental.transactions_for(size.name), work)
            print(incremental.markdown(results["incremental"]))
    finally:
        results["meta"]["duration_seconds"] = time.perf_counter() - started
        results["meta"]["load_at_end"] = _load_average()
        results["correct"] = collect_checks(results)
        results["summary"] = report.summary_rows(results)
        results["notes"] = NOTES
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        try:
            from bench.plot import write_plot

            plotted = write_plot(results, args.out / "latency_curve.png")
        except Exception as err:  # a missing plot never loses the measured results
            plotted, results["plot_error"] = None, f"{type(err).__name__}: {err}"
        results["plot"] = plotted.name if plotted else None
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (args.out / "results.md").write_text(report.markdown(results))
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    print(report.console(results))
    print(f"results: {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0 if results["correct"] else 1


def merge_results(source: Path, out: Path) -> int:
    """Add another run's dbt points and retrieval/materialization cases to <out>/results.json
    (cases this run already has are kept) and rewrite <out>/results.md."""
    target = out / "results.json"
    results = json.loads(target.read_text())
    extra = json.loads(source.read_text())
    label = f"{extra['meta']['size']} run {extra['meta']['started_at']}"
    points = {p["raw_transactions"]: p for p in results.get("dbt", [])}
    for point in extra.get("dbt", []):
        points.setdefault(point["raw_transactions"], {**point, "merged_from": label})
    results["dbt"] = [points[k] for k in sorted(points)]
    merged = [f"dbt {k:,}" for k in points if points[k].get("merged_from") == label]
    for section in ("retrieval", "materialization"):
        for name, block in extra.get(section, {}).items():
            if name not in results.setdefault(section, {}):
                results[section][name] = {**block, "merged_from": label}
                merged.append(f"{section} {name}")
    results.setdefault("meta", {}).setdefault("merged", []).append(
        {"source": str(source), "size": extra["meta"]["size"], "started_at": extra["meta"]["started_at"],
         "added": merged})
    results["correct"] = collect_checks(results)
    results["summary"] = report.summary_rows(results)
    target.write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "results.md").write_text(report.markdown(results))
    print(report.console(results))
    return 0


def _counts(text: str) -> tuple[int, ...]:
    """'10000,100000' -> (10000, 100000); argparse reports a bad value."""
    try:
        counts = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not counts or min(counts) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive counts, got {text!r}")
    return counts


def _overridden(size: Size, args: argparse.Namespace) -> Size:
    """The size with the command line's dbt points, materialization entities and dbt timeout."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if args.dbt_transactions:
        changes["dbt_transactions"] = args.dbt_transactions
    if args.materialize_entities:
        changes["materialize_entities"] = args.materialize_entities
    if args.dbt_timeout:
        changes["dbt_timeout"] = args.dbt_timeout
    return replace(size, **changes) if changes else size


def _load_average() -> str:
    """The machine's load average at the start (the machine is shared: figures are noisy)."""
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"
    except OSError:
        return "load average unknown"


def _config_dict(size: Size) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(size).items() if k != "train_overrides"}


if __name__ == "__main__":
    sys.exit(main())
