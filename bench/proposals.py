"""`python -m bench.proposals`: measured evidence for the proposed product changes.

Runs the prototypes in bench/prototypes/ against the stock paths, on the same synthetic mart as
`python -m bench` (and a small real platform build for the predict path), checks they return the
same rows / bytes / scores, and writes <out>/proposals.json and <out>/proposals.md.

1. retrieval: parity.retrieval.training_frame on the stock DuckDB offline store vs on the
   prototype ASOF-JOIN offline store (same platform code, one line of feature_store.yaml), vs raw;
   and the cost of the python-mode on-demand feature inside Feast's offline path
2. materialization: where Feast's time goes (pull / arrow->proto / SQLite writes) and the
   prototype executemany SQLite online store
3. /v1/predict: per-step cost in-process and a lean variant (lists -> matrix, one DMatrix)
4. cold start: import cost of each stack in a fresh interpreter
5. dbt: the row explosion of customer_features_weekly and a DuckDB memory_limit at 1M transactions
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import synth
from bench.config import SIZES
from bench.measure import PROJECT_ROOT, interleaved, product_state, run_worker, stats

PROTO_OFFLINE = "bench.prototypes.asof_offline_store.AsofDuckDBOfflineStore"
PROTO_ONLINE = "bench.prototypes.bulk_sqlite.BulkSqliteOnlineStore"


def _proto_repo(root: Path) -> Path:
    """A second repo dir over the same registry/online store, selecting the prototype stores."""
    stock = root / "feature_repo" / "feature_store.yaml"
    proto = root / "feature_repo_proto"
    proto.mkdir(exist_ok=True)
    text = stock.read_text().replace("type: duckdb", f"type: {PROTO_OFFLINE}").replace(
        "type: sqlite", f"type: {PROTO_ONLINE}")
    (proto / "feature_store.yaml").write_text(text)
    return proto


def task_synthetic(args: dict[str, Any]) -> dict[str, Any]:
    """Retrieval and materialization: stock vs prototype vs raw, with equality checks."""
    import pandas as pd
    from feast import FeatureStore

    from bench import materialization as mat
    from bench.compare import compare_frames
    from bench.prototypes.retrieval_lean import training_frame_lean
    from bench.report import paired_ratio
    from bench.retrieval import OUTPUT_COLUMNS, RawRetrieval
    from bench.synth_tasks import task_apply
    from parity import retrieval

    task_apply(args)
    root = Path(args["root"])
    proto_dir = _proto_repo(root)
    stock = FeatureStore(repo_path=str(root / "feature_repo"))
    proto = FeatureStore(repo_path=str(proto_dir))
    entity_df = pd.read_parquet(args["entity_path"])
    raw = RawRetrieval(Path(args["parquet"]), int(synth.TTL.total_seconds()))
    service = stock.get_feature_service(synth.SERVICE)
    batch_refs = [f"{synth.VIEW}:{n}" for n in synth.SERVICE_FEATURES]

    def hist(store: Any, features: Any) -> Any:
        frame = entity_df.copy()
        frame["request_at"] = frame["event_timestamp"]
        return store.get_historical_features(entity_df=frame, features=features).to_arrow()

    out: dict[str, Any] = {"rows": len(entity_df)}
    first: dict[str, Any] = {}
    times = interleaved({
        "training_frame (stock DuckDB store)": lambda: retrieval.training_frame(stock, entity_df, synth.SERVICE),
        "training_frame (prototype ASOF store)": lambda: retrieval.training_frame(proto, entity_df, synth.SERVICE),
        "raw ASOF (bench)": lambda: raw(entity_df),
        "feast get_historical_features, churn_v1 (with on-demand UDF)": lambda: hist(stock, service),
        "feast get_historical_features, batch features only": lambda: hist(stock, batch_refs),
        "prototype store, batch features only": lambda: hist(proto, batch_refs),
        "training_frame_lean: registered UDF on its 2 input columns": lambda: training_frame_lean(
            stock, entity_df, synth.SERVICE),
        "training_frame_lean: days_since vectorised (Arrow compute)": lambda: training_frame_lean(
            stock, entity_df, synth.SERVICE, vectorised=True),
    }, reps=args["reps"], warmup=1, on_first=lambda name, o: first.setdefault(name, o))
    out["retrieval_seconds"] = {k: stats(v) for k, v in times.items()}
    out["retrieval_ratio_vs_raw"] = {k: paired_ratio(times, k, "raw ASOF (bench)") for k in times}
    reference = first["training_frame (stock DuckDB store)"]
    out["retrieval_checks"] = [
        compare_frames(reference, first[name], OUTPUT_COLUMNS, f"stock vs {name}")
        for name in ("training_frame (prototype ASOF store)",
                     "training_frame_lean: registered UDF on its 2 input columns",
                     "training_frame_lean: days_since vectorised (Arrow compute)")]
    out["retrieval_check"] = {"ok": all(c["ok"] for c in out["retrieval_checks"]),
                              "mismatches": sum(c["mismatches"] for c in out["retrieval_checks"])}

    # materialization: where stock Feast spends it, and the executemany prototype
    setup = mat.Setup(args)
    from feast.infra.compute_engines.local import nodes
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    spent = {"arrow -> proto (_convert_arrow_to_proto)": 0.0, "SQLite writes (online_write_batch)": 0.0}
    convert, write = nodes._convert_arrow_to_proto, SqliteOnlineStore.online_write_batch

    def timed(label: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[label] += time.perf_counter() - started
        return wrapper

    def stock_materialize() -> float:
        setup.reset()
        store = FeatureStore(repo_path=str(root / "feature_repo"))
        started = time.perf_counter()
        store.materialize(start_date=setup.start, end_date=setup.end, feature_views=[synth.VIEW])
        return time.perf_counter() - started

    def proto_materialize() -> float:
        setup.reset()
        store = FeatureStore(repo_path=str(proto_dir))
        started = time.perf_counter()
        store.materialize(start_date=setup.start, end_date=setup.end, feature_views=[synth.VIEW])
        return time.perf_counter() - started

    def raw_materialize() -> float:
        setup.reset()
        started = time.perf_counter()
        mat.raw_materialize(setup.parquet, setup.online_db, setup.start, setup.end)
        return time.perf_counter() - started

    stock_materialize()  # warm-up
    nodes._convert_arrow_to_proto = timed("arrow -> proto (_convert_arrow_to_proto)", convert)
    SqliteOnlineStore.online_write_batch = timed("SQLite writes (online_write_batch)", write)
    try:
        totals = [stock_materialize() for _ in range(args["reps"])]
    finally:
        nodes._convert_arrow_to_proto, SqliteOnlineStore.online_write_batch = convert, write
    breakdown = {k: v / args["reps"] for k, v in spent.items()}
    breakdown["everything else (registry, pull_latest via ibis, dedup)"] = (
        sum(totals) / args["reps"] - sum(breakdown.values()))
    out["materialize_stock_breakdown_seconds_mean"] = breakdown
    samples: dict[str, list[float]] = {"stock feast": [], "prototype executemany store": [], "raw": []}
    dumps = {}
    for i in range(args["reps"] + 1):
        for name, fn in (("stock feast", stock_materialize), ("prototype executemany store", proto_materialize),
                         ("raw", raw_materialize)):
            seconds = fn()
            if i == 0:
                dumps[name] = mat.dump(setup.online_db)["sha256"]
            else:
                samples[name].append(seconds)
    out["materialize_seconds"] = {k: stats(v) for k, v in samples.items()}
    out["materialize_identical_bytes"] = len(set(dumps.values())) == 1
    return out


def dbt_memory_limit(work: Path, transactions: int, memory_limit: str) -> dict[str, Any]:
    """The same dbt build with the stock profile and with DuckDB's memory_limit set (a copy of
    dbt_project/profiles.yml under the scratch folder), plus how many rows the
    customer_features_weekly join materialises (each transaction version x every snapshot whose
    365-day window holds it)."""
    import duckdb
    import yaml

    from bench import platform_data

    data_dir = work / f"dbt_{transactions}"
    generated = platform_data.generate(data_dir, transactions)
    stock = platform_data.measure_build(data_dir)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    schema = con.execute("select table_schema from information_schema.tables "
                         "where table_name = 'int_transactions_versioned'").fetchone()[0]
    mart = data_dir / "marts" / "customer_features_weekly.parquet"
    counts = con.execute(f"""
        with snaps as (select distinct snapshot_at from read_parquet('{mart}'))
        select (select count(*) from {schema}.int_transactions_versioned),
               (select count(*) from read_parquet('{mart}')),
               count(*)
        from {schema}.int_transactions_versioned t join snaps s
          on t.transacted_at <= s.snapshot_at and t.transacted_at > s.snapshot_at - interval 365 day
         and t.loaded_at <= s.snapshot_at and (t.superseded_at is null or t.superseded_at > s.snapshot_at)
    """).fetchone()
    con.close()
    profiles = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text())
    output = profiles["parity"]["outputs"]["duckdb"]
    output.setdefault("settings", {})["memory_limit"] = memory_limit
    profiles_dir = work / "profiles_limited"
    profiles_dir.mkdir(exist_ok=True)
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump(profiles))
    limited = platform_data.measure_build(data_dir, profiles_dir=profiles_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    return {"raw_transactions": generated["raw_transactions"], "memory_limit": memory_limit,
            "transaction_versions": counts[0], "feature_rows": counts[1],
            "join_rows_upper_bound": counts[2], "join_rows_per_version": counts[2] / max(counts[0], 1),
            "stock_parity_build": {k: stock[k] for k in ("wall_seconds", "peak_rss_mb", "slowest_nodes")},
            "dbt_build_with_memory_limit": {k: limited.get(k) for k in ("wall_seconds", "peak_rss_mb", "slowest_nodes")}}


def asgi_overhead(reps: int) -> dict[str, Any]:
    """Sequential keep-alive POSTs to four uvicorn servers (bench.prototypes.asgi_overhead),
    interleaved request by request; client-side ms."""
    import httpx

    from bench.online import wait_http
    from bench.prototypes.asgi_overhead import VARIANTS
    from bench.servers import _free_port, _stop

    procs, clients = [], {}
    try:
        for index, variant in enumerate(VARIANTS):
            port = _free_port()
            proc = subprocess.Popen([sys.executable, "-m", "bench.prototypes.asgi_overhead", str(index), str(port)],
                                    cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            wait_http(f"http://127.0.0.1:{port}/docs", proc)
            clients[variant] = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)
        body = {"customers": [{"customer_id": "acme:AC-000001", "request_at": "2026-06-01T00:00:01+00:00"}]}
        times = interleaved({v: (lambda c=c: c.post("/v1/predict", json=body).raise_for_status())
                             for v, c in clients.items()}, reps=reps, warmup=50, collect=False)
        return {v: {"median_ms": stats(t, 1000.0)["median"], "p99_ms": stats(t, 1000.0)["p99"]} for v, t in times.items()}
    finally:
        for client in clients.values():
            client.close()
        for proc in procs:
            _stop(proc)


def _import_seconds(modules: str, reps: int = 3) -> dict[str, Any]:
    prelude = ""
    if modules.startswith("!sklearn "):  # xgboost imports scikit-learn (and scipy) when installed
        prelude, modules = "import sys; sys.modules['sklearn'] = None; ", modules[len("!sklearn "):]
    code = f"{prelude}import time; t = time.perf_counter(); import {modules}; print(time.perf_counter() - t)"
    values, walls = [], []
    for _ in range(reps):
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "FEAST_USAGE": "False"})
        walls.append(time.perf_counter() - started)
        values.append(float(proc.stdout.strip().splitlines()[-1]))
    return {"import_median_s": sorted(values)[len(values) // 2], "process_wall_median_s": sorted(walls)[len(walls) // 2]}


def import_costs() -> dict[str, Any]:
    """Fresh-interpreter import time of each stack the serving process loads."""
    stacks = {
        "interpreter only": "sys",
        "fastapi + uvicorn + pydantic": "fastapi, uvicorn, pydantic",
        "+ numpy": "fastapi, uvicorn, pydantic, numpy",
        "+ pandas + pyarrow": "fastapi, uvicorn, pydantic, numpy, pandas, pyarrow",
        "+ xgboost": "fastapi, uvicorn, pydantic, numpy, pandas, pyarrow, xgboost",
        "serving.app (today, before start-up)": "uvicorn, serving.app",
        "+ feast FeatureStore (start-up: open_store)": "uvicorn, serving.app, parity.online, feast.feature_store",
        "+ xgboost (start-up: load model) = today's total": "uvicorn, serving.app, parity.online, feast.feature_store, xgboost",
        "lean: fastapi + uvicorn + numpy + xgboost + sqlite3 (no feast, no pandas)": "fastapi, uvicorn, numpy, xgboost, sqlite3",
        "xgboost alone": "xgboost",
        "xgboost with scikit-learn unimportable (sys.modules['sklearn'] = None)": "!sklearn xgboost",
        "lean stack with scikit-learn unimportable": "!sklearn fastapi, uvicorn, numpy, xgboost, sqlite3",
        "feast alone": "feast",
    }
    return {label: _import_seconds(modules) for label, modules in stacks.items()}


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Evidence for the proposed product changes", "",
             f"Last run {results['started_at']}, size `{results['size']}`; medians of interleaved rounds (noisy shared "
             f"machine). Parts run at: {results.get('parts_run_at', {})}. The product code changed between parts "
             "(see product_files in proposals.json).", ""]
    syn = results.get("synthetic")
    if syn:
        lines += [f"## 1. Retrieval, {syn['rows']:,} entity rows", "", "| path | median s | p99/max s |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['median']:.3f} | {v['p99']:.3f} |" for k, v in syn["retrieval_seconds"].items()]
        check = syn["retrieval_check"]
        ratios = syn.get("retrieval_ratio_vs_raw", {})
        lines = lines[:-len(syn["retrieval_seconds"]) - 2] + [
            "| path | median s | p99/max s | vs raw (paired) |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {k} | {v['median']:.3f} | {v['p99']:.3f} | {ratios.get(k, float('nan')):.2f}x |"
                  for k, v in syn["retrieval_seconds"].items()]
        lines += ["", f"Prototypes vs stock training_frame: {'identical' if check['ok'] else 'DIFFERENT'} "
                  f"({check['mismatches']} mismatches).", "", "## 2. Materialization", "",
                  "| path | median s |", "| --- | ---: |"]
        lines += [f"| {k} | {v['median']:.3f} |" for k, v in syn["materialize_seconds"].items()]
        lines += ["", f"Online tables byte-identical: {syn['materialize_identical_bytes']}.", "",
                  "Stock Feast materialize, mean seconds per run:", ""]
        lines += [f"- {k}: {v:.3f}" for k, v in syn["materialize_stock_breakdown_seconds_mean"].items()]
    prof = results.get("predict_profile")
    if prof:
        lines += ["", "## 3. /v1/predict steps in-process (ms)", ""]
        for n in ("1", "100"):
            if n not in prof:
                continue
            lines += [f"### {n} customer(s)", "", "| step | median ms | p99 ms |", "| --- | ---: | ---: |"]
            lines += [f"| {k} | {v['median_ms']:.3f} | {v['p99_ms']:.3f} |" for k, v in prof[n]["steps"].items()]
            lines += ["", f"lean matrix identical: {prof[n]['lean_matrix_identical']}, "
                      f"lean scores identical: {prof[n]['lean_scores_identical']}, "
                      f"nthread=1 scores identical: {prof[n].get('nthread1_scores_identical')}, "
                      f"lean log identical: {prof[n].get('lean_log_identical')}, "
                      f"lean response identical: {prof[n].get('lean_response_identical')}", ""]
        contention = prof.get("dmatrix_under_cpu_contention")
        if contention:
            lines += ["xgboost DMatrix of one row, default nthread vs nthread=1:", ""]
            lines += [f"- {load}: " + "; ".join(f"{k} median {v['median_ms']:.3f} ms, p99 {v['p99_ms']:.3f} ms"
                                               for k, v in block.items()) for load, block in contention.items()]
            lines += [""]
        flush = prof.get("prediction_log_flush_5000_rows_ms")
        if flush and "median" in flush:  # older result format
            flush = {"features pre-serialised JSON": flush}
        for label, value in (flush or {}).items():
            text = (f"median {value['median']:.1f} ms, max {value['max']:.1f} ms" if "median" in value
                    else f"not supported ({value.get('error')})")
            lines += [f"Prediction-log flush of 5000 rows in its background thread (GIL held), {label}: {text}", ""]
        lines += ["gc and read_found(1 customer):", ""]
        lines += [f"- {k}: median {v['median_ms']:.3f} ms, p99 {v['p99_ms']:.3f} ms, max {v['max_ms']:.3f} ms"
                  for k, v in prof["gc_read_found_1"].items()]
    asgi = results.get("asgi_overhead")
    if asgi:
        lines += ["", "## 3b. FastAPI per-request overhead (trivial /v1/predict-shaped endpoint, 1 customer)", "",
                  "| variant | median ms | p99 ms |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['median_ms']:.3f} | {v['p99_ms']:.3f} |" for k, v in asgi.items()]
    imports = results.get("imports")
    if imports:
        lines += ["", "## 4. Import cost per stack (fresh interpreter, median of 3)", "",
                  "| stack | import s | process wall s |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['import_median_s']:.2f} | {v['process_wall_median_s']:.2f} |" for k, v in imports.items()]
    dbt = results.get("dbt_memory_limit")
    if dbt:
        stock, limited = dbt["stock_parity_build"], dbt["dbt_build_with_memory_limit"]
        lines += ["", f"## 5. dbt at {dbt['raw_transactions']:,} raw transactions", "",
                  f"- customer_features_weekly joins {dbt['transaction_versions']:,} transaction versions to "
                  f"{dbt['join_rows_upper_bound']:,} (version, snapshot) rows "
                  f"({dbt['join_rows_per_version']:.0f} per version) for {dbt['feature_rows']:,} feature rows",
                  f"- stock profile (`python -m parity build`): {stock['wall_seconds']:.1f} s, peak RSS {stock['peak_rss_mb']:.0f} MB; "
                  f"slowest {stock['slowest_nodes'][0]['node']} {stock['slowest_nodes'][0]['seconds']:.1f} s",
                  f"- `dbt build` with memory_limit={dbt['memory_limit']}: {limited['wall_seconds']:.1f} s, "
                  f"peak RSS {limited['peak_rss_mb']:.0f} MB; slowest {limited['slowest_nodes'][0]['node']} "
                  f"{limited['slowest_nodes'][0]['seconds']:.1f} s"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from bench import platform_data
    from bench.__main__ import _known_ids

    parser = argparse.ArgumentParser(prog="python -m bench.proposals", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    parser.add_argument("--parts", default="synthetic,predict,http,imports,dbt",
                        help="comma-separated subset of synthetic,predict,http,imports,dbt (others are kept from "
                             "an existing proposals.json)")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    parts = set(args.parts.split(","))
    work = PROJECT_ROOT / "bench" / "work" / f"proposals_{size.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results: dict[str, Any] = {"size": size.name, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "product_files": product_state()}
    previous = args.out / "proposals.json"
    if previous.exists() and parts != {"synthetic", "predict", "imports", "dbt", "http"}:
        results = {**json.loads(previous.read_text()), **results}  # keep the parts not rerun
    stamp = results["started_at"]
    results["parts_run_at"] = {**results.get("parts_run_at", {}), **{part: stamp for part in parts}}
    try:
        if "synthetic" in parts:
            case = size.retrieval_cases[0]
            root = work / "synthetic"
            parquet = root / "marts" / "customer_features_weekly.parquet"
            synth.write_features(parquet, case.entities, size.weeks)
            entity_path = root / "entities.parquet"
            synth.entity_frame(case.rows, case.entities, size.weeks).to_parquet(entity_path)
            print("proposals: retrieval + materialization prototypes", flush=True)
            results["synthetic"] = run_worker("proposals_synthetic", {
                "root": str(root / "repo"), "parquet": str(parquet), "entity_path": str(entity_path),
                "reps": size.retrieval_reps})
        if "predict" in parts:
            data_dir = work / "platform"
            platform_data.generate(data_dir, 20_000)
            print("proposals: platform build for the predict profile", flush=True)
            platform_data.measure_build(data_dir)
            setup = run_worker("platform_setup", {"data_dir": str(data_dir), "train_overrides": list(size.train_overrides)})
            results["predict_profile"] = run_worker("predict_profile", {
                "data_dir": str(data_dir), "ids": _known_ids(data_dir, 100), "request_at": setup["materialized_until"],
                "reps": {"1": 500, "100": 100}, "gc_reps": 3000})
        if "dbt" in parts:
            print("proposals: dbt build with a DuckDB memory_limit", flush=True)
            results["dbt_memory_limit"] = dbt_memory_limit(work, 1_000_000, "2GB")
        if "http" in parts:
            print("proposals: FastAPI/uvicorn per-request overhead variants", flush=True)
            results["asgi_overhead"] = asgi_overhead(2000)
        if "imports" in parts:
            print("proposals: import costs", flush=True)
            results["imports"] = import_costs()
    finally:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "proposals.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (args.out / "proposals.md").write_text(markdown(results))
        shutil.rmtree(work, ignore_errors=True)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
