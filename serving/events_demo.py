"""`make demo`'s fresh-events step: start the service, score the customer most at risk among a
sample, push a few purchases for them over POST /v1/events, wait until their fresh features are
readable online, and score them again — score and reasons before and after."""

from __future__ import annotations

import argparse
import secrets
import signal
import time
from datetime import datetime, timedelta, timezone

import httpx

from parity.config import load_settings
from serving.client import predict
from serving.smoke import free_port, start_service, wait_ready


def _reasons(prediction: dict) -> str:
    return "; ".join(f"{c['feature']}={c['value']} ({c['contribution']:+.2f})" for c in prediction["contributions"][:5])


def _show(label: str, prediction: dict) -> None:
    score = "-" if prediction["score"] is None else f"{prediction['score']:.3f}"
    print(f"  {label}: status={prediction['status']} score={score} decision={prediction['decision']} "
          f"features_at={prediction['features_at']}")
    print(f"    reasons: {_reasons(prediction) or prediction.get('detail')}")


def _online_events(base: str) -> float:
    """Events whose fresh features are readable online (the lag histogram's count)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("parity_event_online_lag_seconds_count"))


def _candidates(settings, count: int) -> list[str]:
    import duckdb

    path = settings.marts_dir / "customer_features_weekly.parquet"
    # customers of the newest snapshot of each client (their features are fresh), largest clients first
    return [r[0] for r in duckdb.connect().execute(
        f"select customer_id from read_parquet('{path}') qualify snapshot_at = max(snapshot_at) over (partition by client_id) "
        f"order by hash(customer_id) limit {count}").fetchall()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.events_demo", description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--events", type=int, default=3, help="purchases pushed for the customer")
    args = parser.parse_args(argv)
    settings = load_settings(args.data_dir)
    port, key = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    proc = start_service(str(settings.data_dir), port, key)
    try:
        wait_ready(base)
        answer = predict(_candidates(settings, 200), key, base)
        scored = [p for p in answer["predictions"] if p["status"] == "ok"]
        if not scored:
            statuses = sorted({p["status"] for p in answer["predictions"]})
            print(f"fresh events demo skipped: no customer of the sample is scorable now ({statuses}); "
                  "the data's newest snapshot is older than max_feature_age_days (make data END_DATE=...)")
            return 0
        before = max(scored, key=lambda p: p["score"])
        customer = before["customer_id"]
        print(f"fresh events: {customer}, the sample's customer most at risk")
        _show("before", before)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        events = [{"event_id": f"demo-{now:%Y%m%d%H%M%S}-{i}", "customer_id": customer, "transaction_type": "purchase",
                   "amount": 25 + 10 * i, "currency": "USD", "category": "demo",
                   "transacted_at": (now - timedelta(hours=args.events - i)).isoformat()} for i in range(args.events)]
        online = _online_events(base)
        started = time.monotonic()
        response = httpx.post(f"{base}/v1/events", json={"events": events}, timeout=30,
                              headers={"Authorization": f"Bearer {key}"})
        if response.status_code != 200:  # e.g. 503: the published build has no usable fresh-event plan
            print(f"  push refused: HTTP {response.status_code}: {response.text}")
            return 1
        pushed = response.json()
        print(f"  pushed {len(events)} purchases: {pushed['accepted']} accepted, {pushed['rejected']} rejected")
        for result in pushed["results"]:
            for error in result["errors"]:
                print(f"    event {result['index']}: {error['field']}: {error['reason']} ({error['detail']})")
        while _online_events(base) < online + pushed["accepted"] and time.monotonic() - started < 30:
            time.sleep(0.05)
        if _online_events(base) < online + pushed["accepted"]:  # the online update failed or is stuck
            ready = httpx.get(f"{base}/readyz", timeout=10).text
            print(f"  not readable online after 30 s; /readyz: {ready}")
            return 1
        print(f"  readable online after {time.monotonic() - started:.2f} s (accept -> online, incl. polling)")
        _show("after ", predict([customer], key, base)["predictions"][0])
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        print(f"service stopped (exit {code})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
