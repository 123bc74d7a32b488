"""The summary table (metric, platform, raw, plain Feast, ratios, target, met?) as rows, Markdown
and console text. Ratios are medians of per-round ratios (the methods ran interleaved, so each
round's ratio compares calls made under the same machine load)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.config import TARGETS


def paired_ratio(samples: dict[str, list[float]], a: str, b: str) -> float | None:
    """Median over rounds of samples[a][i] / samples[b][i]."""
    if a not in samples or b not in samples or not samples[a] or not samples[b]:
        return None
    n = min(len(samples[a]), len(samples[b]))
    return float(np.median(np.asarray(samples[a][:n]) / np.asarray(samples[b][:n])))


def _row(metric: str, unit: str, platform: float | None, raw: float | None = None, feast: float | None = None,
         ratio_raw: float | None = None, ratio_feast: float | None = None, target: str = "",
         met: bool | None = None, note: str = "") -> dict[str, Any]:
    return {"metric": metric, "unit": unit, "platform": platform, "raw": raw, "feast": feast,
            "ratio_vs_raw": ratio_raw, "ratio_vs_feast": ratio_feast, "target": target, "met": met, "note": note}


def _memory(section: dict[str, Any], method: str) -> float | None:
    isolated = section.get("isolated_memory", {}).get(method)
    if isolated:
        return isolated["peak_growth_mb"]
    inline = section.get("inline_memory", {}).get(method)
    return inline["peak_growth_mb"] if inline else None


def _console_rows(block: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Section console: the customer page's time to fully rendered (p50, p95 against its target)."""
    if not block or not block.get("rendered_ms", {}).get("n"):
        return []
    rendered, server, target = block["rendered_ms"], block["server_ms"], TARGETS["console_customer_p95_ms"]
    note = (f"{block['lookups']} page loads in headless Chromium, {block['online_customers']:,} customers online "
            f"of {block['batch_customers']:,}; server share p50 {server['p50']:.0f} / p95 {server['p95']:.0f} ms; "
            f"verdicts {block['verdicts']}; console errors {block['console_error_count']}; correct={block['correct']}")
    return [_row("console customer page, request -> load event end, p50", "ms", rendered["p50"], note=note),
            _row("console customer page, request -> load event end, p95", "ms", rendered["p95"],
                 target=f"<= {target:g} ms", met=rendered["p95"] <= target,
                 note=f"prediction log of {block.get('log_parts', '?')} Parquet parts")] + _padded_row(block, target)


