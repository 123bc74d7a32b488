"""`make demo`'s last step: start the service, score a few customers over HTTP, stop it cleanly."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import httpx

from parity.config import load_settings
from serving.client import predict


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(data_dir: str, port: int, api_key: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m serving` in a child process on 127.0.0.1:<port>."""
    env = {**os.environ, "PARITY_DATA_DIR": data_dir, "PARITY_API_KEYS": api_key, **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-m", "serving", "--port", str(port), "--log-level", "warning"], env=env)


def wait_ready(base_url: str, timeout: float = 60.0) -> dict:
    """Poll /readyz until 200 (or raise with the last answer)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=2)
            last = response.json()
            if response.status_code == 200:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"service not ready after {timeout:.0f}s: {last}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.smoke", description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--customers", type=int, default=1, help="customers scored per client")
    args = parser.parse_args(argv)
    settings = load_settings(args.data_dir)
    import duckdb

    from parity.features.materialization import parquet_sql

    # the first customers of every client, so each client's answer (score or stale) is shown
    # (the mart is one Parquet file, or a folder of parts on Spark)
    ids = [r[0] for r in duckdb.connect().execute(
        "select customer_id from (select distinct client_id, customer_id from "
        f"{parquet_sql(str(settings.marts_dir / 'customer_features_weekly.parquet'))}) "
        f"qualify row_number() over (partition by client_id order by customer_id) <= {args.customers} "
        "order by customer_id").fetchall()] + ["acme:AC-999999"]
    port, key = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    proc = start_service(str(settings.data_dir), port, key)
    try:
        started = time.monotonic()
        wait_ready(base)
        print(f"service ready on {base} in {time.monotonic() - started:.1f}s")
        answer = predict(ids, key, base)
        for p in answer["predictions"]:
            top = ", ".join(f"{c['feature']}={c['value']} ({c['contribution']:+.2f})" for c in p["contributions"][:3])
            score = "-" if p["score"] is None else f"{p['score']:.3f}"
            print(f"  {p['customer_id']:<18} {p['status']:<17} score={score:<6} decision={p['decision']}  {top}")
        print(f"  model {answer['model']['name']}/{answer['model']['version']} threshold={answer['model']['threshold']:.3f}"
              f" request_id={answer['request_id']}")
        print(json.dumps(answer["predictions"][0], indent=2)[:800])
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        print(f"service stopped (exit {code})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
