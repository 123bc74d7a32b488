"""Section 3: online feature reads, in-process (worker task) and over loopback HTTP (orchestrator).

In-process, on the real platform repo (feature service churn_v1 incl. the on-demand feature):
platform          parity.features.online.OnlineReader.read -> typed pandas frame (the Feast-provider fallback)
platform_columns  OnlineReader.read_columns -> python lists (the same read without Arrow/pandas)
platform_direct   SqliteReader.read_columns: the serving manifest's direct SQLite read, no Feast
                  (what /v1/predict uses since the serving manifest)
platform_sdk      parity.features.retrieval.online_frame (Feast SDK + conform + pandas)
feast             FeatureStore.get_online_features(churn_v1, rows).to_dict()
raw               one SQLite SELECT ... WHERE entity_key IN (...) on the product's online table (Feast's
                  layout: ValueProto decode; the wide layout: typed columns as stored), the UDF inline

Over HTTP: POST /v1/predict (features + model + TreeSHAP + JSON) vs `feast serve`
POST /get-online-features (features only), sequential keep-alive requests, interleaved.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from bench.compare import compare_frames
from bench.materialization import _entity_key
from bench.measure import interleaved, stats

METHODS = ("platform", "platform_columns", "platform_direct", "platform_sdk", "feast", "raw")


class RawOnline:
    """The floor: one indexed SELECT on Feast's SQLite table, decode, the recency UDF inline."""

    def __init__(self, db_path: Path, table: str, features: Sequence[str], timestamps: Sequence[str]):
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import NULL_TIMESTAMP_INT_VALUE

        self._value, self._null_ts = Value, NULL_TIMESTAMP_INT_VALUE
        self.con = sqlite3.connect(str(db_path), check_same_thread=False)
        self.table = table
        self.features = list(features)
        self.timestamps = set(timestamps)
        self._sql: dict[int, str] = {}

    def select(self, keys: list[bytes]) -> list[tuple]:
        sql = self._sql.get(len(keys))
        if sql is None:
            sql = self._sql[len(keys)] = (
                f"SELECT entity_key, feature_name, value FROM {self.table} "
                f"WHERE entity_key IN ({','.join('?' * len(keys))})")
        return self.con.execute(sql, keys).fetchall()

    def read(self, customer_ids: Sequence[str], request_at: datetime) -> dict[str, list[Any]]:
        keys = [_entity_key(c) for c in customer_ids]
        position = {k: i for i, k in enumerate(keys)}
        columns: dict[str, list[Any]] = {name: [None] * len(keys) for name in self.features}
        value = self._value()
        for key, name, blob in self.select(keys):
            column = columns.get(name)
            if column is None:
                continue
            value.ParseFromString(blob)
            kind = value.WhichOneof("val")
            if kind is None:
                continue
            raw = getattr(value, kind)
            if name in self.timestamps:
                raw = None if raw == self._null_ts else datetime.fromtimestamp(raw, tz=timezone.utc)
            column[position[key]] = raw
        columns["days_since_last_purchase"] = [
            None if last is None else (request_at - last).total_seconds() / 86400.0
            for last in columns["last_purchase_at"]]
        return columns


class RawWideOnline(RawOnline):
    """The floor over the wide layout (parity.features.wide_store): one indexed SELECT of typed
    columns (timestamps as epoch seconds), the recency UDF inline."""

    def __init__(self, db_path: Path, table: str, columns: dict[str, str]):
        super().__init__(db_path, table, list(columns), [f for f, c in columns.items() if c.endswith(":UNIX_TIMESTAMP")])
        self.columns = columns

    def select(self, keys: list[bytes]) -> list[tuple]:
        sql = self._sql.get(len(keys))
        if sql is None:
            names = ", ".join(f'"{self.columns[f]}"' for f in self.features)
            sql = self._sql[len(keys)] = (
                f'SELECT entity_key, {names} FROM "{self.table}" WHERE entity_key IN ({",".join("?" * len(keys))})')
        return self.con.execute(sql, keys).fetchall()

    def read(self, customer_ids: Sequence[str], request_at: datetime) -> dict[str, list[Any]]:
        keys = [_entity_key(c) for c in customer_ids]
        position = {k: i for i, k in enumerate(keys)}
        columns: dict[str, list[Any]] = {name: [None] * len(keys) for name in self.features}
        lists = [columns[name] for name in self.features]
        stamps = [name in self.timestamps for name in self.features]
        for key, *values in self.select(keys):
            i = position[key]
            for column, is_stamp, value in zip(lists, stamps, values):
                column[i] = datetime.fromtimestamp(value, tz=timezone.utc) if is_stamp and value is not None else value
        columns["days_since_last_purchase"] = [
            None if last is None else (request_at - last).total_seconds() / 86400.0
            for last in columns["last_purchase_at"]]
        return columns


