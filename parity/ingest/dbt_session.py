"""One dbt process for the dbt commands of one build (`python -m parity.ingest.dbt_session`).

A build runs `dbt parse` (the manifest its checks read) and then `dbt build`. As two `dbt`
processes each paid dbt's import and adapter start (~2 s at 2 cores) and the build parsed the
project again; here one child process imports dbt once and runs each command through dbt's
programmatic entry point (dbt.cli.main.dbtRunner), in order, in that same process.

Protocol, line by line: the parent (parity.ingest.warehouse.DbtSession) writes one JSON object per
command on stdin: {"args": [...], "env": {...}} (the command's whole environment: dbt reads its
flags and `env_var()` from os.environ, and a build's env differs from its parse's). The child
runs it, its output going to stdout as dbt's CLI would print it, then prints
`<marker> <exit code>` on a line of its own (0 success, 1 a node or test failed, 2 dbt could not
run) and waits for the next command; end of stdin ends the process. A `parse` with
"keep_manifest" keeps the Manifest it parsed, and the next command, if it says "reuse_manifest"
and runs with exactly that environment (so dbt would parse exactly that again), is given it
(dbtRunner(manifest=...), dbt's supported way): a build then does not parse at all. The parent
runs that parse while it checks the raw files and copies the warehouse.

Runs in its own process, never the caller's: dbt keeps global state (flags, adapters, loggers)
between invocations, so one child serves one build and exits with it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback

MARKER = "\x1eparity-dbt-exit"


def main() -> None:
    """Serve commands from stdin until it closes (see the module docstring)."""
    from dbt.cli.main import dbtRunner  # imported before the first command arrives

    kept: tuple[dict[str, str], object] | None = None  # (environment, Manifest) of the last parse
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        os.environ.clear()
        os.environ.update(command["env"])
        manifest = None
        if command.get("reuse_manifest") and kept is not None and kept[0] == command["env"]:
            manifest = kept[1]
            print("parity.ingest.dbt_session: the manifest parsed by the previous command is used", flush=True)
        kept = None  # a manifest serves one command: a build compiles into it
        try:
            result = dbtRunner(manifest=manifest).invoke(list(command["args"]))
            code = 0 if result.success else (1 if result.exception is None else 2)
            if result.exception is not None:
                print(f"dbt: {type(result.exception).__name__}: {result.exception}", flush=True)
            elif command.get("keep_manifest") and result.success and result.result is not None:
                kept = (dict(command["env"]), result.result)
        except BaseException as err:  # noqa: BLE001 - reported to the parent as dbt's failure
            traceback.print_exc(file=sys.stdout)
            print(f"dbt: {type(err).__name__}: {err}", flush=True)
            code = 2
        _release_warehouse()
        sys.stdout.flush()
        print(f"{MARKER} {code}", flush=True)
    # nothing is left to write: the warehouse is closed (checkpointed), the logs flushed; skip the
    # interpreter's teardown of dbt's modules (~0.5 s idle, 2 s at a load of 8), the build waits on it
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


def _release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open between invocations (its environment is
    class state), so the file is released (and its WAL checkpointed) when a command ends: the
    parent reads and copies it next."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    if environment is not None and hasattr(environment, "close"):
        environment.close()
    DuckDBConnectionManager.close_all_connections()


if __name__ == "__main__":
    main()