def _padded_row(block: dict[str, Any], target: float) -> list[dict[str, Any]]:
    padded = block.get("padded_log")
    if not padded or not padded["rendered_ms"].get("n"):
        return []
    rendered, server = padded["rendered_ms"], padded["server_ms"]
    return [_row(f"console customer page, p95, log padded to {padded['log_parts']:,} parts", "ms", rendered["p95"],
                 target=f"<= {target:g} ms", met=rendered["p95"] <= target,
                 note=f"p50 {rendered['p50']:.0f} ms; server p50 {server['p50']:.0f} / p95 {server['p95']:.0f} ms; "
                      f"copies of the log's own parts (an older log's file count); "
                      f"console errors {padded['console_error_count']}")]


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the results table from the results dict."""
    rows = []
    for name, case in results.get("retrieval", {}).items():
        t, s = case["times"], case["samples"]
        ratio = paired_ratio(s, "platform", "raw")
        src = f" ({case['merged_from']})" if case.get("merged_from") else ""
        rows.append(_row(f"retrieval {name}{src}: training_frame", "s median", t["platform"]["median"],
                         t["raw"]["median"], t["feast"]["median"], ratio, paired_ratio(s, "platform", "feast"),
                         f"<= {TARGETS['retrieval_vs_raw']}x raw", ratio is not None and ratio <= TARGETS["retrieval_vs_raw"],
                         f"p99 {t['platform']['p99']:.3f} / {t['raw']['p99']:.3f} / {t['feast']['p99']:.3f} s; "
                         f"correct={case['correct']}"))
        rows.append(_row(f"retrieval {name}: offline_arrow", "s median", t["platform_arrow"]["median"],
                         t["raw"]["median"], t["feast"]["median"], paired_ratio(s, "platform_arrow", "raw"),
                         paired_ratio(s, "platform_arrow", "feast"), note="Feast call only, Arrow out, no conform"))
        mem = case.get("isolated_memory") and "isolated process" or "inline (VmHWM reset)"
        rows.append(_row(f"retrieval {name}: peak RSS growth", "MB", _memory(case, "platform"), _memory(case, "raw"),
                         _memory(case, "feast"), note=mem))
    for name, case in results.get("materialization", {}).items():
        t, s = case["times"], case["samples"]
        ratio = paired_ratio(s, "platform", "raw")
        src = f" ({case['merged_from']})" if case.get("merged_from") else ""
        rows.append(_row(f"materialize {name}{src}", "s median", t["platform"]["median"], t["raw"]["median"],
                         t["feast"]["median"], ratio, paired_ratio(s, "platform", "feast"),
                         f"<= {TARGETS['materialize_vs_raw']}x raw",
                         ratio is not None and ratio <= TARGETS["materialize_vs_raw"],
                         f"{case['online_rows']} online rows; correct={case['correct']}"
                         + (f"; vs raw_wide (same layout) {paired_ratio(s, 'platform', 'raw_wide'):.2f}x, "
                            f"raw_wide {t['raw_wide']['median']:.3f} s" if "raw_wide" in t else "")))
        mem = case.get("isolated_memory") and "isolated process" or "inline (VmHWM reset)"
        rows.append(_row(f"materialize {name}: peak RSS growth", "MB", _memory(case, "platform"), _memory(case, "raw"),
                         _memory(case, "feast"), note=mem))
    check = results.get("consistency")
    if check:
        rows.append(_row(f"consistency check, {check['rows']:,} logged predictions", "rows/s", check["rows_per_second"],
                         note=f"{check['checked_rows']:,} ok rows x {check['features']} features re-checked "
                              f"offline in {check['times']['platform']['median']:.2f} s (median); "
                              f"{check['mismatches']} mismatches; correct={check['correct']}"))
    pushed = results.get("events")
    if pushed and pushed.get("lag"):
        lag = pushed["lag"]
        note = (f"{pushed['sent']} events at {pushed['rate_per_second']:g}/s (achieved {pushed['achieved_rate']:.0f}/s), "
                f"one per POST over loopback; POST median {pushed['post_latency']['median'] * 1000:.1f} ms; "
                f"{pushed['online_events']} online, {pushed['not_online_events']} not; correct={pushed['correct']}")
        rows.append(_row("event -> online lag (accept -> readable), median", "s", lag["median"], note=note))
        rows.append(_row("event -> online lag (accept -> readable), p99", "s", lag["p99"],
                         target=f"<= {pushed['target_p99_seconds']:g} s", met=pushed["met"]))
        if pushed.get("server_cpu_ms_per_event") is not None:
            rows.append(_row("events: serving CPU per accepted event (intake + online update)", "ms",
                             pushed["server_cpu_ms_per_event"],
                             note=f"server busy {100 * pushed['server_cpu_share']:.0f}% of one core while pushing"))
    rows += _console_rows(results.get("console"))
    online = results.get("online", {}).get("by_entities", {})
    for n, block in online.items():
        t = block["times"]
        label = f"online in-process, {n} entit{'y' if n == '1' else 'ies'}"
        direct = t.get("platform_direct")
        if direct:  # what /v1/predict runs: the serving manifest's SQLite read (no Feast import)
            rows.append(_row(f"{label}: SqliteReader.read_columns (serving)", "ms median",
                             direct["median"], t["raw"]["median"], t["feast"]["median"],
                             direct["median"] / t["raw"]["median"], direct["median"] / t["feast"]["median"],
                             note=f"p99 {direct['p99']:.2f} / {t['raw']['p99']:.2f} / {t['feast']['p99']:.2f} ms; "
                                  f"python lists, as serving uses them; correct={block['correct']}"
                                  + (f"; {block['direct_note']}" if block.get("direct_note") else "")))
        rows.append(_row(f"{label}: OnlineReader.read (Feast provider fallback, typed frame)", "ms median",
                         t["platform"]["median"], t["raw"]["median"], t["feast"]["median"],
                         t["platform"]["median"] / t["raw"]["median"], t["platform"]["median"] / t["feast"]["median"],
                         note=f"p99 {t['platform']['p99']:.2f} / {t['raw']['p99']:.2f} / {t['feast']['p99']:.2f} ms; "
                              f"read_columns {t['platform_columns']['median']:.2f}, "
                              f"online_frame {t['platform_sdk']['median']:.2f} ms; correct={block['correct']}"))
    http = results.get("http", {})
    rows += http_rows(http)
    rows += throughput_rows(results.get("throughput", {}))
    cold = results.get("cold_start", {}).get("seconds")
    if cold:
        s, f = cold["serving"], cold["feast_serve"]
        rows.append(_row("serving cold start (spawn -> /readyz 200)", "s median", s["median"], None, f["median"],
                         None, s["median"] / f["median"], f"<= {TARGETS['ready_s']} s", s["max"] <= TARGETS["ready_s"],
                         f"max {s['max']:.2f} s; feast serve = spawn -> /health 200"))
    for point in results.get("dbt", []):
        n = point["raw_transactions"]
        is_10m = n >= 5_000_000
        completed = point.get("completed", True)
        wall_ok = (completed and point["wall_seconds"] <= TARGETS["dbt_10m_s"]) if is_10m else None
        rss_ok = point["peak_rss_mb"] / 1024 <= TARGETS["dbt_10m_rss_gb"] if is_10m else None
        source = f" ({point['merged_from']})" if point.get("merged_from") else ""
        if completed:
            note = (f"dbt build itself {point['dbt_build_elapsed_seconds']:.1f} s, overhead (parse, preflight, "
                    f"startup, reconcile) {point['overhead_seconds']:.1f} s; slowest: "
                    f"{point['slowest_nodes'][0]['node']} {point['slowest_nodes'][0]['seconds']:.1f} s")
        else:
            running = point.get("unfinished_nodes")
            note = f"NOT FINISHED: {point['stopped']}" + (f"; still running: {', '.join(running)}" if running else "")
        rows.append(_row(f"dbt build, {n:,} raw transactions{source}", "s wall" if completed else "s wall (>)",
                         point["wall_seconds"], target=f"<= {TARGETS['dbt_10m_s']:.0f} s (10M)" if is_10m else "(10M only)",
                         met=wall_ok, note=note))
        rows.append(_row(f"dbt build, {n:,} raw transactions: peak RSS{source}", "MB", point["peak_rss_mb"],
                         target=f"<= {TARGETS['dbt_10m_rss_gb']:.0f} GB (10M)" if is_10m else "(10M only)", met=rss_ok,
                         note=point.get("peak_rss_note", "")))
    return rows


def _target(n: int) -> tuple[str, Any]:
    """The text of /v1/predict's targets at n customers and a function judging (predict, feast, floor) p99s."""
    limit = TARGETS["predict_p99_ms"].get(n)
    floor = TARGETS["predict_p99_vs_floor"].get(n)
    feast = TARGETS["predict_p99_vs_feast"].get(n)
    parts = ([f"<= {limit:g} ms"] if limit else []) + ([f"<= {floor:g}x /healthz p99"] if floor else []) \
        + ([f"< {feast:g}x feast serve"] if feast else [])

    def met(p: float, f: float, h: float) -> bool | None:
        if not parts:
            return None
        return ((not limit or p <= limit) and (not floor or p <= floor * h) and (not feast or p < feast * f))

    return ", ".join(parts), met


