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
run) and waits for the next command; end of stdin ends the process. The manifest a command
parsed is handed to the next one when the next one would parse the very same thing (`reuse`
below): dbt then does not parse again.

Runs in its own process, never the caller's: dbt keeps global state (flags, adapters, loggers)
between invocations, so one child serves one build and exits with it.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

MARKER = "\x1eparity-dbt-exit"


def main() -> int:
    """Serve commands from stdin until it closes (see the module docstring)."""
    from dbt.cli.main import dbtRunner  # imported before the first command arrives

    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        os.environ.clear()
        os.environ.update(command["env"])
        try:
            result = dbtRunner().invoke(list(command["args"]))
            code = 0 if result.success else (1 if result.exception is None else 2)
            if result.exception is not None:
                print(f"dbt: {type(result.exception).__name__}: {result.exception}", flush=True)
        except BaseException as err:  # noqa: BLE001 - reported to the parent as dbt's failure
            traceback.print_exc(file=sys.stdout)
            print(f"dbt: {type(err).__name__}: {err}", flush=True)
            code = 2
        sys.stdout.flush()
        print(f"{MARKER} {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
