"""`python -m monitoring.consistency` (`make consistency`): online/offline consistency measured from
the prediction log.

Reads every logged prediction (serving's Parquet log parts; batch results files too), recomputes
the offline point-in-time features at each record's request_at through parity.features.retrieval
and reports per feature the mismatch rate, SMAPE for numerics and values missing on one side
(parity.features.consistency). Writes <data>/reports/consistency/report.html (table, mismatch
rate over time, examples) and summary.json, and exits with status 3 (monitoring/config.yaml:
alert_exit_code) when a feature's mismatch rate is above `consistency.max_mismatch_rate`, 0
otherwise (also when the log holds no scored row: status `empty`), 2 when it cannot run (also when
scored rows exist and none could be compared, e.g. no model registry to name their feature service).
Records still in the log's write-ahead segments (the last few seconds of a running service) are
compacted into parts by the service and read by the next run.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring.config import DEFAULT_CONFIG, ConsistencyConfig, MonitoringError, load_config
from parity.config import Settings, load_settings
from parity.features.consistency import Consistency, Tolerance, breaches, check, log_files
from parity.jsonable import jsonable

REPORT_DIR = ("reports", "consistency")
WAL_DIR = "_wal"  # serving.log.WAL_DIR: segments not yet compacted into parts


def service_resolver(settings: Settings, model_name: str) -> Any:
    """model version -> the feature service it was trained on (None when the registry lacks it)."""
    from parity.models import registry

    cache: dict[str, str | None] = {}

    def service_of(version: str) -> str | None:
        if version not in cache:
            try:
                cache[version] = str(registry.read_metadata(settings.registry_dir, model_name, version)["feature_service"])
            except (registry.RegistryError, KeyError, OSError, ValueError):
                cache[version] = None
        return cache[version]

    return service_of


def run(settings: Settings, config: ConsistencyConfig, model_name: str) -> Consistency:
    """The consistency check of the data folder's prediction log."""
    from parity.features.feature_store import open_store

    files = log_files(settings.predictions_dir, settings.scores_dir if config.include_batch else None)
    store = open_store(settings)
    found = check(store, files, service_resolver(settings, model_name), max_rows=config.max_rows,
                  chunk_rows=config.chunk_rows, max_examples=config.max_examples,
                  tolerance=Tolerance(config.relative_tolerance, config.absolute_tolerance))
    wal = settings.predictions_dir / WAL_DIR
    waiting = [p for p in wal.glob("*.wal") if p.stat().st_size] if wal.is_dir() else []
    if waiting:
        found.notes.append(f"{len(waiting)} write-ahead segment(s) under {wal} are not compacted yet "
                           "(a running service compacts them within seconds; a stopped one at its next start): not read")
    if not files:
        found.notes.append(f"no prediction log parts under {settings.predictions_dir}"
                           + (f" and no batch results under {settings.scores_dir}" if config.include_batch else ""))
    return found


def status_of(found: Consistency, alerts: list[dict[str, Any]]) -> str:
    """'alert' (a threshold crossed), 'empty' (nothing compared) or 'ok'."""
    if alerts:
        return "alert"
    return "ok" if found.checked_rows else "empty"