def http_rows(http: dict[str, Any]) -> list[dict[str, Any]]:
    """The latency curve: one row per customer count, then the floor."""
    rows = []
    for key in sorted((k for k in http if k.isdigit()), key=int):
        n = int(key)
        p, f, h = http[key]["predict"], http[key]["feast_serve"], http[key]["healthz"]
        text, met = _target(n)
        spread = http[key].get("p99_spread", {}).get("predict")
        rows.append(_row(f"/v1/predict over HTTP, {n} customer{'s' if n != 1 else ''}", "ms p99", p["p99"], None,
                         f["p99"], None, p["p99"] / f["p99"], text, met(p["p99"], f["p99"], h["p99"]),
                         f"median {p['median']:.2f} vs feast serve {f['median']:.2f} ms (features only); "
                         f"/healthz p99 {h['p99']:.2f} (x{p['p99'] / h['p99']:.1f}); n={p['n']}"
                         + (f", p99 spread over blocks {spread:.0%}" if spread is not None else "")))
    for key, why in http.get("skipped", {}).items():
        rows.append(_row(f"/v1/predict over HTTP, {key} customers", "ms p99", None, note=f"not measured: {why}"))
    if "floor" in http:
        fl = http["floor"]
        rows.append(_row("HTTP floor (/healthz vs feast /health)", "ms median", fl["predict_healthz"]["median"], None,
                         fl["feast_health"]["median"], None,
                         fl["predict_healthz"]["median"] / fl["feast_health"]["median"],
                         note=f"loopback round trip incl. httpx client; p99 {fl['predict_healthz']['p99']:.2f} "
                              f"vs {fl['feast_health']['p99']:.2f} ms"))
    return rows


