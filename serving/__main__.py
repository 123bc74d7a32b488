"""`python -m serving`: run the prediction API with uvicorn (make serve)."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from dataclasses import replace
from pathlib import Path

from parity.config import load_settings
from serving.config import load_config


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
    args = parser.parse_args(argv)

    import uvicorn

    from serving.app import create_app
    from serving.models import import_xgboost_lean

    import_xgboost_lean()  # before the model loads: keeps scikit-learn/scipy out of the process
    # The prediction-log writer and the model reloaders are Python threads: while one holds the
    # GIL, a request waits up to the switch interval (5 ms by default) for the event loop to get
    # it back. 0.5 ms bounds that wait at the cost of more frequent hand-overs under contention.
    sys.setswitchinterval(0.0005)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    config = replace(config, host=args.host or config.host, port=args.port or config.port)
    app = create_app(load_settings(args.data_dir), config)
    # one worker process; uvicorn handles SIGTERM by running the lifespan shutdown (log flush)
    uvicorn.run(app, host=config.host, port=config.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
