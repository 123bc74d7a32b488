"""Section 7: pushed events -> online features, the accept -> readable lag at a bounded rate.

`python -m serving` runs on the platform build (sections 3-5's); events are POSTed to
/v1/events over loopback at a fixed rate (one event per request, each to the next of the known
customers, from a few client threads keeping the schedule). The service answers once an event is
durable in the event log; its update worker recomputes the customers' fresh features with the
mart's compiled SQL and writes them online. The lag of every event (accepted_at -> online_at, as
the service records it in <data>/events/lag.jsonl) gives p50/p99; the POST latency is measured by
the client. Correct = every event accepted and every one readable online.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from bench.measure import stats

TARGET_P99_SECONDS = 1.0


def _event(i: int, customer: str, now: datetime) -> dict[str, Any]:
    return {"event_id": f"bench-{now:%Y%m%d%H%M%S}-{i}", "customer_id": customer, "transaction_type": "purchase",
            "amount": 10 + i % 90, "currency": "USD", "category": "bench",
            "transacted_at": (now - timedelta(minutes=1)).replace(microsecond=0).isoformat()}


def _lags(data_dir: Path, since: datetime) -> list[dict[str, Any]]:
    path = data_dir / "events" / "lag.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if datetime.fromisoformat(r["accepted_at"]) >= since]


def push_at_rate(base: str, key: str, customers: list[str], rate: float, seconds: float,
                 threads: int | None = None) -> dict[str, Any]:
    """POST one event per request at `rate` per second for `seconds`; per-request latency and counts.
    Enough client threads (default: half a second's worth of requests, at least 8) that a slow
    answer does not hold up the schedule: with 8 a POST of 0.16 s capped the rate at ~50/s."""
    count = int(rate * seconds)
    threads = threads or max(8, int(rate / 2))
    start = time.perf_counter() + 0.2
    now = datetime.now(timezone.utc)
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    def send(client: httpx.Client, i: int) -> None:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        response = client.post("/v1/events", json={"events": [_event(i, customers[i % len(customers)], now)]})
        latencies.append(time.perf_counter() - began)
        key_ = str(response.status_code) if response.status_code != 200 else (
            "accepted" if response.json()["accepted"] == 1 else response.json()["results"][0]["status"])
        statuses[key_] = statuses.get(key_, 0) + 1

    clients = [httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) for _ in range(threads)]
    try:
        with cf.ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: send(clients[i % threads], i), range(count)))
    finally:
        for client in clients:
            client.close()
    elapsed = time.perf_counter() - start
    return {"sent": count, "achieved_rate": count / elapsed if elapsed > 0 else None, "statuses": statuses,
            "post_latency": stats(latencies)}


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), None elsewhere."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def run(data_dir: Path, server: Any, customers: list[str], rate: float, seconds: float,
        wait_seconds: float = 60.0) -> dict[str, Any]:
    """The section's result: POST figures, then the lag of every accepted event, and the server's
    CPU per accepted event (on a shared machine the lag measures its load; the CPU much less)."""
    since = datetime.now(timezone.utc)
    pid = getattr(getattr(server, "proc", None), "pid", None)
    cpu_before, wall_before = _cpu_seconds(pid), time.perf_counter()
    sent = push_at_rate(server.base, server.key, customers, rate, seconds)
    accepted = sent["statuses"].get("accepted", 0)
    deadline = time.monotonic() + wait_seconds
    rows = _lags(data_dir, since)
    while len(rows) < accepted and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = _lags(data_dir, since)
    cpu_after, wall = _cpu_seconds(pid), time.perf_counter() - wall_before
    lags = [r["lag_seconds"] for r in rows if r["lag_seconds"] is not None]
    figures = stats(lags) if lags else None
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return {
        "rate_per_second": rate, "seconds": seconds, "customers": len(customers), **sent,
        "online_events": len(lags), "not_online_events": sum(r["lag_seconds"] is None for r in rows),
        "lag": figures, "target_p99_seconds": TARGET_P99_SECONDS,
        "server_cpu_seconds": cpu, "server_cpu_share": cpu / wall if cpu is not None and wall > 0 else None,
        "server_cpu_ms_per_event": 1000 * cpu / accepted if cpu is not None and accepted else None,
        "met": figures is not None and figures["p99"] <= TARGET_P99_SECONDS,
        "correct": accepted == sent["sent"] and len(lags) == accepted,
    }