def _setup(args: dict[str, Any]) -> dict[str, Any]:
    from parity.config import load_settings
    from parity.features.feature_store import open_store
    from parity.features.online import OnlineReader, SqliteReader, open_reader
    from parity.features.retrieval import online_frame

    settings = load_settings(args["data_dir"])
    store = open_store(settings)
    service_name = args.get("service", "churn_v1")
    reader = OnlineReader(store, service_name)
    direct = open_reader(settings, service_name)
    if not isinstance(direct, SqliteReader):  # measured as what serving would use, reason kept
        direct_note = f"platform_direct fell back to Feast: {direct.fallback_reason}"
    else:
        direct_note = None
    service = store.get_feature_service(service_name)
    names = [n for n, _ in reader.schema.features]
    batch = [n for n in names if n != "days_since_last_purchase"]
    online = store._get_provider().online_store
    if hasattr(online, "table_name"):  # the wide layout (parity.features.wide_store)
        from parity.features.wide_store import column_name, view_columns

        view = store.get_feature_view("customer_activity")
        kinds = dict(view_columns(view))
        raw = RawWideOnline(settings.feast_dir / "online_store.db", online.table_name(store.config, view),
                            {f: column_name(f, kinds[f]) for f in [*batch, "last_purchase_at"]})
    else:
        raw = RawOnline(settings.feast_dir / "online_store.db", f"{store.config.project}_customer_activity",
                        batch + ["last_purchase_at"], ["last_purchase_at"])
    request_at = datetime.fromisoformat(args["request_at"])

    def methods(ids: list[str]) -> dict[str, Any]:
        rows = [{"customer_id": c, "request_at": request_at} for c in ids]
        return {
            "platform": lambda: reader.read(ids, request_at),
            "platform_columns": lambda: reader.read_columns(ids, request_at),
            "platform_direct": lambda: direct.read_columns(ids, request_at),
            "platform_sdk": lambda: online_frame(store, ids, service_name, request_at),
            "feast": lambda: store.get_online_features(features=service, entity_rows=rows).to_dict(),
            "raw": lambda: raw.read(ids, request_at),
        }

    return {"methods": methods, "names": names, "direct_note": direct_note}


def task_inprocess(args: dict[str, Any]) -> dict[str, Any]:
    """Per entity count: interleaved timing of every method and a value check of their outputs."""
    setup = _setup(args)
    out: dict[str, Any] = {}
    for n, reps in sorted((int(k), v) for k, v in args["reps"].items()):
        ids = args["ids"][:n]
        first: dict[str, pd.DataFrame] = {}

        def keep(name: str, result: Any, first: dict[str, pd.DataFrame] = first) -> None:
            frame = result if isinstance(result, pd.DataFrame) else pd.DataFrame(
                {k: v for k, v in result.items() if not k.startswith("__")})
            first[name] = frame.reset_index(drop=True)

        times = interleaved(setup["methods"](ids), reps=reps, warmup=max(1, reps // 20), on_first=keep,
                            collect=False)
        columns = setup["names"]
        checks = [compare_frames(first["platform"], first[other], columns, f"platform vs {other}")
                  for other in ("platform_columns", "platform_direct", "platform_sdk", "feast", "raw")]
        out[str(n)] = {
            "entities": len(ids),
            "times": {name: stats(values, 1000.0) for name, values in times.items()},  # ms
            "checks": checks,
            "correct": all(c["ok"] for c in checks),
            "direct_note": setup["direct_note"],
        }
    return {"by_entities": out, "unit": "ms", "correct": all(v["correct"] for v in out.values())}


# --------------------------------------------------------------------------------------------
# HTTP (orchestrator side: no Feast import needed)


def wait_http(url: str, proc: Any, timeout: float = 120.0, interval: float = 0.01) -> float:
    """Poll `url` until 200; seconds since now. Raises if the process dies or time runs out."""
    import httpx

    started = time.perf_counter()
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"server process exited with {proc.returncode} before {url} answered")
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(interval)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


