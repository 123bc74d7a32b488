"""`python -m monitoring`: drift, prediction drift, realised performance and freshness.

Compares the training set (reference) with recent serving logs and the latest batch scores,
writes <data>/reports/monitoring/report.html (tables + embedded plots) and summary.json, and
exits with status 3 (monitoring/config.yaml: alert_exit_code) when any threshold is crossed,
0 otherwise, 2 when it cannot run at all. Missing or bad inputs are messages in the report.

--retrain trains a candidate (never auto-promoted) and promotes it only if it beats the current
model on the candidate's held-out test period (both re-scored on the same rows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitoring.config import DEFAULT_CONFIG, MonitoringError, load_config
from parity.cli import parse_time, quiet_feast
from parity.config import load_settings


def parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    p = argparse.ArgumentParser(prog="python -m monitoring", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="data folder (default: $PARITY_DATA_DIR or ./data)")
    p.add_argument("--config", type=Path, default=None, help=f"YAML thresholds (default: {DEFAULT_CONFIG})")
    p.add_argument("--now", type=parse_time, default=None,
                   help="evaluate freshness and the serving window as of this ISO time (default: now)")
    p.add_argument("--retrain", action="store_true",
                   help="train a candidate and promote it only if it beats the current model")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parser().parse_args(argv)
    from parity.features.feature_store import FeatureStoreError
    from parity.models.registry import RegistryError

    try:
        config = load_config(args.config)
    except MonitoringError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    settings = load_settings(args.data_dir)
    quiet_feast()
    from monitoring.pipeline import collect, write

    findings = collect(settings, config, args.now)
    code = 0
    if args.retrain:
        from monitoring.retrain import retrain
        from training.errors import TrainingError

        quiet_feast()  # again: the imports above may install their own filters
        try:
            outcome = retrain(settings, config.retrain, config.model_name)
            findings.retrain = outcome.as_dict()
        except (TrainingError, RegistryError, FeatureStoreError) as err:
            findings.retrain = {"error": str(err)}
            print(f"error: retraining failed: {err}", file=sys.stderr)
            code = 2
    report, summary = write(findings)
    print(f"status: {findings.status.upper()} ({len(findings.alerts)} threshold(s) crossed)")
    for alert in findings.alerts:
        print(f"  ALERT {alert['check']}: {alert['subject']} — {alert['detail']}")
    for message in findings.messages:
        print(f"  note: {message}")
    if findings.retrain and "error" not in findings.retrain:
        r = findings.retrain
        current = "n/a" if r["current_value"] is None else f"{r['current_value']:.4f}"
        print(f"retrain: candidate {r['candidate']} {r['metric']} {r['candidate_value']:.4f} vs current "
              f"{r['current']} {current} on {r['period']['rows']} test rows -> "
              f"{'PROMOTED' if r['promoted'] else 'not promoted'} ({r['reason']})")
        for note in r["notes"]:
            print(f"  note: {note}")
    print(f"report: {report}\nsummary: {summary}")
    if code:
        return code
    return config.alert_exit_code if findings.alerts else 0


if __name__ == "__main__":
    raise SystemExit(main())
