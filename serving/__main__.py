"""`python -m serving`: run the prediction API with uvicorn (make serve)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from parity.config import load_settings
from serving.config import ServingConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    # start-up allocates ~1M long-lived objects (imports); collecting them over and over is
    # wasted start-up time. The app's lifespan freezes them and turns the collector back on.
    gc.disable()
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    parser.add_argument("--config", type=Path, help="serving config YAML (default: serving/config.yaml)")
    parser.add_argument("--data-dir", help="data folder (default: $PARITY_DATA_DIR or ./data)")
    parser.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default from config: 8000)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("PARITY_SERVING_WORKERS") or 1),
                        help="worker processes on one socket, each with its own model, reader and log "
                             "(default: $PARITY_SERVING_WORKERS or 1; see serving/workers.py)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    from serving.lean import refuse_pydantic_v1

    refuse_pydantic_v1()  # before the routes' fields are created (on import, and on first requests)
    from serving.app import create_app

    # The prediction-log writer and the model reloaders are Python threads: while one holds the
    # GIL, a request waits up to the switch interval (5 ms by default) for the event loop to get
    # it back. 0.5 ms bounds that wait at the cost of more frequent hand-overs under contention.
    sys.setswitchinterval(0.0005)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ServingConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    config = config.model_copy(update={"host": args.host or config.host, "port": args.port or config.port})
    settings = load_settings(args.data_dir)

    def run(sockets: list[Any] | None = None) -> None:
        # SIGTERM drains first (DrainingServer), then uvicorn's graceful shutdown answers what
        # is in flight and runs the lifespan shutdown (log compaction)
        app = create_app(settings, config)
        # ws="none": the API has no WebSocket route; uvicorn's default ("auto") imports the
        # websockets package at start-up (~6-15 ms of CPU before ready) for nothing
        server = DrainingServer(uvicorn.Config(app, host=config.host, port=config.port, log_level=args.log_level,
                                               access_log=False, ws="none"), app.state.parity,
                                config.shutdown_grace_seconds)
        server.run(sockets=sockets)

    if args.workers == 1:
        run()
        return 0
    from serving.workers import bind, supervise

    sock = bind(config.host, config.port)  # imports done once: the forked workers start warm
    return supervise(args.workers, sock, lambda _index: run([sock]), settings.data_dir / "serving" / "metrics")


class DrainingServer(uvicorn.Server):
    """uvicorn's Server with a drain phase on SIGTERM/SIGINT: the app turns not ready and closes
    each connection after its answer (clients and load balancers move on) until no request has
    been in flight for `QUIET` seconds or `grace` seconds passed; then uvicorn's own shutdown. A
    second signal stops at once. Without it, idle keep-alive connections were closed under
    clients that had just sent a request (6-7 resets per SIGTERM under load)."""

    QUIET = 0.2

    def __init__(self, config: uvicorn.Config, state: Any, grace: float):
        super().__init__(config)
        self.state, self.grace = state, grace

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.state.draining or self.grace <= 0:
            return super().handle_exit(sig, frame)
        self.state.draining = True
        # a thread: the signal handler must return at once (the event loop keeps serving)
        threading.Thread(target=self._drain, args=(sig, frame), name="drain", daemon=True).start()

    def _drain(self, sig: int, frame: Any) -> None:
        started = time.monotonic()
        while time.monotonic() - started < self.grace:
            if self.state.in_flight == 0 and time.monotonic() - self.state.last_done >= self.QUIET:
                break
            time.sleep(0.02)
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    raise SystemExit(main())