def service_features(path: Path | None = None) -> list[str]:
    """churn_v1's batch features, read from feature_repo/services.py without importing Feast."""
    import ast

    from bench.measure import PROJECT_ROOT

    tree = ast.parse((path or PROJECT_ROOT / "feature_repo" / "services.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CHURN_V1_FEATURES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise ValueError("CHURN_V1_FEATURES not found in feature_repo/services.py")


def http_bench(predict_base: str, api_key: str, feast_base: str, ids: list[str], request_at: datetime,
               reps: dict[int, int], repeats: int = 3) -> dict[str, Any]:
    """The latency curve: per customer count, sequential keep-alive requests to /v1/predict,
    `feast serve` (features only) and the /healthz floor, interleaved request by request, in
    `repeats` blocks (each block's p99 is kept: their spread says how stable the p99 is).
    Client-side latency in ms. Sizes above the customers available are skipped (noted)."""
    import httpx

    stamp = request_at.isoformat()
    # feast serve cannot run churn_v1's python-mode on-demand view from JSON (request_at arrives as
    # a str), so it serves the stored values the platform reads: the service's batch features
    feast_features_list = [f"customer_activity:{name}" for name in (*service_features(), "last_purchase_at")]
    results: dict[str, Any] = {"skipped": {}}
    with httpx.Client(base_url=predict_base, headers={"X-API-Key": api_key}, timeout=60.0) as api, \
            httpx.Client(base_url=feast_base, timeout=60.0) as fs:
        checks: dict[str, Any] = {}
        for n, count in sorted(reps.items()):
            if n > len(ids):
                results["skipped"][str(n)] = f"only {len(ids)} customers in the online store"
                continue
            chosen = ids[:n]
            predict_body = {"customers": [{"customer_id": c, "request_at": stamp} for c in chosen]}
            feast_body = {"features": feast_features_list, "entities": {"customer_id": chosen}}

            def predict(body: dict[str, Any] = predict_body) -> Any:
                response = api.post("/v1/predict", json=body)
                response.raise_for_status()
                return response

            def feast_features(body: dict[str, Any] = feast_body) -> Any:
                response = fs.post("/get-online-features", json=body)
                response.raise_for_status()
                return response

            def healthz() -> Any:
                return api.get("/healthz").raise_for_status()

            first: dict[str, Any] = {}
            samples: dict[str, list[float]] = {"predict": [], "feast_serve": [], "healthz": []}
            blocks: dict[str, list[float]] = {name: [] for name in samples}
            for block in range(repeats):
                times = interleaved({"predict": predict, "feast_serve": feast_features, "healthz": healthz},
                                    reps=max(1, count // repeats), warmup=max(5, count // 20) if block == 0 else 2,
                                    on_first=lambda name, r, first=first: first.setdefault(name, r.json()),
                                    collect=False)
                for name, values in times.items():
                    samples[name] += values
                    blocks[name].append(stats(values, 1000.0)["p99"])
            ok = [p["status"] for p in first["predict"]["predictions"]].count("ok")
            present = [s == "PRESENT" for s in first["feast_serve"]["results"][1]["statuses"]]
            checks[str(n)] = {"predict_ok": ok, "feast_serve_present": sum(present),
                              "feast_serve_features": len(first["feast_serve"]["results"]) - 1}
            results[str(n)] = {name: stats(values, 1000.0) for name, values in samples.items()}
            results[str(n)]["block_p99"] = blocks
            results[str(n)]["p99_spread"] = {  # (max - min) / median of the blocks' p99s
                name: (max(b) - min(b)) / sorted(b)[len(b) // 2] if b and min(b) > 0 else None
                for name, b in blocks.items()}
        floor = interleaved({"predict_healthz": lambda: api.get("/healthz"), "feast_health": lambda: fs.get("/health")},
                            reps=max(reps.values()) // 2, warmup=10, collect=False)
        results["floor"] = {name: stats(values, 1000.0) for name, values in floor.items()}
        results["checks"] = checks
    results["correct"] = all(c["predict_ok"] == int(n) == c["feast_serve_present"] for n, c in checks.items())
    return results


def _median_cpu(runs: list[dict[str, Any]]) -> dict[str, float] | None:
    """Median server and client CPU ms per request over runs (None when not measured)."""
    measured = [r["cpu_ms_per_request"] for r in runs if "cpu_ms_per_request" in r]
    if not measured:
        return None
    return {k: sorted(m[k] for m in measured)[len(measured) // 2] for k in ("server", "client")}


def served_by_worker(base: str) -> dict[str, float]:
    """/v1/predict answers so far per worker of a multi-worker server (its /metrics, labelled
    `worker`), read until two reads a snapshot interval apart agree, so every worker's count is
    current (the bench talks to serving over HTTP only: it does not import serving's interval)."""
    previous = _answers_by_worker(base)
    deadline = time.monotonic() + 15.0
    while True:
        time.sleep(1.2)  # > serving's worker snapshot interval (1 s)
        current = _answers_by_worker(base)
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


def _answers_by_worker(base: str) -> dict[str, float]:
    """One read of /metrics: /v1/predict answers per `worker` label."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(base + "/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "parity_requests_total" and sample.labels.get("path") == "/v1/predict":
                worker = sample.labels.get("worker", "0")
                out[worker] = out.get(worker, 0.0) + sample.value
    return out


def throughput(single: Any, multi: Any, customer: str, request_at: datetime, concurrencies: tuple[int, ...],
               seconds: float, rounds: int) -> dict[str, Any]:
    """Requests per second at each concurrency (1 customer per request) against the single- and
    the multi-worker server, alternating them over `rounds`; the ratio is the median of the
    per-round ratios (both measured under the same machine load)."""
    import json

    from bench.load import cpu_bound_ratio, http_request, run_load
    from bench.servers import server_pids

    body = json.dumps({"customers": [{"customer_id": customer, "request_at": request_at.isoformat()}]}).encode()
    out: dict[str, Any] = {}
    for c in concurrencies:
        runs: dict[str, list[dict[str, Any]]] = {single.name: [], multi.name: []}
        for round_ in range(rounds):
            order = (single, multi) if round_ % 2 == 0 else (multi, single)
            for server in order:
                request = http_request(server.base, "/v1/predict", body, {"X-API-Key": server.key})
                before = served_by_worker(server.base) if server is multi else None
                runs[server.name].append(run_load(server.base, request, c, seconds, server_pids=server_pids(server)))
                if before is not None:  # how the kernel spread the connections over the workers
                    after = served_by_worker(server.base)
                    runs[server.name][-1]["requests_by_worker"] = {
                        w: after[w] - before.get(w, 0.0) for w in sorted(after)}
        ratios = sorted(m["rps"] / s["rps"] for s, m in zip(runs[single.name], runs[multi.name]) if s["rps"] > 0)
        out[str(c)] = {
            "runs": runs,
            "rps": {name: sorted(r["rps"] for r in rs)[len(rs) // 2] for name, rs in runs.items()},
            "errors": {name: sum(r["errors"] for r in rs) for name, rs in runs.items()},
            "p99_ms": {name: sorted(r["latency_ms"]["p99"] for r in rs)[len(rs) // 2] for name, rs in runs.items()},
            "ratio_multi_vs_single": ratios[len(ratios) // 2] if ratios else None,
        }
        cpu = {name: _median_cpu(rs) for name, rs in runs.items()}
        if all(cpu.values()):
            out[str(c)]["cpu_ms_per_request"] = cpu
            # what the machine allows: the single worker's CPU per request, the client's of the
            # multi-worker run (both cores then hold the workers and the client)
            out[str(c)]["cpu_bound_ratio"] = cpu_bound_ratio(cpu[single.name]["server"], cpu[multi.name]["client"])
    return out
