"""Throughput under concurrency: C keep-alive connections sending requests back to back for a fixed
time, over raw HTTP/1.1 on asyncio streams (uvloop), so the client costs as little as possible of
the cores it shares with the servers. Orchestrator side: no Feast, no httpx per request."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.measure import stats


def http_request(base: str, path: str, body: bytes | None, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request (POST with a JSON body, GET without)."""
    host = urlsplit(base).netloc
    lines = [f"{'POST' if body is not None else 'GET'} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _connection(host: str, port: int, request: bytes, deadline: float, statuses: Counter,
                      latencies: list[float]) -> None:
    reader = writer = None
    try:
        while time.perf_counter() < deadline:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"content-length:")
            length = int(lower[at + 15:lower.find(b"\r\n", at)]) if at >= 0 else 0
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if b"connection: close" in lower:  # a draining server: open a new connection
                writer.close()
                reader = writer = None
    except (ConnectionError, asyncio.IncompleteReadError, OSError) as err:
        statuses[f"error: {type(err).__name__}"] += 1
    finally:
        if writer is not None:
            writer.close()


async def _run(base: str, request: bytes, concurrency: int, seconds: float) -> tuple[Counter, list[float], float]:
    parts = urlsplit(base)
    statuses: Counter = Counter()
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_connection(parts.hostname, parts.port, request, deadline, statuses, latencies)
                           for _ in range(concurrency)))
    return statuses, latencies, time.perf_counter() - started


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the given processes have used so far (/proc/<pid>/stat; a
    process that is gone counts 0)."""
    import os

    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15)
    return total


def run_load(base: str, request: bytes, concurrency: int, seconds: float, warmup: float = 0.5,
             server_pids: list[int] | None = None) -> dict[str, Any]:
    """Requests per second (200s only), errors (any other status or a broken connection) and
    latency of `concurrency` connections for `seconds` (after `warmup` seconds not counted); with
    `server_pids`, the CPU the server processes and this client used per request in that time
    (on 2 shared cores, what bounds a second worker's gain: see `cpu_bound_ratio`)."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # plain asyncio: slower client, same measurement
        runner = asyncio.run
    if warmup > 0:
        runner(_run(base, request, concurrency, warmup))
    pids = list(server_pids or [])
    server_before, client_before = process_cpu_seconds(pids), time.process_time()
    statuses, latencies, elapsed = runner(_run(base, request, concurrency, seconds))
    server_cpu, client_cpu = process_cpu_seconds(pids) - server_before, time.process_time() - client_before
    ok = statuses.get(200, 0)
    out = {"concurrency": concurrency, "seconds": elapsed, "ok": ok, "rps": ok / elapsed,
           "errors": sum(n for status, n in statuses.items() if status != 200),
           "statuses": {str(k): v for k, v in statuses.items()}, "latency_ms": stats(latencies, 1000.0)}
    if pids and ok:
        out["cpu_ms_per_request"] = {"server": 1000 * server_cpu / ok, "client": 1000 * client_cpu / ok}
        out["cpu_cores_busy"] = {"server": server_cpu / elapsed, "client": client_cpu / elapsed}
    return out


def cpu_bound_ratio(server_ms: float, client_ms: float, cores: int = 2) -> float:
    """The most a multi-worker server can gain over one worker when the load client shares the
    machine's `cores`: one worker is bound by one core (server_ms per request), several by all
    cores shared with the client ((server_ms + client_ms) per request over `cores`)."""
    return cores * server_ms / (server_ms + client_ms)