def summary(found: Consistency, config: ConsistencyConfig, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON summary: status, counts, throughput, per-feature table, examples and notes."""
    return jsonable({
        "status": status_of(found, alerts),
        "generated_at": datetime.now(timezone.utc),
        "log_rows": found.log_rows,
        "sampled_rows": found.sampled_rows,
        "checked_rows": found.checked_rows,
        "statuses": found.statuses,  # answers by status: only `ok` rows are compared
        "no_offline_row": found.no_offline_row,
        "seconds": found.seconds,
        "throughput_rows_per_second": found.throughput,
        "alerts": alerts,
        "features": found.features().to_dict("records"),
        "over_time": found.over_time().to_dict("records"),
        "examples": found.examples,
        "notes": found.notes,
        "config": config.as_dict(),
    })


def plot_over_time(found: Consistency) -> str:
    """Mismatch rate per day of request_at: one line per feature that ever mismatched, plus all."""
    from parity.report import png_data_uri, pyplot

    daily = found.over_time()
    if daily.empty:
        return ""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    overall = daily.groupby("day")[["compared", "mismatches"]].sum()
    ax.plot(overall.index, overall["mismatches"] / overall["compared"], marker="o", color="black", label="all features")
    bad = daily.groupby(["feature_service", "feature"])["mismatches"].sum()
    for (service, feature) in bad[bad > 0].sort_values(ascending=False).index[:8]:
        part = daily[(daily["feature_service"] == service) & (daily["feature"] == feature)]
        ax.plot(part["day"], part["mismatch_rate"], marker=".", label=f"{service}/{feature}")
    ax.set(xlabel="request_at (day, UTC)", ylabel="mismatch rate", title="Online/offline mismatches over time")
    ax.set_ylim(bottom=0)
    rows = ax.twinx()  # how many predictions each day's rate rests on
    rows.bar(overall.index, overall["compared"] / max(daily["feature"].nunique(), 1), width=0.8, alpha=0.2,
             color="tab:blue")
    rows.set_ylabel("logged predictions compared", color="tab:blue")
    ax.set_zorder(rows.get_zorder() + 1)
    ax.patch.set_visible(False)
    if len(overall) == 1:  # one day: a readable window instead of years of empty axis
        day = overall.index[0]
        ax.set_xlim(day - pd.Timedelta(days=3), day + pd.Timedelta(days=3))
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return png_data_uri(fig)


def render(found: Consistency, config: ConsistencyConfig, alerts: list[dict[str, Any]]) -> str:
    """The report page (monitoring/templates/consistency_report.html)."""
    from parity.report import render as render_page

    table = found.features()
    if len(table):
        over = table["mismatch_rate"] > config.max_mismatch_rate
        table.insert(0, "status", ["alert" if o else "ok" for o in over])
    context = {"title": "Parity consistency", "heading": "Online/offline consistency from the prediction log",
               "status": status_of(found, alerts), "found": found, "cfg": config, "features": table,
               "alerts": pd.DataFrame(alerts), "examples": pd.DataFrame(found.examples),
               "statuses": pd.DataFrame([{"status": k, "rows": v} for k, v in sorted(found.statuses.items())]),
               "plot": plot_over_time(found), "settings": json.dumps(config.as_dict(), indent=2)}
    return render_page("monitoring", "consistency_report.html", context)


def write(found: Consistency, config: ConsistencyConfig, alerts: list[dict[str, Any]], out: Path) -> tuple[Path, Path]:
    """report.html and summary.json under `out` (each replaced atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("report.html", render(found, config, alerts)),
                       ("summary.json", json.dumps(summary(found, config, alerts), indent=2, sort_keys=True) + "\n")):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)
        paths.append(out / name)
    return paths[0], paths[1]


def parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    p = argparse.ArgumentParser(prog="python -m monitoring.consistency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", help="data folder (default: $PARITY_DATA_DIR or ./data)")
    p.add_argument("--config", type=Path, default=None, help=f"YAML overrides (default: {DEFAULT_CONFIG})")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key for this run, e.g. --set consistency.max_mismatch_rate=0.01")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from parity import yaml_config
    from parity.cli import quiet_feast
    from parity.features.feature_store import FeatureStoreError

    args = parser().parse_args(argv)
    try:
        config = load_config(args.config, yaml_config.parse_assignments(args.assignments, MonitoringError))
    except MonitoringError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    settings = load_settings(args.data_dir)
    quiet_feast()
    c = config.consistency
    try:
        found = run(settings, c, config.model_name)
    except (FeatureStoreError, OSError, ValueError) as err:
        print(f"error: consistency check cannot run: {err}", file=sys.stderr)
        return 2
    alerts = breaches(found, c.max_mismatch_rate, c.min_rows)
    report, summary_path = write(found, c, alerts, settings.data_dir.joinpath(*REPORT_DIR))
    print(f"consistency: {status_of(found, alerts).upper()} — {found.checked_rows:,} logged predictions compared "
          f"({found.log_rows:,} logged rows; by status: {found.statuses}), {found.throughput:,.0f} rows/s")
    for a in alerts:
        print(f"  ALERT {a['feature_service']}/{a['feature']}: mismatch rate {a['mismatch_rate']:.4f} "
              f"({a['mismatches']} of {a['compared']}) > {c.max_mismatch_rate:g}")
    for note in found.notes:
        print(f"  note: {note}")
    print(f"report: {report}\nsummary: {summary_path}")
    if not found.checked_rows and found.statuses.get("ok"):  # scored rows exist, none could be checked
        print(f"error: none of the {found.statuses['ok']:,} scored log rows could be compared (see the notes)",
              file=sys.stderr)
        return 2
    return config.alert_exit_code if alerts else 0


if __name__ == "__main__":
    raise SystemExit(main())
