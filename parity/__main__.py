"""`python -m parity`: the platform's data commands (the Makefile delegates here)."""

from __future__ import annotations

import argparse
import sys

from parity.config import load_settings


def _print_frame(title: str, frame) -> None:
    print(f"\n{title}")
    print(frame.to_string(index=False))


def cmd_build(args: argparse.Namespace) -> int:
    """dbt parse -> raw-file preflight -> dbt seed/build -> reconciliation."""
    from parity.preflight import RawFileError, run_preflight
    from parity.warehouse import DbtError, reconciliation, run_dbt

    settings = load_settings(args.data_dir)
    try:
        run_dbt(settings, "parse", "--quiet")
        sources = run_preflight(settings.dbt_manifest_path)
        print(f"preflight: {len(sources)} raw files readable")
        run_dbt(settings, "build", *(["--select", args.select] if args.select else []))
    except RawFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except DbtError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not args.select:
        return cmd_reconcile(args)
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Print the reconciliation and quarantine tables; non-zero if any row is unaccounted for."""
    from parity.warehouse import quarantine_summary, reconciliation

    settings = load_settings(args.data_dir)
    table = reconciliation(settings)
    _print_frame("Reconciliation (raw = canonical + quarantined + duplicates):", table)
    _print_frame("Quarantine by reason:", quarantine_summary(settings))
    lost = int(table["unaccounted_rows"].abs().sum())
    print(f"\nunaccounted rows: {lost}")
    return 0 if lost == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity", description=__doc__)
    parser.add_argument("--data-dir", help="data folder (default: $PARITY_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="check raw files, run dbt build, print the reconciliation")
    build.add_argument("--select", help="dbt selector (default: everything)")
    build.set_defaults(func=cmd_build)
    sub.add_parser("reconcile", help="print the reconciliation table").set_defaults(func=cmd_reconcile)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
