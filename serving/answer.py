"""The answer to a prediction request, as a plain function of what was read: per customer the
response item (ok, stale_features, unknown_customer or malformed_customer_id) and the log rows
(primary, canary and shadow scores), built by name. No I/O: the route reads features before and logs after."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from parity.jsonable import features_json
from serving.log import LogRow
from serving.metrics import Metrics
from serving.models import ActiveModels, canary_bucket
from serving.predict import score_columns

log = logging.getLogger("serving")
# not in the online store; the second because the id breaks its client's declared pattern
UNKNOWN, MALFORMED = "unknown_customer", "malformed_customer_id"


@dataclass(frozen=True)
class Answer:
    """The response body's predictions (request order) and the records to log, one list per
    log column in SCHEMA order (`PredictionLog.extend_columns`)."""

    predictions: list[dict[str, Any]]
    columns: list[list[Any]]

    @property
    def rows(self) -> list[LogRow]:
        """The records as LogRows (tests and tools; the request path logs `columns`)."""
        return [LogRow(*values) for values in zip(*self.columns)]


class _Records:
    """The log records of one answer, column by column (arms are appended in bulk)."""

    def __init__(self) -> None:
        self.rows: list[int] = []  # request position of each record
        self.roles: list[str] = []
        self.versions: list[str] = []
        self.statuses: list[str] = []
        self.scores: list[float | None] = []
        self.decisions: list[bool | None] = []

    def add(self, rows: list[int], role: str, version: str, status: str,
            scores: list[float | None] | None = None, decisions: list[bool | None] | None = None) -> None:
        n = len(rows)
        self.rows += rows
        self.roles += [role] * n
        self.versions += [version] * n
        self.statuses += [status] * n
        self.scores += scores if scores is not None else [None] * n
        self.decisions += decisions if decisions is not None else [None] * n


def subset(columns: dict[str, list[Any]], rows: list[int]) -> dict[str, list[Any]]:
    """The given rows of a column dict (the online read), in order (the columns themselves when
    that is every row: the usual request, every customer known and no canary)."""
    if rows and len(rows) == rows[-1] + 1 == len(next(iter(columns.values()), ())):
        return columns  # rows are ascending and distinct, so this is 0..n-1
    return {name: [values[i] for i in rows] for name, values in columns.items()}


def add_segments(model: Any, frame: Any, rows: list[int], results: list[dict[str, Any] | None]) -> None:
    """segment_id / segment_name of the scored rows; a segments problem never fails a prediction."""
    try:
        ids = model.assign(subset(frame, rows))
    except ValueError as err:  # e.g. the segments model needs a feature this service lacks
        log.warning("segments not assigned (%s/%s): %s", model.feature_service, model.version, err)
        return
    for j, i in enumerate(rows):
        results[i]["segment_id"] = int(ids[j])
        results[i]["segment_name"] = model.names[int(ids[j])]


def _item(customer_id: str, status: str, version: str, fresh: dict[str, Any] | None) -> dict[str, Any]:
    """A response item without a score, in schemas.Prediction's field order."""
    fresh = fresh or {}
    return {"customer_id": customer_id, "status": status, "score": None, "decision": None,
            "model_version": version, "contributions": [], "segment_id": None, "segment_name": None,
            "features_at": fresh.get("features_at"), "feature_age_days": fresh.get("feature_age_days"),
            "watermark_at": fresh.get("watermark_at"), "detail": fresh.get("detail")}


def answer(active: ActiveModels, segments: Any | None, frame: dict[str, list[Any]], feature_names: Sequence[str],
           ids: Sequence[str], times: Sequence[datetime], found: Sequence[bool], fresh: Sequence[dict | None],
           stale: Sequence[int], request_id: str, started: float, top_k: int, canary_share: float,
           metrics: Metrics, malformed: Mapping[int, str] | None = None) -> Answer:
    """Score the known, fresh customers (primary or canary arm by customer hash; shadow on all of
    them), answer the others with their status, and build the log rows (latency up to now).
    `malformed`: request position -> why that key's id breaks its client's pattern (those not
    found are answered `malformed_customer_id` with it as `detail`, not `unknown_customer`)."""
    results: list[dict[str, Any] | None] = [None] * len(ids)
    present = [i for i, ok in enumerate(found) if ok]
    skipped = set(stale)
    known = [i for i in present if i not in skipped] if skipped else present
    arms: dict[str, tuple[Any, list[int]]] = {"primary": (active.primary, [])}
    if active.canary is not None and canary_share > 0:
        arms["canary"] = (active.canary, [])
    for i in known:
        arms["canary" if "canary" in arms and canary_bucket(ids[i]) < canary_share else "primary"][1].append(i)
    records = _Records()
    for role, (model, rows) in arms.items():
        if not rows:
            continue
        scored = score_columns(model, subset(frame, rows), top_k)
        scores, decisions = scored.scores.tolist(), scored.decisions.tolist()
        for j, i in enumerate(rows):
            # the field order of schemas.Prediction (the response is built as plain JSON)
            results[i] = {"customer_id": ids[i], "status": "ok", "score": scores[j], "decision": decisions[j],
                          "model_version": model.version, "contributions": scored.top[j],
                          "segment_id": None, "segment_name": None, **fresh[i], "detail": None}
        records.add(rows, role, model.version, "ok", scores, decisions)
        metrics.scores.observe_many(model.version, scored.scores)
        metrics.predictions.labels(model.version, role).inc(len(rows))
    if segments is not None and known:
        add_segments(segments, frame, known, results)
    if active.shadow is not None and known:
        shadow = score_columns(active.shadow, subset(frame, known), 0)
        records.add(known, "shadow", active.shadow.version, "ok", shadow.scores.astype(float).tolist(),
                    shadow.decisions.astype(bool).tolist())
        metrics.predictions.labels(active.shadow.version, "shadow").inc(len(known))
    primary = active.primary.version
    for i in stale:  # too old to score: the answer says so, with the ages (never a score)
        results[i] = _item(ids[i], fresh[i]["status"], primary, fresh[i])
        records.add([i], "primary", primary, fresh[i]["status"])
    if stale:
        metrics.stale.inc(len(stale))
    unknown = [i for i, ok in enumerate(found) if not ok]
    if unknown:  # (counted alike in parity_unknown_customers_total: neither is in the online store)
        metrics.unknown.inc(len(unknown))
        if malformed:
            bad = [i for i in unknown if i in malformed]
            unknown = [i for i in unknown if i not in malformed]
            for i in bad:
                results[i] = _item(ids[i], MALFORMED, primary, {"detail": malformed[i]})
            if bad:
                records.add(bad, "primary", primary, MALFORMED)
        for i in unknown:
            results[i] = _item(ids[i], UNKNOWN, primary, None)
        if unknown:
            records.add(unknown, "primary", primary, UNKNOWN)
    latency = (time.perf_counter() - started) * 1000
    logged_at = datetime.now(timezone.utc)
    features = features_json(frame, present, feature_names)
    m, where = len(records.rows), records.rows
    columns = [[request_id] * m, [logged_at] * m, [times[i] for i in where], [ids[i] for i in where],
               records.versions, records.roles, records.statuses, records.scores, records.decisions,
               [latency] * m, [features.get(i) for i in where]]
    return Answer(results, columns)
