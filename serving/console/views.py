"""Pure view functions: platform data in, what a page shows out (no I/O, tested on their own)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from parity.models.prepare import PrepareSpec
from parity.models.reasons import column_reason
from serving.console.svg import Point

STATUS_WORDS = {
    "ok": "scored",
    "stale_features": "not scored: features too old",
    "unknown_customer": "not scored: customer unknown to the online store",
    "malformed_customer_id": "not scored: customer unknown (not a valid id for this client)",
}


def fmt_value(value: Any, digits: int = 3) -> str:
    """A value as the console prints it: whole numbers without decimals, others to `digits`."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.{digits}f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


@dataclass(frozen=True)
class Reason:
    """One top contribution in words, with the number behind it."""

    sentence: str
    column: str
    value: Any
    contribution: float


def reasons(contributions: Sequence[Mapping[str, Any]], spec: PrepareSpec | None) -> list[Reason]:
    """/v1/predict's top contributions as sentences (largest |contribution| first, as returned)."""
    out = []
    for c in contributions:
        column, value, contribution = c["feature"], c.get("value"), float(c["contribution"])
        if spec is not None:
            sentence = column_reason(spec, column, value, contribution)
        else:  # the model's spec is unreadable: still show the number, plainly
            sentence = f"{column} = {value} ({'raises' if contribution > 0 else 'lowers'} risk)"
        out.append(Reason(sentence, column, value, contribution))
    return out


def feature_rows(columns: Mapping[str, Sequence[Any]], names: Sequence[str]) -> list[tuple[str, Any]]:
    """(feature, value) of a one-customer online read, in the feature service's order."""
    rows = []
    for name in names:
        values = columns.get(name)
        value = values[0] if values else None
        if isinstance(value, float) and math.isnan(value):
            value = None
        rows.append((name, value))
    return rows


def history_points(frame: pd.DataFrame) -> list[Point]:
    """Scored rows of a score history (online and batch) as chart points with a tooltip each."""
    points = []
    for row in frame.itertuples(index=False):
        if row.score is None or pd.isna(row.score):
            continue
        at = pd.Timestamp(row.at).to_pydatetime()
        label = f"{row.source} {at:%Y-%m-%d %H:%M} UTC: {row.score:.3f} ({row.model_version})"
        points.append(Point(at, float(row.score), row.source, label))
    return points


def expected_value(probability: float, costs: Mapping[str, float]) -> float:
    """What acting on a flag is worth: the churn loss it may save minus the offer it may waste.

    p x false_negative (a churner we reach) - (1 - p) x false_positive (an offer to a stayer):
    the same costs the model's threshold minimises, so it is positive above the break-even."""
    return probability * costs["false_negative"] - (1.0 - probability) * costs["false_positive"]


def review_queue(flagged: pd.DataFrame, costs: Mapping[str, Mapping[str, float] | None],
                 decided: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pending, reviewed) flagged customers of a batch, pending ordered by expected value.

    `costs` maps model version -> its costs (None: unknown, expected value left empty and those
    rows go last); `decided` holds the batch's decisions (`parity.reviews.decisions`)."""
    frame = flagged.copy()
    frame["expected_value"] = [
        expected_value(p, costs[v]) if costs.get(v) else math.nan
        for p, v in zip(frame["score"], frame["model_version"])]
    latest = decided[decided["is_latest"]] if len(decided) else decided
    done = set(latest["customer_id"]) if len(latest) else set()
    pending = frame[~frame["customer_id"].isin(done)].sort_values(
        ["expected_value", "customer_id"], ascending=[False, True], na_position="last", kind="stable")
    reviewed = frame[frame["customer_id"].isin(done)]
    if len(reviewed):
        cols = ["customer_id", "decided_at", "who", "action", "reason", "note"]
        reviewed = reviewed.merge(latest[cols], on="customer_id", how="left").sort_values(
            "decided_at", ascending=False, kind="stable")
    return pending.reset_index(drop=True), reviewed.reset_index(drop=True)


def model_rows(versions: Sequence[Any], pointer: Mapping[str, Any] | None, canary: str | None,
               shadow: str | None, metric: str = "PR-AUC") -> list[dict[str, Any]]:
    """One row per registered version: its roles, window, threshold, costs and the production
    model's test metric against the as-is rule, each with its confidence interval."""
    current = (pointer or {}).get("version")
    rows = []
    for v in versions:
        meta = v.metadata
        test = (meta.get("metrics") or {}).get("test") or {}
        roles = [name for name, version in (("current", current), ("canary", canary), ("shadow", shadow))
                 if version == v.version]
        window = (meta.get("training_window") or {}).get("test") or {}
        rows.append({
            "version": v.version, "roles": roles, "problem": v.problem,
            "feature_service": meta.get("feature_service"), "threshold": meta.get("threshold"),
            "costs": meta.get("costs"), "test_window": (window.get("as_of_min"), window.get("as_of_max")),
            "test_rows": window.get("rows"),
            "metrics": {name: (test.get(name) or {}).get(metric) for name in test},
            "git_commit": meta.get("git_commit"),
            "fairness": [f for f in meta.get("fairness") or [] if isinstance(f, Mapping)],
        })
    return rows


def health_by_client(clients: Sequence[str], reconciliation: pd.DataFrame, quarantine: pd.DataFrame,
                     watermarks: Mapping[str, datetime]) -> list[dict[str, Any]]:
    """Per onboarded client: its reconciliation rows, quarantine reasons, watermark, and whether
    every raw row is accounted for."""
    out = []
    for client in clients:
        rec = reconciliation[reconciliation["client_id"] == client] if len(reconciliation) else reconciliation
        qua = quarantine[quarantine["client_id"] == client] if len(quarantine) else quarantine
        unaccounted = int(rec["unaccounted_rows"].sum()) if len(rec) and "unaccounted_rows" in rec else None
        out.append({"client_id": client, "reconciliation": rec.to_dict("records"),
                    "quarantine": qua.to_dict("records"), "watermark_at": watermarks.get(client),
                    "unaccounted_rows": unaccounted, "built": len(rec) > 0})
    return out
