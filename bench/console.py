"""Section `console`: the console's customer page in headless Chromium with ~100k customers online.

Builds its own platform data folder at a scale chosen for `customers` (datagen -> `python -m parity
build` -> apply + materialize + a fast training run -> `python -m batch segments train` -> one or
more `python -m batch score` runs, so the page's score history has batch points), starts the real
service, fills the prediction log with one /v1/predict answer per customer (the log the page's
history reads), then signs in through the login form and looks customers up one page load at a
time. Time to fully rendered = the Navigation Timing API's `loadEventEnd - startTime` of each
page (request sent by the browser -> HTML, stylesheet and icon loaded and laid out); the server's
share is `responseEnd - requestStart`. Nothing is asserted; the page's verdict is read back.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure import PROJECT_ROOT, run_worker
from bench.platform_data import measure_build, platform_env

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,1000")
TIMING_JS = ("const t = performance.getEntriesByType('navigation')[0]; return [t.startTime, t.requestStart, "
             "t.responseEnd, t.domContentLoadedEventEnd, t.loadEventEnd];")
PREPARED = "bench-console.json"  # what `prepare` made, kept in the data folder for --console-data
FILLED = "bench-console-filled.json"  # the log fill's statuses, so a rerun does not fill it twice
PREDICT_CHUNK = 500  # customers per /v1/predict request when filling the prediction log


def percentiles(samples: list[float]) -> dict[str, Any]:
    """n, p50, p95, p99 and max of `samples` (ms); the percentiles interpolate (numpy's default)."""
    values = np.asarray(samples, dtype=float)
    if values.size == 0:
        return {"n": 0}
    return {"n": int(values.size), "p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "p99": float(np.percentile(values, 99)), "max": float(values.max()), "mean": float(values.mean())}


def _run(cmd: list[str], data_dir: Path, log: Path) -> float:
    """A platform CLI on the data folder (its output appended to `log`); wall seconds."""
    started = time.perf_counter()
    with open(log, "a") as out:
        code = subprocess.run(cmd, cwd=PROJECT_ROOT, env=platform_env(data_dir), stdout=out,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"`{' '.join(cmd[1:])}` failed (exit {code}):\n{tail}")
    return time.perf_counter() - started


def prepare(data_dir: Path, customers: int, batches: int, train_overrides: list[str], log: Any) -> dict[str, Any]:
    """Raw drops for about `customers` customers, built, applied, materialized, trained, scored."""
    from parity.ingest.datagen import CLIENTS, CUSTOMERS_PER_SCALE
    from parity.ingest.datagen import generate as datagen

    shutil.rmtree(data_dir, ignore_errors=True)
    scale = customers / (CUSTOMERS_PER_SCALE * (len(CLIENTS) + 0.25))  # dune: a quarter of a client
    steps: dict[str, float] = {}
    started = time.perf_counter()
    files = datagen(data_dir / "raw", seed=42, scale=scale, end_date=datetime(2026, 6, 1).date())
    steps["datagen"] = time.perf_counter() - started
    log(f"console: datagen scale {scale:.2f} -> {data_dir}; python -m parity build")
    build = measure_build(data_dir)
    steps["build"] = build["wall_seconds"]
    log(f"console: dbt build {build['wall_seconds']:.0f} s; apply + materialize + fast training")
    setup = run_worker("platform_setup", {"data_dir": str(data_dir), "train_overrides": train_overrides})
    steps.update({k: setup[k] for k in ("apply_seconds", "materialize_seconds", "train_seconds")})
    cli_log = data_dir / "bench-console.log"
    steps["segments_train"] = _run([sys.executable, "-m", "batch", "segments", "train"], data_dir, cli_log)
    at = datetime.fromisoformat(setup["materialized_until"])
    for i in reversed(range(batches)):  # oldest first, the newest at the materialization time
        log(f"console: batch score as of {(at - timedelta(days=7 * i)).isoformat()}")
        steps[f"score_{i}"] = _run([sys.executable, "-m", "batch", "score", "--as-of",
                                    (at - timedelta(days=7 * i)).isoformat()], data_dir, cli_log)
    transactions = sum(n for per in files.values() for name, n in per.items() if "customer" not in name)
    prepared = {"scale": scale, "raw_files_rows": files, "raw_transaction_rows": transactions,
            "materialized_until": setup["materialized_until"], "model_version": setup["model_version"],
            "batch_runs": batches, "step_seconds": steps}
    (data_dir / PREPARED).write_text(json.dumps(prepared, indent=2, default=str))
    return prepared


def batch_customers(data_dir: Path) -> list[str]:
    """Every customer of the newest batch run (all customers the warehouse knows at its as-of)."""
    import duckdb

    from parity.config import load_settings

    newest = sorted(load_settings(data_dir).scores_dir.glob("scores_*.parquet"))[-1]
    return [r[0] for r in duckdb.connect().execute(
        f"select customer_id from read_parquet('{newest}') order by customer_id").fetchall()]


def fill_log(base: str, key: str, ids: list[str], at: str) -> tuple[dict[str, int], list[str]]:
    """/v1/predict for every customer (PREDICT_CHUNK per request): the answers' status counts and
    the customers scored (online with fresh features: the page with reasons, features, history)."""
    import httpx

    counts: dict[str, int] = {}
    scored: list[str] = []
    with httpx.Client(base_url=base, timeout=120.0, headers={"X-API-Key": key}) as client:
        for i in range(0, len(ids), PREDICT_CHUNK):
            body = {"customers": [{"customer_id": c, "request_at": at} for c in ids[i:i + PREDICT_CHUNK]]}
            answer = client.post("/v1/predict", json=body)
            answer.raise_for_status()
            for p in answer.json()["predictions"]:
                counts[p["status"]] = counts.get(p["status"], 0) + 1
                if p["status"] == "ok":
                    scored.append(p["customer_id"])
    return counts, scored


def open_browser() -> tuple[Any, str]:
    """Headless Debian Chromium via chromedriver (and its profile folder, removed by the caller);
    the console's browser tests open theirs with this too."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    missing = [p for p in CHROMIUM if not Path(p).exists()]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: `apt-get install -y chromium chromium-driver`")
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM[0]
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=ChromeService(CHROMIUM[1]))
    driver.set_page_load_timeout(60)
    return driver, profile


def sign_in(driver: Any, base: str, key: str) -> None:
    """Log in through the console's form (the session cookie then rides on every lookup)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/console/login")
    driver.find_element(By.ID, "name").send_keys("bench")
    driver.find_element(By.ID, "api_key").send_keys(key)
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 30).until(lambda b: b.find_elements(By.ID, "who") or b.find_elements(By.ID, "login-error"))
    if not driver.find_elements(By.ID, "who"):
        raise RuntimeError(f"console login refused: {driver.find_element(By.ID, 'login-error').text}")


def lookups(driver: Any, base: str, ids: list[str], at: str, warmup: int = 3) -> dict[str, Any]:
    """Open the customer page of each id (one navigation each): Navigation Timing per page, the
    verdict each page shows, and the browser's console errors."""
    from urllib.parse import urlencode

    from selenium.webdriver.common.by import By

    rendered, server, dom_ready, verdicts, errors = [], [], [], {}, []
    driver.get_log("browser")  # only the lookups' own messages
    for i, customer in enumerate(ids):
        client, source_id = customer.split(":", 1)
        driver.get(f"{base}/console/customer?{urlencode({'client': client, 'id': source_id, 'at': at})}")
        start, request, response, dom, load = driver.execute_script(TIMING_JS)
        found = driver.find_elements(By.ID, "status")
        verdict = found[0].text if found else "no result on the page"
        errors += [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if i < warmup:
            continue
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
        rendered.append(load - start)
        server.append(response - request)
        dom_ready.append(dom - start)
    return {"rendered_ms": percentiles(rendered), "server_ms": percentiles(server),
            "dom_content_loaded_ms": percentiles(dom_ready), "verdicts": verdicts, "warmup": warmup,
            "console_errors": errors[:20], "console_error_count": len(errors), "samples_ms": rendered}


def pad_log(predictions_dir: Path, parts: int) -> int:
    """Copy the log's Parquet parts into earlier day folders until it holds `parts` parts: an
    older log's file count (the history scan opens every part), its rows repeated. Returns the count."""
    originals = sorted(p for p in predictions_dir.glob("date=*/*.parquet") if "-pad" not in p.parent.name)
    have = len(list(predictions_dir.glob("date=*/*.parquet")))
    copy = 0
    while originals and have < parts:
        source = originals[copy % len(originals)]
        folder = predictions_dir / f"{source.parent.name}-pad{copy // len(originals):03d}"
        folder.mkdir(exist_ok=True)
        shutil.copy2(source, folder / source.name)
        have, copy = have + 1, copy + 1
    return have


def _filled(data_dir: Path, api: Any, ids: list[str], at: str, log: Any) -> dict[str, Any]:
    """Fill the prediction log once per data folder (a rerun on --console-data reuses it)."""
    path = data_dir / FILLED
    if path.exists():
        return {**json.loads(path.read_text()), "reused": True}
    log(f"console: /v1/predict for all {len(ids):,} batch customers (fills the prediction log)")
    started = time.perf_counter()
    statuses, scored = fill_log(api.base, api.key, ids, at)
    filled = {"statuses": statuses, "scored": scored, "seconds": time.perf_counter() - started}
    path.write_text(json.dumps(filled))
    return filled


def _browse(api: Any, sample: list[str], at: str) -> dict[str, Any]:
    driver, profile = open_browser()
    try:
        sign_in(driver, api.base, api.key)
        return lookups(driver, api.base, sample, at)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def run(work: Path, customers: int, lookups_n: int, batches: int, train_overrides: list[str], log: Any,
        data_dir: Path | None = None, log_parts: int = 0) -> dict[str, Any]:
    """The whole section; a `data_dir` that `prepare` made before is reused as it is. With
    `log_parts`, the page loads are measured again once the log is padded to that many parts."""
    from bench import servers
    from parity.config import load_settings

    data_dir = data_dir or work / f"console_{customers}"
    if (data_dir / PREPARED).exists():
        prepared = {**json.loads((data_dir / PREPARED).read_text()), "reused": True}
    else:
        prepared = prepare(data_dir, customers, batches, train_overrides, log)
    at = prepared["materialized_until"]
    ids = batch_customers(data_dir)
    predictions = load_settings(data_dir).predictions_dir
    api = servers.serving(data_dir, work / "console-server.log")
    padded = None
    with servers.running(api):
        filled = _filled(data_dir, api, ids, at, log)
        sample = random.Random(7).sample(filled["scored"], min(lookups_n, len(filled["scored"])))
        parts = len(list(predictions.glob("date=*/*.parquet")))
        log(f"console: {len(sample)} customer page loads in headless Chromium (log: {parts} parts)")
        pages = _browse(api, sample, at)
        if log_parts > parts:
            parts_now = pad_log(predictions, log_parts)
            log(f"console: again with the log padded to {parts_now} parts")
            again = _browse(api, sample, at)
            padded = {"log_parts": parts_now, **{k: again[k] for k in
                      ("rendered_ms", "server_ms", "verdicts", "console_error_count", "samples_ms")}}
        peak = servers.peak_rss(api)
    statuses = filled["statuses"]
    online_count = statuses.get("ok", 0) + statuses.get("stale_features", 0)
    correct = pages["console_error_count"] == 0 and "no result on the page" not in pages["verdicts"]
    return {**prepared, "data_dir": str(data_dir), "batch_customers": len(ids), "online_customers": online_count,
            "predict_statuses": statuses, "log_fill_seconds": filled["seconds"], "request_at": at,
            "log_parts": parts, "lookups": len(sample), **pages, "padded_log": padded,
            "server_peak_rss_mb": peak, "correct": correct}
