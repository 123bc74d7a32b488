"""`python -m batch`: score every customer with the current model; train customer segments.

  score            score every customer known at the as-of time (default: the online store's
                   materialization time, so batch scores equal online scores) from point-in-time
                   offline features; writes <data>/scores/scores_<as-of>.parquet (dbt source
                   `scores.batch_scores`) and <data>/exports/<client>/scores_<as-of>.{csv,parquet}
  segments train   fit the segments model on the churn training set, register it as
                   `segments/vNNNN` and make it current
  segments show    print the current segments and their profiles

Errors about the inputs print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batch.config import DEFAULT_CONFIG, BatchError, load_config
from parity.cli import parse_time, quiet_feast
from parity.config import load_settings


def cmd_score(args: argparse.Namespace) -> int:
    """Score, write, print a summary."""
    from batch.pipeline import run_score

    run = run_score(load_settings(args.data_dir), load_config(args.config), as_of=args.as_of)
    results = run.results
    print(f"as of {run.as_of.isoformat()} ({run.as_of_source}); model churn/{run.model_version}, "
          f"segments {run.segments_version or '-'}")
    summary = results.groupby("client_id").agg(
        customers=("customer_id", "size"),
        scored=("status", lambda s: int((s == "ok").sum())),
        no_features=("status", lambda s: int((s == "no_features").sum())),
        stale=("status", lambda s: int((s == "stale_features").sum())),
        mean_score=("score", "mean"),
        flagged=("decision", lambda d: int(d.fillna(False).sum())),
    )
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"total: {len(results)} customers in, {len(results)} rows out")
    if results["segment_name"].notna().any():
        seg = results.groupby(["segment_id", "segment_name"]).agg(
            customers=("customer_id", "size"), mean_score=("score", "mean"))
        print("\nsegments:\n" + seg.to_string(float_format=lambda v: f"{v:.3f}"))
    for message in run.messages:
        print(f"note: {message}")
    print(f"\nresults: {run.results_path}")
    for client, paths in run.exports.items():
        print(f"export {client}: {', '.join(str(p) for p in paths)}")
    return 0


def cmd_segments_train(args: argparse.Namespace) -> int:
    """Fit, register, promote; print the profiles."""
    from batch.pipeline import run_segments_train

    config = load_config(args.config)
    version, model = run_segments_train(load_settings(args.data_dir), config)
    print(f"registered and promoted {config.segments.model_name}/{version}")
    _print_profiles(model)
    return 0


def cmd_segments_show(args: argparse.Namespace) -> int:
    """Print the current segments."""
    from parity.models.segments import load_current

    config = load_config(args.config)
    model = load_current(load_settings(args.data_dir).registry_dir, config.segments.model_name)
    if model is None:
        print("no segments model is current: run `python -m batch segments train`")
        return 0
    print(f"current {config.segments.model_name} model: {model.version}")
    _print_profiles(model)
    return 0


def _print_profiles(model) -> None:
    import pandas as pd

    rows = []
    for p in model.profiles:
        row = {"id": p["segment_id"], "name": p["name"], "size": p["size"], "share": p["share"],
               "churn_rate": p["churn_rate"]}
        row.update({f"median {c}": v for c, v in p["median"].items()})
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


def parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    main = argparse.ArgumentParser(
        prog="python -m batch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    for target, default in ((main, None), (common, argparse.SUPPRESS)):
        target.add_argument("--data-dir", default=default,
                            help="data folder (default: $PARITY_DATA_DIR or ./data)")
        target.add_argument("--config", type=Path, default=default,
                            help=f"YAML tunables (default: {DEFAULT_CONFIG})")
    sub = main.add_subparsers(dest="command", required=True, metavar="{score,segments}")
    score = sub.add_parser("score", parents=[common], help="score every customer; write results + exports")
    score.add_argument(
        "--as-of", type=parse_time, default=None,
        help="ISO time to score at (features read point-in-time; default: the online store's "
        "materialization time, or now if never materialized)",
    )
    score.set_defaults(func=cmd_score)
    seg = sub.add_parser("segments", parents=[common], help="customer segments model")
    seg_sub = seg.add_subparsers(dest="action", required=True, metavar="{train,show}")
    seg_sub.add_parser("train", parents=[common],
                       help="fit on the training set, register and promote").set_defaults(func=cmd_segments_train)
    seg_sub.add_parser("show", parents=[common],
                       help="print the current segments").set_defaults(func=cmd_segments_show)
    return main


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from parity.models.registry import RegistryError
    from parity.models.segments import SegmentError

    args = parser().parse_args(argv)
    quiet_feast()
    try:
        return args.func(args)
    except (BatchError, RegistryError, SegmentError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