def _cpu_note(c: dict[str, Any]) -> str:
    """CPU per request of server and load client, and the ratio two shared cores allow."""
    cpu = c.get("cpu_ms_per_request")
    if not cpu:
        return ""
    parts = "; ".join(f"{name}: server {v['server']:.2f} / client {v['client']:.2f}" for name, v in cpu.items())
    return f"; CPU ms per request ({parts}); the 2 shared cores allow {c['cpu_bound_ratio']:.2f}x"


def throughput_rows(block: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests/s of one vs several workers per concurrency, and peak RSS per process."""
    rows = []
    workers = block.get("workers")
    for key, c in sorted(block.get("by_concurrency", {}).items(), key=lambda kv: int(kv[0])):
        single, multi = (c["rps"][name] for name in c["rps"])
        target = TARGETS["throughput_multi_vs_single"].get(int(key))
        ratio = c["ratio_multi_vs_single"]
        errors = sum(c["errors"].values())
        rows.append(_row(f"throughput /v1/predict, 1 customer, concurrency {key}: {workers} workers vs 1",
                         "req/s", multi, single, None, ratio, None,
                         f">= {target:g}x 1 worker, 0 errors" if target else "",
                         (ratio is not None and ratio >= target and errors == 0) if target else None,
                         f"raw column = 1 worker; errors {errors}; p99 " + " / ".join(
                             f"{v:.1f}" for v in c["p99_ms"].values()) + " ms (1 / multi)" + _cpu_note(c)))
    for name, rss in block.get("peak_rss_mb", {}).items():
        rows.append(_row(f"serving peak RSS, {name}", "MB", max(rss.values()) if rss else None,
                         note=", ".join(f"{k} {v:.0f}" for k, v in rss.items())))
    if block.get("multi_ready_seconds") is not None:
        rows.append(_row(f"serving cold start, {workers} workers (spawn -> first /readyz 200)", "s",
                         block["multi_ready_seconds"], note="one sample"))
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    """results.md: header, the table, the correctness checks and the notes."""
    meta = results["meta"]
    lines = [
        f"# Parity benchmarks — size `{meta['size']}`",
        "",
        f"Run {meta['started_at']} on {meta['machine']} ({meta['duration_seconds']:.0f} s). "
        "Timings are medians (p99 where stated) of interleaved rounds on a shared, noisy machine; "
        "ratios are medians of per-round ratios. `raw` = DuckDB/SQLite by hand, `feast` = plain Feast 0.67.",
        "",
        f"Machine load: {meta.get('load', '?')} at the start, {meta.get('load_at_end', '?')} at the end.",
        "",
        *([f"![latency curve and throughput]({results['plot']})", ""] if results.get("plot") else []),
        "| metric | unit | platform | raw | plain Feast | platform/raw | platform/Feast | target | met? | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in results["summary"]:
        ratio_raw = None if r["ratio_vs_raw"] is None else f"{r['ratio_vs_raw']:.2f}x"
        ratio_feast = None if r["ratio_vs_feast"] is None else f"{r['ratio_vs_feast']:.2f}x"
        lines.append(f"| {r['metric']} | {r['unit']} | {_fmt(r['platform'])} | {_fmt(r['raw'])} | {_fmt(r['feast'])} | "
                     f"{_fmt(ratio_raw)} | {_fmt(ratio_feast)} | {r['target'] or '—'} | {_fmt(r['met'])} | {r['note']} |")
    lines += ["", f"**Correctness:** {'all checks passed' if results['correct'] else 'SOME CHECKS FAILED'} "
              "(same rows and values across methods, floats to 1e-9, online tables byte for byte).", ""]
    if "incremental" in results:  # section 8 (bench/incremental.py)
        from bench.incremental import markdown as incremental_markdown

        lines += ["## Incremental build", "", incremental_markdown(results["incremental"])]
    for line in results.get("notes", []):
        lines.append(f"- {line}")
    return "\n".join(lines) + "\n"


def console(results: dict[str, Any]) -> str:
    """A compact summary for the terminal."""
    out = [f"bench size={results['meta']['size']} in {results['meta']['duration_seconds']:.0f}s  "
           f"correct={results['correct']}"]
    for r in results["summary"]:
        ratio = "" if r["ratio_vs_raw"] is None else f"  {r['ratio_vs_raw']:.2f}x raw"
        ratio += "" if r["ratio_vs_feast"] is None else f"  {r['ratio_vs_feast']:.2f}x feast"
        met = "" if r["met"] is None else ("  MET" if r["met"] else "  MISSED")
        out.append(f"  {r['metric']:<62} {_fmt(r['platform']):>8} {r['unit']:<10}{ratio}"
                   f"{'  [' + r['target'] + ']' if r['target'] else ''}{met}")
    return "\n".join(out)
