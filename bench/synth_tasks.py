"""Worker task: write and apply a synthetic Feast repo (needs Feast, so it runs in a worker)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench import synth


def task_apply(args: dict[str, Any]) -> dict[str, Any]:
    """Write the repo over args['parquet'] under args['root'], `feast apply` it, and keep a pristine
    copy of the registry and the (empty) online store so materialization runs can start fresh."""
    repo = synth.write_repo(Path(args["root"]), Path(args["parquet"]))
    for stale in (repo.registry, repo.online_db):  # start from nothing: no old intervals or rows
        stale.unlink(missing_ok=True)
    synth.apply_repo(repo)
    pristine = repo.data_dir / "pristine"
    pristine.mkdir(exist_ok=True)
    shutil.copy2(repo.registry, pristine / "registry.db")
    if repo.online_db.exists():
        shutil.copy2(repo.online_db, pristine / "online_store.db")
    return {"repo": str(repo.repo), "registry": str(repo.registry), "online_db": str(repo.online_db)}


def task_synthetic(args: dict[str, Any]) -> dict[str, Any]:
    """One synthetic mart: apply its repo, then time retrieval for each entity frame and time
    materialization, all in this one process (imports paid once)."""
    from bench import materialization, retrieval

    applied = task_apply(args)
    out: dict[str, Any] = {"applied": applied, "retrieval": {}, "materialization": None}
    for case in args["retrieval_cases"]:
        out["retrieval"][case["name"]] = retrieval.task_time({**args, **case})
    if args.get("materialize_reps"):
        out["materialization"] = materialization.task_time({**args, "reps": args["materialize_reps"]})
    if args.get("consistency"):
        from bench import consistency

        out["consistency"] = consistency.task_time({**args["consistency"], "root": args["root"]})
    return out
