"""Smoke test of `python -m bench --size tiny`: every section is measured and the methods agree.

No timing is asserted (the machine is shared); only that the benchmark runs end to end, writes
both result files, and that platform, raw and plain-Feast paths return the same rows and values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# builds its own tiny drop with dbt and starts the serving and Feast HTTP servers: the whole
# benchmark (~2 min), so in the heavy group (make test-heavy), not the default suite
pytestmark = [pytest.mark.data, pytest.mark.server, pytest.mark.bench, pytest.mark.heavy]

SECTIONS = ("retrieval", "materialization", "online", "http", "cold_start", "dbt")


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-out")
    work = tmp_path_factory.mktemp("bench-work")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny", "--out", str(out), "--work", str(work)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"python -m bench failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert (out / "results.md").read_text().startswith("# Parity benchmarks")
    return json.loads((out / "results.json").read_text())


def test_every_section_is_present(tiny_results: dict) -> None:
    for section in SECTIONS:
        assert tiny_results.get(section), f"section {section!r} missing or empty"
    assert tiny_results["summary"], "no summary rows"


def test_retrieval_methods_agree(tiny_results: dict) -> None:
    for name, case in tiny_results["retrieval"].items():
        assert case["correct"], f"{name}: {case['checks']}"
        assert {"platform", "platform_arrow", "raw", "feast"} <= set(case["times"])
        pairs = {c["pair"] for c in case["checks"]}
        assert {"platform vs raw", "platform vs feast"} <= pairs
        assert all(c["rows"][0] == case["rows"] for c in case["checks"])
        # the frame exercises both a hit and a TTL/unknown miss
        assert 0 < case["matched_rows"] < case["rows"]


def test_materialization_methods_write_identical_tables(tiny_results: dict) -> None:
    for name, case in tiny_results["materialization"].items():
        assert case["correct"], f"{name}: {case['checks']}"
        assert case["online_rows"] > 0


def test_online_reads_agree(tiny_results: dict) -> None:
    online = tiny_results["online"]
    assert set(online["by_entities"]) == {"1", "100"}
    assert online["correct"], online["by_entities"]


def test_http_and_cold_start_measured(tiny_results: dict) -> None:
    http = tiny_results["http"]
    assert http["correct"], http["checks"]
    for n in ("1", "100"):
        assert http[n]["predict"]["n"] > 0 and http[n]["feast_serve"]["n"] > 0
    cold = tiny_results["cold_start"]["seconds"]
    assert cold["serving"]["n"] >= 1 and cold["feast_serve"]["n"] >= 1


def test_latency_curve_and_throughput_measured(tiny_results: dict) -> None:
    http = tiny_results["http"]
    measured = {k for k in http if k.isdigit()}
    assert {"1", "10", "100"} <= measured
    assert all(http[k][name]["n"] > 0 for k in measured for name in ("predict", "feast_serve", "healthz"))
    by_concurrency = tiny_results["throughput"]["by_concurrency"]
    assert set(by_concurrency) == {"1", "8", "32"}
    for block in by_concurrency.values():
        assert set(block["errors"].values()) == {0}, block["errors"]
        assert len(block["rps"]) == 2 and all(v > 0 for v in block["rps"].values())
        for run in block["runs"]["serving_2_workers"]:  # answers per worker (warm-up included)
            assert sum(run["requests_by_worker"].values()) >= run["ok"] > 0, run["requests_by_worker"]
    assert tiny_results["plot"] == "latency_curve.png"


def test_dbt_point_measured(tiny_results: dict) -> None:
    point = tiny_results["dbt"][0]
    assert point["raw_transactions"] > 0
    assert point["wall_seconds"] > 0 and point["peak_rss_mb"] > 0


def test_overall_correct_flag(tiny_results: dict) -> None:
    assert tiny_results["correct"] is True


def test_the_consistency_check_runs_on_a_consistent_log(tiny_results: dict) -> None:
    check = tiny_results["consistency"]
    assert check["correct"] and check["mismatches"] == 0 and check["features"] == 17
    assert check["checked_rows"] == check["statuses"]["ok"] > 0 and check["rows_per_second"] > 0


def test_pushed_events_lag_measured(tiny_results: dict) -> None:
    events = tiny_results["events"]
    assert events["correct"], {k: v for k, v in events.items() if k != "lag"}
    assert events["lag"]["n"] == events["sent"] and events["lag"]["p99"] >= events["lag"]["median"] > 0
