"""`python -m bench.worker TASK ARGS.json RESULT.json`: one measurement in a fresh interpreter.

The orchestrator (`python -m bench`) never imports Feast itself; every step that does runs here,
so each gets its own clean process and its own peak RSS.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from importlib import import_module
from pathlib import Path

TASKS = {
    "synth_apply": ("bench.synth_tasks", "task_apply"),
    "synthetic": ("bench.synth_tasks", "task_synthetic"),
    "retrieval_time": ("bench.retrieval", "task_time"),
    "retrieval_memory": ("bench.retrieval", "task_memory"),
    "materialize_time": ("bench.materialization", "task_time"),
    "materialize_memory": ("bench.materialization", "task_memory"),
    "platform_setup": ("bench.platform_data", "task_setup"),
    "online_inprocess": ("bench.online", "task_inprocess"),
}


def main(argv: list[str]) -> int:
    task, spec, out = argv
    os.environ.setdefault("FEAST_USAGE", "False")
    warnings.filterwarnings("ignore")
    module, name = TASKS[task]
    result = getattr(import_module(module), name)(json.loads(Path(spec).read_text()))
    Path(out).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
