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

    settings = load_settings(args.data_dir)
    try:
        allow = parse_allow(args.allow_guard)
        result = run_build(settings, load_build_config(), select=args.select, allow=allow)
    except BuildFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except (BuildError, BuildConfigError, GuardSpecError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. the publish rename itself: said plainly, never a traceback
        where = f" {err.filename}" if err.filename else ""
        print(f"error: cannot use{where}: {err.strerror or err}", file=sys.stderr)
        return 2
    for breach in result.allowed:
        print(f"guard allowed by --allow-guard {breach.key}: {breach}")
    replaced = f" (replacing {result.replaced.build_id}, kept for `make rollback-build`)" if result.replaced else ""
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
    _print_frame("Reconciliation (physical records = canonical + quarantined + duplicates):", table)
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
        pusher = Pusher(settings)
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
    finally:
        pusher.close()
    print(f"{args.file}: {counts['accepted']} accepted, {counts['duplicate']} duplicate (already in the log), "
          f"{counts['rejected']} rejected")
    return 1 if counts["rejected"] else 0


def cmd_cross_engine(args: argparse.Namespace) -> int:
    """Build the raw drops on DuckDB and on Spark and compare every table; non-zero on a difference."""
    from parity.ingest import cross_engine
    from parity.ingest.preflight import RawFileError
    from parity.ingest.warehouse import DbtError

    settings = load_settings(args.data_dir)
    try:
        diffs, seconds = cross_engine.run(settings, capture=not args.verbose)
    except (DbtError, RawFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(cross_engine.report(diffs, seconds))
    return 0 if all(d.identical for d in diffs) else 1


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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
