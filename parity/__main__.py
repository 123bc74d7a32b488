"""`python -m parity`: the platform's data commands (the Makefile delegates here)."""

from __future__ import annotations

import argparse
import sys

from parity.cli import parse_time
from parity.config import load_settings


def _print_frame(title: str, frame) -> None:
    print(f"\n{title}")
    print(frame.to_string(index=False))


def cmd_build(args: argparse.Namespace) -> int:
    """Pre-flight -> dbt build into a new build folder -> guards -> publish -> reconciliation."""
    from parity.ingest.build_config import BuildConfigError, load_build_config
    from parity.ingest.builds import BuildError
    from parity.ingest.guards import GuardSpecError, parse_allow
    from parity.ingest.pipeline import BuildFailed, run_build
    from parity.suppression import SuppressionError

    settings = load_settings(args.data_dir)
    try:
        allow = parse_allow(args.allow_guard)
        result = run_build(settings, load_build_config(), select=args.select, allow=allow,
                           incremental=args.incremental)
    except BuildFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except (BuildError, BuildConfigError, GuardSpecError, SuppressionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. the publish rename itself: said plainly, never a traceback
        where = f" {err.filename}" if err.filename else ""
        print(f"error: cannot use{where}: {err.strerror or err}", file=sys.stderr)
        return 2
    for breach in result.allowed:
        print(f"guard allowed by --allow-guard {breach.key}: {breach}")
    replaced = f" (replacing {result.replaced.build_id}, kept for `make rollback-build`)" if result.replaced else ""
    if args.incremental:
        print(f"build mode: {result.mode}")
    print(f"published build {result.build.name}{replaced}")
    if result.removed:
        print(f"pruned old builds: {', '.join(p.name for p in result.removed)}")
    if not args.select:
        return cmd_reconcile(args)
    return 0


def cmd_rollback_build(args: argparse.Namespace) -> int:
    """Publish the previous build again (the current one becomes the previous)."""
    from parity.ingest import builds

    settings = load_settings(args.data_dir)
    try:
        with builds.build_lock(settings, "rollback-build"):
            now, before = builds.rollback(settings)
    except (builds.BuildError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"published build is now {now.describe()}; {before.build_id} is kept as the previous build. "
          "Run `make apply materialize` so Feast's online store serves it.")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Print the reconciliation and quarantine tables; non-zero if any row is unaccounted for."""
    import duckdb

    from parity.ingest.warehouse import (
        describe_duckdb_error,
        exists,
        quarantine_summary,
        reconciliation,
    )

    settings = load_settings(args.data_dir)
    if not exists(settings.published_dir):
        print(f"error: nothing is published in {settings.data_dir}: run `make build` first", file=sys.stderr)
        return 2
    try:
        table = reconciliation(settings)
        reasons = quarantine_summary(settings)
    except duckdb.Error as err:
        print(f"error: {describe_duckdb_error(err)}", file=sys.stderr)
        return 2
    _print_frame("Reconciliation (physical records = canonical + quarantined + duplicates + erased):", table)
    _print_frame("Quarantine by reason:", reasons)
    _print_timelines(settings, table)
    lost = int(table["unaccounted_rows"].abs().sum())
    print(f"\nunaccounted rows: {lost}")
    return 0 if lost == 0 else 1


def _print_timelines(settings, table) -> None:
    """Each client's watermark, and the clients that sent no transactions (not scorable)."""
    import duckdb

    from parity.ingest.warehouse import query

    try:
        marks = query(settings, "select client_id, watermark_rule, watermark_at, n_snapshots "
                                "from marts.client_watermarks order by client_id")
    except duckdb.Error:  # a project without the mart (or a partial --select build)
        marks = None
    if marks is not None:
        _print_frame("Client watermarks (data known complete up to):", marks)
    tx = table[table["source_table"] == "transactions"]
    idle = tx.loc[tx["raw_rows"] == 0, "client_id"].tolist()
    if idle:
        print(f"\nnot scorable without transactions: {', '.join(idle)} (customers only; "
              "quarantine reason not_scorable_without_transactions)")


def cmd_apply(args: argparse.Namespace) -> int:
    """Register the Feast definitions derived from the dbt manifest."""
    from parity.features.feast_definitions import DefinitionError
    from parity.features.feature_store import FeatureStoreError, apply

    try:
        applied = apply(load_settings(args.data_dir))
    except (DefinitionError, FeatureStoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for kind, names in applied.items():
        print(f"{kind}: {', '.join(names)}")
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    """Incremental, idempotent materialization into the online store."""
    from parity.features.feature_store import FeatureStoreError, materialize

    end = args.end
    try:
        result = materialize(load_settings(args.data_dir), end=end)
    except FeatureStoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for view, what in result["views"].items():
        print(f"materialized {view}: {what}")
    if result.get("pushed_reapplied"):
        print(f"pushed fresh features newer than their snapshot kept online: {result['pushed_reapplied']} customers")
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    """Online values equal offline point-in-time values, for every entity."""
    from parity.features.feature_store import FeatureStoreError
    from parity.features.parity_check import run_parity

    try:
        report = run_parity(load_settings(args.data_dir), sample_times=args.sample_times)
    except FeatureStoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1


def cmd_docs(args: argparse.Namespace) -> int:
    """dbt docs and the feature catalogue."""
    from parity.docs import build_docs
    from parity.features.feature_store import FeatureStoreError

    try:
        pages = build_docs(load_settings(args.data_dir))
    except FeatureStoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, path in pages.items():
        print(f"{name}: {path}")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """Every place holding a customer's data, with row counts; an access-request export."""
    from pathlib import Path

    from parity.governance import trace as tracing
    from parity.governance.customer import CustomerError, parse_customer

    settings = load_settings(args.data_dir)
    try:
        customer = parse_customer(args.customer, settings.clients)
    except CustomerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = tracing.trace(settings, customer, with_records=not args.no_export)
    for row in result.summary():
        owner = "" if row["erasable"] else "  [client's file]"
        print(f"{row['rows']:>8}  {row['area']:<12} {row['location']}{owner}"
              + (f"  ({row['detail']})" if row["detail"] else ""))
    for problem in result.problems:
        print(f"not searched: {problem}")
    print(f"\n{customer.key}: {result.held_rows} rows in {sum(p.erasable for p in result.places)} places "
          f"the platform controls; {sum(p.rows for p in result.places if not p.erasable)} raw lines in the "
          "client's drops")
    if not args.no_export:
        paths = tracing.export(result, Path(args.out) if args.out else tracing.access_dir(settings, customer))
        print(f"access-request export (holds the customer's data): {paths['json']}, {paths['csv']}")
    return 0 if not result.problems else 1


def cmd_events_push(args: argparse.Namespace) -> int:
    """Push a file of events: judged like POST /v1/events, appended to the event log, and the
    customers' fresh features recomputed and written online; exit 1 if any event was rejected."""
    from parity.features.push import Pusher, read_events_file
    from parity.ingest.fresh_plan import PlanError

    settings = load_settings(args.data_dir)
    try:
        items = read_events_file(args.file)
    except (OSError, ValueError) as err:
        print(f"error: {args.file}: {err}", file=sys.stderr)
        return 2
    try:
        pusher = Pusher(settings, index_pairs=False)  # one run: rounds would not wait for the index
    except (PlanError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    try:
        for start in range(0, len(items), args.batch):
            verdicts, update = pusher.push(items[start:start + args.batch])
            for v in verdicts:
                counts[v.status] += 1
                for e in v.errors:
                    print(f"rejected event {start + v.index} (event_id {v.event_id!r}): {e['field'] or 'record'}: "
                          f"{e['reason']}: {e['detail']}")
            if update is not None:
                lag = (update.online_at - update.as_of).total_seconds()
                print(f"online: {len(update.customers)} customer(s) updated as of {update.as_of.isoformat()} "
                      f"({lag:.3f} s to write)")
                stale = pusher.served_stale(update)
                if stale:
                    print(f"note: {len(stale)} of them (e.g. {stale[0]}) have a snapshot older than "
                          "max_feature_age_days at the push: served stale_features (no score) until a newer "
                          "snapshot is built and materialized; the events are in the log for the next build")
    finally:
        pusher.close()
    print(f"{args.file}: {counts['accepted']} accepted, {counts['duplicate']} duplicate (already in the log), "
          f"{counts['rejected']} rejected")
    return 1 if counts["rejected"] else 0


def cmd_cross_engine(args: argparse.Namespace) -> int:
    """Build the raw drops on DuckDB and on Spark and compare every table; non-zero on a difference."""
    from parity.ingest import cross_engine
    from parity.ingest.pipeline import BuildFailed

    settings = load_settings(args.data_dir)
    try:
        diffs, seconds = cross_engine.run(settings, capture=not args.verbose)
    except BuildFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(cross_engine.report(diffs, seconds))
    return 0 if all(d.identical for d in diffs) else 1

def _rebuild(settings) -> str:
    """A full build published atomically (the suppression list applies in staging)."""
    from parity.ingest.build_config import load_build_config
    from parity.ingest.pipeline import run_build

    return run_build(settings, load_build_config(), capture=True).build.name


def _refresh_online(settings) -> None:
    """After forget's rebuild: an incremental materialization, when Feast was applied."""
    from parity.features.feature_store import materialize, registry_path

    if registry_path(settings).exists():
        materialize(settings)


def cmd_forget(args: argparse.Namespace) -> int:
    """Erase a customer everywhere the platform controls, then prove it (trace, reconciliation, parity)."""
    import getpass

    from parity.features.feature_store import FeatureStoreError
    from parity.governance.customer import CustomerError, parse_customer
    from parity.governance.forget import forget
    from parity.ingest.builds import BuildError
    from parity.ingest.pipeline import BuildFailed
    from parity.suppression import SuppressionError

    settings = load_settings(args.data_dir)
    try:
        customer = parse_customer(args.customer, settings.clients)
        report = forget(settings, customer, args.by or getpass.getuser(), _rebuild, _refresh_online)
    except (CustomerError, SuppressionError, BuildError, FeatureStoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BuildFailed as err:
        print(f"error: the rebuild failed, so the warehouse still holds the customer (files already "
              f"rewritten, suppression list updated); fix the build and run forget again:\n{err}", file=sys.stderr)
        return 1
    for line in report.rewritten:
        print(f"rewritten without the customer: {line}")
    for line in report.deleted:
        print(f"deleted: {line}")
    print(f"published build {report.build} (staging suppresses the customer on every rebuild)")
    if report.recomputed:
        print(f"fresh features recomputed online for {len(report.recomputed)} other customer(s) of its event ids "
              "(a correction had moved their purchases to the erased customer)")
    for model in report.models_trained_with:
        print(f"trained with the customer's data: {model} (kept until the next retraining; README "
              "'Privacy and governance')")
    for name, lines in report.raw_lines.items():
        print(f"client's raw file, not modified: {name}: {len(lines)} lines (listed in the erasure record)")
    for line in report.not_erased:
        print(f"NOT erased: {line}")
    held = report.after.held_rows if report.after else -1
    print(f"\nproof: trace finds {held} rows in places the platform controls")
    status = 0 if held == 0 and not report.not_erased else 1
    status = max(status, cmd_reconcile(args) if not args.no_verify else 0)
    if not args.no_verify:
        status = max(status, cmd_parity(argparse.Namespace(data_dir=args.data_dir, sample_times=args.sample_times)))
    return status


def cmd_retention(args: argparse.Namespace) -> int:
    """Delete what is older than the governance config's retention periods (dry run by default)."""
    from parity.config import ProjectConfigError, quarantine_sample_days
    from parity.governance.config import GovernanceError, load_config
    from parity.governance.retention import apply_retention

    settings = load_settings(args.data_dir)
    try:
        config = load_config(args.config)
        quarantine_days = quarantine_sample_days(settings.project_root)
    except (GovernanceError, ProjectConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report = apply_retention(settings, config.retention, quarantine_days, apply=args.apply)
    verb = "deleted" if report.applied else "would delete"
    for line in report.deleted:
        print(f"{verb}: {line}")
    for line in report.skipped:
        print(f"skipped: {line}")
    print(f"{len(report.deleted)} item(s) {verb}" + ("" if report.applied else "; run with --apply "
                                                       "(make retention APPLY=1) to delete"))
    return 1 if report.skipped else 0


def cmd_risk_register(args: argparse.Namespace) -> int:
    """Write the risk register of a model version (or retire it into the archive)."""
    from parity.governance.config import GovernanceError
    from parity.governance.risk import retire, write_risk_register
    from parity.models.registry import RegistryError

    settings = load_settings(args.data_dir)
    try:
        if args.retire:
            import getpass

            path = retire(settings, args.model, args.version, args.by or getpass.getuser(), args.retire)
            print(f"retired {args.model}/{args.version} -> {path} (its register and metadata kept)")
        else:
            print(f"risk register: {write_risk_register(settings, args.model, args.version)}")
    except (GovernanceError, RegistryError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_share_profile(args: argparse.Namespace) -> int:
    """A client's per-segment figures, k-suppressed (and DP-noised with --dp) -> its exports folder."""
    from parity.governance.config import GovernanceError, load_config
    from parity.governance.privacy import share_segment_profile, spent

    settings = load_settings(args.data_dir)
    try:
        config = load_config(args.config).privacy
        epsilon = (args.epsilon or config.default_epsilon) if args.dp else None
        path = share_segment_profile(settings, args.client, config, epsilon)
    except GovernanceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"shared with {args.client}: {path} (groups under {config.min_group_size} customers suppressed)")
    if args.dp:
        print(f"epsilon spent by {args.client}: {spent(settings, args.client):g} of "
              f"{config.epsilon_budget_per_client:g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity", description=__doc__)
    parser.add_argument("--data-dir", help="data folder (default: $PARITY_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="check raw files, dbt build into a new build folder, publish it "
                           "only if every model, test and guard passed, print the reconciliation")
    build.add_argument("--select", help="dbt selector (default: everything); a partial build adds to a copy "
                       "of the published build")
    build.add_argument("--allow-guard", action="append", metavar="CLIENT:GUARD",
                       help="let a guard breach through for a deliberate change, e.g. acme:customers_lost "
                       "(guards: raw_rows, quarantine_ratio, customers_lost, feature_rows; '*' matches any); "
                       "repeatable or comma-separated")
    build.add_argument("--incremental", action="store_true",
                       help="add the raw records appended since the published build to a copy of it "
                       "(DuckDB; refused with the reason, and everything built, when a raw file was rewritten, "
                       "the project, --vars or erasures changed: parity/ingest/incremental.py)")
    build.set_defaults(func=cmd_build)
    sub.add_parser("rollback-build", help="publish the previous build again (swap published and previous)"
                   ).set_defaults(func=cmd_rollback_build)
    sub.add_parser("reconcile", help="print the reconciliation table").set_defaults(func=cmd_reconcile)
    cross = sub.add_parser("cross-engine", help="build the raw drops on DuckDB and on Spark (under "
                           "<data>/cross_engine/, never published) and compare every table: types, "
                           "row counts and rows; exit 1 on any difference")
    cross.add_argument("--verbose", action="store_true", help="stream dbt's output")
    cross.set_defaults(func=cmd_cross_engine)
    sub.add_parser("apply", help="feast apply of the definitions derived from dbt").set_defaults(func=cmd_apply)
    mat = sub.add_parser("materialize", help="incremental materialization into the online store")
    mat.add_argument("--end", type=parse_time, help="ISO timestamp to materialize up to (default: just after the newest feature row)")
    mat.set_defaults(func=cmd_materialize)
    par = sub.add_parser("parity", help="check online == offline point-in-time, value by value and type by type")
    par.add_argument("--sample-times", type=int, default=8, help="historical timestamps to check offline against the marts")
    par.set_defaults(func=cmd_parity)
    sub.add_parser("docs", help="dbt docs + feature catalogue under <data>/docs").set_defaults(func=cmd_docs)
    trace = sub.add_parser("trace", help="every place holding a customer's data, with row counts, and a "
                           "JSON/CSV export for an access request")
    trace.add_argument("customer", help="<client>:<id>, the canonical customer_id (e.g. acme:AC-000123)")
    trace.add_argument("--out", help="export folder (default <data>/governance/access_requests/<hashed key>)")
    trace.add_argument("--no-export", action="store_true", help="print the places only, write nothing")
    trace.set_defaults(func=cmd_trace)
    events = sub.add_parser("events", help="pushed events (the event log)").add_subparsers(dest="events", required=True)
    push = events.add_parser("push", help="push a file of events (JSON lines, or a JSON array): validated like "
                             "POST /v1/events, logged, fresh features online; exit 1 if any is rejected")
    push.add_argument("file", help="events file: one JSON object per line, or a JSON array")
    push.add_argument("--batch", type=int, default=1000, help="events judged and updated together (default 1000)")
    push.set_defaults(func=cmd_events_push)

    fgt = sub.add_parser("forget", help="(admin) erase a customer everywhere the platform controls: suppression "
                         "list, files rewritten atomically, online store, reviews, rebuild + publish; then prove it")
    fgt.add_argument("customer", help="<client>:<id>, the canonical customer_id")
    fgt.add_argument("--by", help="who requested/ran the erasure (default: the OS user), in the erasure record")
    fgt.add_argument("--no-verify", action="store_true", help="skip the reconciliation and parity proof")
    fgt.add_argument("--sample-times", type=int, default=4, help="parity: historical timestamps to check")
    fgt.set_defaults(func=cmd_forget)
    ret = sub.add_parser("retention", help="delete prediction logs, review decisions, quarantine samples and "
                         "old builds older than the governance config says (dry run unless --apply)")
    ret.add_argument("--apply", action="store_true", help="really delete (default: report what would go)")
    ret.add_argument("--config", help="governance config overriding parity/governance/config.yaml")
    ret.set_defaults(func=cmd_retention)
    risk = sub.add_parser("risk-register", help="write a model version's risk register (--retire: archive it)")
    risk.add_argument("version", help="e.g. v0002")
    risk.add_argument("--model", default="churn", help="registry model name (default churn)")
    risk.add_argument("--retire", metavar="REASON", help="move the version (not current) into the archive")
    risk.add_argument("--by", help="who retires it (default: the OS user)")
    risk.set_defaults(func=cmd_risk_register)
    share = sub.add_parser("share-profile", help="a client's per-segment figures of the latest batch, groups "
                           "below k suppressed (--dp: OpenDP noise charged to the client's epsilon budget)")
    share.add_argument("client")
    share.add_argument("--dp", action="store_true", help="release counts with differential-privacy noise")
    share.add_argument("--epsilon", type=float, help="epsilon of this release (default: privacy.default_epsilon)")
    share.add_argument("--config", help="governance config overriding parity/governance/config.yaml")
    share.set_defaults(func=cmd_share_profile)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
