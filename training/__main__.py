"""`python -m training`: train, compare and register the churn model; manage the `current` pointer.

Subcommands: train (the default), promote VERSION, rollback, list. Errors about the inputs
(missing or single-class labels, unknown feature service, leakage, refused promotion, ...) print
one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from parity.cli import quiet_feast
from parity.config import load_settings
from parity.features.feature_store import FeatureStoreError
from parity.models import registry
from parity.models.prepare import PrepareError
from training import clients
from training.config import DEFAULT_CONFIG, load_config, parse_assignments
from training.errors import TrainingError

DEFAULT_MODEL = "churn"
COMMANDS = ("train", "promote", "rollback", "list", "approve")
USER_ERRORS = (TrainingError, registry.RegistryError, FeatureStoreError, PrepareError)


def _live_schema(settings):
    from parity.features.feature_store import open_store
    from parity.features.retrieval import service_schema

    store = open_store(settings)
    return lambda name: service_schema(store, name).features


def cmd_train(args: argparse.Namespace) -> int:
    """Train, evaluate, register; promote only if nothing is current yet (unless --no-promote)."""
    from training.pipeline import run

    overrides = parse_assignments(args.set or [])
    if args.quiet:
        overrides["progress"] = False
    if args.model:
        overrides["model_name"] = args.model
    config = load_config(args.config, overrides)
    result = run(
        load_settings(args.data_dir),
        config,
        dataset_path=args.dataset,
        auto_promote=False if args.no_promote else None,
    )
    print(f"\nModel comparison on the test period (value [{config.bootstrap.confidence:.0%} CI]):")
    print(result.table.to_string())
    diff = result.difference
    print(
        f"\nxgboost - as is, PR-AUC: {diff['difference']:+.4f} [{diff['ci_low']:+.4f}, "
        f"{diff['ci_high']:+.4f}] (paired bootstrap); the two models' own PR-AUC intervals "
        f"{'overlap' if diff['marginal_cis_overlap'] else 'do not overlap'}"
    )
    flagged = result.fairness[result.fairness["flagged"]]
    if len(flagged):
        print(
            "disparate impact flagged (< {:.2f}): {}".format(
                config.segments.disparate_impact_threshold,
                ", ".join(f"{r.dimension} {r.ratio:.2f}" for r in flagged.itertuples()),
            )
        )
    as_is = result.metadata["baselines"]["as is"]["threshold"]
    print(
        f"\nchosen threshold (xgboost, calibrated probability, min expected cost on validation): "
        f"{result.threshold:.4f}\n"
        f"as-is rule on the same costs: no purchase for N >= {as_is:.1f} days"
    )
    print(f"training set: {result.dataset_path}")
    print(clients.describe(result.metadata["clients"]))
    for warning in result.metadata["clients"]["warnings"]:
        print(f"WARNING: {warning}")
    print(f"registered {config.model_name}/{result.version} -> {result.entry_dir}")
    print(f"report: {result.report_path}")
    if result.promoted:
        print(f"promoted {result.version} (no model was current)")
    else:
        print(
            f"current remains {result.current}; promote with `python -m training promote {result.version}`"
        )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Point `current` at VERSION after the feature-list check."""
    args.model = args.model or DEFAULT_MODEL
    settings = load_settings(args.data_dir)
    pointer = registry.promote(
        settings.registry_dir, args.model, args.version, _live_schema(settings),
        actor=args.by, reason=args.reason,
    )
    print(
        f"current {args.model} model: {pointer['version']} (history: {', '.join(pointer['history'])})"
    )
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """Record an approval of VERSION (approver + acknowledged flagged items); promote stays separate."""
    from parity.governance.risk import write_risk_register
    from parity.models import approvals

    args.model = args.model or DEFAULT_MODEL
    settings = load_settings(args.data_dir)
    metadata = registry.read_metadata(settings.registry_dir, args.model, args.version)
    folder = registry.model_dir(settings.registry_dir, args.model)
    try:
        line = approvals.record(folder, args.version, metadata, args.approver or "",
                                (args.ack or "").split(","), note=args.note)
    except approvals.ApprovalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    register = write_risk_register(settings, args.model, args.version)
    print(f"approved {args.model}/{args.version} by {line['approver']}; acknowledged: "
          f"{', '.join(line['acknowledged']) or 'nothing flagged'}")
    print(f"risk register: {register}")
    print(f"promote with `make promote VERSION={args.version}`")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Point `current` back at the previously current version."""
    args.model = args.model or DEFAULT_MODEL
    settings = load_settings(args.data_dir)
    pointer = registry.rollback(settings.registry_dir, args.model, _live_schema(settings),
                                actor=args.by, reason=args.reason)
    print(
        f"current {args.model} model: {pointer['version']} (history: {', '.join(pointer['history'])})"
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Versions with their service, test PR-AUC, threshold and whether they are current."""
    args.model = args.model or DEFAULT_MODEL
    settings = load_settings(args.data_dir)
    versions = registry.list_versions(settings.registry_dir, args.model)
    if not versions:
        print(f"no '{args.model}' versions in {settings.registry_dir}")
        return 0
    current = registry.current_version(settings.registry_dir, args.model)
    print(f"{'':2}{'version':8} {'created':25} {'service':10} {'PR-AUC':>7} {'threshold':>9}")
    for version in versions:
        entry = settings.registry_dir / args.model / version
        try:
            meta = registry.read_metadata(settings.registry_dir, args.model, version)
            created = json.loads((entry / registry.CREATED_FILE).read_text())["created_at"]
            pr_auc = meta["metrics"]["test"]["xgboost"]["PR-AUC"]["value"]
            row = (
                f"{created:25} {meta['feature_service']:10} {pr_auc:7.4f} {meta['threshold']:9.4f}"
            )
        except (registry.RegistryError, OSError, KeyError, ValueError) as err:
            row = f"unreadable: {err}"
        print(f"{'*' if version == current else ' '} {version:8} {row}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    main = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # the same options are accepted before or after the subcommand (SUPPRESS: no clobbering)
    common = argparse.ArgumentParser(add_help=False)
    for target, default in ((main, None), (common, argparse.SUPPRESS)):
        target.add_argument(
            "--data-dir", default=default, help="data folder (default: $PARITY_DATA_DIR or ./data)"
        )
        target.add_argument(
            "--model",
            default=default,
            help="registry model name (default: model_name of the config, churn)",
        )
    sub = main.add_subparsers(dest="command", metavar="{train,promote,rollback,list,approve}")
    train = sub.add_parser(
        "train", parents=[common], help="train, compare, register (default command)"
    )
    train.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"YAML tunables (default: {DEFAULT_CONFIG})",
    )
    train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value for this run, e.g. --set bootstrap.reps=200 (repeatable)",
    )
    train.add_argument(
        "--dataset",
        type=Path,
        help="retrain on a saved training set (data_dir/training/<service>/dataset-*.parquet), "
        "verified against its fingerprint, instead of retrieving features again",
    )
    train.add_argument(
        "--no-promote",
        action="store_true",
        help="never promote; by default the new version is promoted only if no model is current",
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(func=cmd_train)
    promote = sub.add_parser(
        "promote", parents=[common], help="make VERSION current (checks its feature list)"
    )
    promote.add_argument("version", help="e.g. v0002")
    promote.set_defaults(func=cmd_promote)
    approve = sub.add_parser(
        "approve", parents=[common], help="record an approval of VERSION (needed before it becomes current)"
    )
    approve.add_argument("version", help="e.g. v0002")
    approve.add_argument("--approver", required=True, help="who approves (recorded)")
    approve.add_argument("--ack", default="", help="comma-separated flagged items of the model card being "
                         "acknowledged, e.g. fairness:client_id,fairness:country (all must be named)")
    approve.add_argument("--note", help="free text recorded with the approval")
    approve.set_defaults(func=cmd_approve)
    rollback = sub.add_parser(
        "rollback", parents=[common], help="make the previously current version current again"
    )
    rollback.set_defaults(func=cmd_rollback)
    for action in (promote, rollback):  # recorded in <registry>/<model>/audit.jsonl
        action.add_argument("--reason", help="why (recorded in the registry's audit log)")
        action.add_argument("--by", help="who (default: the OS user), recorded in the audit log")
    sub.add_parser(
        "list", parents=[common], help="list registered versions (* = current)"
    ).set_defaults(func=cmd_list)
    return main


def main(argv: list[str] | None = None) -> int:
    """Entry point; `train` is the default subcommand."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg in COMMANDS for arg in argv) and not any(
        arg in ("-h", "--help") for arg in argv
    ):
        argv = ["train", *argv]
    args = parser().parse_args(argv)
    if args.command != "list":
        quiet_feast()
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
