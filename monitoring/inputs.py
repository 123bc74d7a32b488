"""Reading the monitor's inputs; every problem becomes a message in the report, never a crash.

- reference: the saved training set of the current model (<data>/training/<service>/dataset-*.parquet,
  named in the model's metadata) restricted to its held-out test period, and the model's scores
  on those rows (the test-period score distribution);
- serving: the prediction log (<data>/serving/predictions/date=*/*.parquet; `features` is JSON),
  the drift window's day folders in full, older parts' score columns only;
- batch: the results files of `python -m batch score` (<data>/scores/scores_*.parquet);
- labels: the churn_labels mart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from parity import prediction_log
from parity.config import Settings
from parity.models import loaded, registry

NON_FEATURES = ("customer_id", "event_timestamp", "is_churned", "label_window_end_at")
SCORED_ROLES = ("primary", "canary")  # shadow rows duplicate a request with another model


@dataclass
class Reference:
    """Training rows to compare against, their features and the model's scores on them."""

    frame: pd.DataFrame | None = None
    features: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    path: Path | None = None
    model: Any | None = None
    scores: np.ndarray | None = None


@dataclass
class Sample:
    """A current sample: feature values (one column per feature) plus score columns."""

    name: str
    frame: pd.DataFrame | None
    description: str = ""
    missing_features: dict[str, int] = field(default_factory=dict)


def _dtype_of(series: pd.Series) -> str:
    return "String" if series.dtype == object or pd.api.types.is_string_dtype(series) else "Float64"


def load_reference(settings: Settings, model_name: str, mode: str, messages: list[str]) -> Reference:
    """The current model and its training set (test period or all rows); partial on problems."""
    ref = Reference()
    try:
        ref.model = loaded.load_current(settings, model_name)
    except registry.RegistryError as err:
        messages.append(f"no current '{model_name}' model ({err}); prediction drift uses the first batch")
    path = None
    if ref.model is not None:
        meta = ref.model.metadata
        candidate = settings.data_dir / "training" / meta["feature_service"] / meta["data_fingerprint"]["file"]
        if candidate.exists():
            path = candidate
        else:
            messages.append(f"training set {candidate} of {model_name}/{ref.model.version} is missing")
    if path is None:
        saved = sorted((settings.data_dir / "training").glob("*/dataset-*.parquet"), key=lambda p: p.stat().st_mtime)
        if saved:
            path = saved[-1]
            messages.append(f"using the newest saved training set {path} as the reference")
    if path is None:
        messages.append(
            f"no training set under {settings.data_dir / 'training'} (run `make train`): feature drift skipped"
        )
        return ref
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        messages.append(f"cannot read training set {path}: {err}; feature drift skipped")
        return ref
    ref.path = path
    if ref.model is not None:
        ref.features = [(name, dtype) for name, dtype in ref.model.metadata["features"]]
    else:
        ref.features = [(c, _dtype_of(frame[c])) for c in frame.columns if c not in NON_FEATURES]
    absent = [name for name, _ in ref.features if name not in frame.columns]
    if absent:
        messages.append(f"training set {path.name} lacks feature(s) {absent}: not compared")
        ref.features = [(n, t) for n, t in ref.features if n not in absent]
    description = f"all {len(frame)} training rows"
    if mode == "test_period" and ref.model is not None:
        start = pd.Timestamp(ref.model.metadata["training_window"]["test"]["as_of_min"])
        frame = frame[pd.to_datetime(frame["event_timestamp"], utc=True) >= start].reset_index(drop=True)
        description = f"{len(frame)} test-period rows (as-of >= {start.date()}) of {path.name}"
    ref.frame, ref.description = frame, description
    if ref.model is not None and len(frame):
        try:
            ref.scores = ref.model.predict_proba(ref.model.prepare(frame))[:, 1]
        except ValueError as err:  # prepare/xgboost refuse the frame (PrepareError, XGBoostError)
            messages.append(f"cannot score the reference rows with {model_name}/{ref.model.version}: {err}")
    return ref


def parse_features(values: pd.Series, features: list[tuple[str, str]]) -> tuple[pd.DataFrame, dict[str, int]]:
    """JSON feature snapshots -> one column per feature; counts rows lacking each feature key."""
    records = [json.loads(v) if isinstance(v, str) and v else {} for v in values]
    missing = {name: sum(name not in r for r in records) for name, _ in features}
    frame = pd.DataFrame.from_records(records, index=values.index, columns=[n for n, _ in features])
    for name, dtype in features:
        if dtype == "String":
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame, {k: v for k, v in missing.items() if v}


# the columns realised performance needs of a log row (`features`, most of a part's bytes, only
# the drift window needs)
SCORE_COLUMNS = ("request_id", "logged_at", "request_at", "customer_id", "model_version", "role", "status", "score")


def read_parquet_parts(parts: list[Path], messages: list[str], what: str,
                       columns: tuple[str, ...] | None = None) -> pd.DataFrame | None:
    """The given Parquet parts (only `columns` of them, those a part has; None: all);
    unreadable parts are skipped with a message."""
    if not parts:
        return None
    frames = []
    for part in parts:
        try:
            if columns is None:
                frames.append(pd.read_parquet(part))
            else:
                names = set(pq.read_schema(part).names)
                frames.append(pd.read_parquet(part, columns=[c for c in columns if c in names]))
        except (OSError, ValueError) as err:  # a corrupt part must not hide the others (ArrowInvalid)
            messages.append(f"{what}: cannot read {part}: {err}")
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_serving_log(settings: Settings, messages: list[str], since: datetime) -> pd.DataFrame | None:
    """The prediction log's scored rows (None with a message when there is no usable log): the
    day folders the drift window (logged at or after `since`) reaches in full, older parts only
    their SCORE_COLUMNS (realised performance judges old scores; `features` is left NULL)."""
    folder = settings.predictions_dir
    recent = prediction_log.parts(folder, logged_since=since)
    older = sorted(set(prediction_log.parts(folder)) - set(recent))
    frames = [f for f in (read_parquet_parts(recent, messages, "serving log"),
                          read_parquet_parts(older, messages, "serving log", SCORE_COLUMNS)) if f is not None]
    if not frames:
        messages.append(f"no serving logs under {folder}: serving drift not computed")
        return None
    frames = [f for f in frames if len(f)]
    log = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if log.empty:
        messages.append(f"the serving logs under {folder} are empty: serving drift not computed")
        return None
    if "features" not in log and not recent:
        log["features"] = None  # only older parts: nothing recent to compare (serving_sample says so)
    lacking = sorted({"logged_at", "status", "role", "features", "score", "customer_id"} - set(log.columns))
    if lacking:
        messages.append(f"serving logs lack column(s) {lacking}: serving drift not computed")
        return None
    log["logged_at"] = pd.to_datetime(log["logged_at"], utc=True)
    if "request_at" in log:
        log["request_at"] = pd.to_datetime(log["request_at"], utc=True)
    scored = log[(log["status"] == "ok") & log["role"].isin(SCORED_ROLES)]
    return scored.reset_index(drop=True)


def serving_sample(
    log: pd.DataFrame | None, features: list[tuple[str, str]], since: datetime, messages: list[str]
) -> Sample:
    """Recent scored serving requests with their logged features parsed into columns."""
    if log is None:
        return Sample("serving", None, "no serving logs")
    recent = log[log["logged_at"] >= pd.Timestamp(since)]
    if recent.empty:
        messages.append(
            f"no scored serving requests since {pd.Timestamp(since).isoformat()} ({len(log)} older "
            "log rows): serving drift not computed"
        )
        return Sample("serving", None, "no recent requests")
    parsed, missing = parse_features(recent["features"], features)
    for name, count in missing.items():
        messages.append(
            f"feature '{name}' is missing from {count} of {len(recent)} recent serving log rows"
            + (": not compared for serving" if count == len(recent) else ": compared on the others")
        )
    frame = parsed.drop(columns=[n for n, c in missing.items() if c == len(recent)]).copy()
    frame["score"] = recent["score"].astype("float64").to_numpy()
    frame["customer_id"] = recent["customer_id"].astype(str).to_numpy()
    frame["model_version"] = recent["model_version"].to_numpy() if "model_version" in recent else None
    return Sample(
        "serving", frame.reset_index(drop=True),
        f"{len(frame)} scored requests since {pd.Timestamp(since):%Y-%m-%d %H:%M} UTC", missing,
    )


def list_batches(settings: Settings) -> list[Path]:
    """Batch results files, oldest as-of first."""
    folder = settings.data_dir / "scores"
    return sorted(p for p in folder.glob("scores_*.parquet") if not p.name.startswith(".")) if folder.is_dir() else []


def read_batch(path: Path, messages: list[str]) -> pd.DataFrame | None:
    """One batch results file (None with a message when unreadable)."""
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:  # ArrowInvalid is a ValueError
        messages.append(f"cannot read batch results {path}: {err}")
        return None


def batch_sample(
    path: Path | None, features: list[tuple[str, str]], messages: list[str]
) -> Sample:
    """The latest batch's scored rows with parsed features."""
    if path is None:
        messages.append("no batch scores yet (run `python -m batch score`): batch drift not computed")
        return Sample("batch", None, "no batch scores")
    results = read_batch(path, messages)
    if results is None:
        return Sample("batch", None, "unreadable batch")
    if results.empty:
        messages.append(f"the latest batch {path.name} is empty (0 customers): batch drift not computed")
        return Sample("batch", None, f"{path.name}: empty")
    scored = results[results["status"] == "ok"]
    if scored.empty:
        messages.append(f"the latest batch {path.name} has no scored customer (all 'no_features')")
        return Sample("batch", None, f"{path.name}: nothing scored")
    parsed, missing = parse_features(scored["features"], features)
    for name, count in missing.items():
        messages.append(f"feature '{name}' is missing from {count} of {len(scored)} rows of {path.name}")
    frame = parsed.drop(columns=[n for n, c in missing.items() if c == len(scored)]).copy()
    frame["score"] = scored["score"].astype("float64").to_numpy()
    frame["customer_id"] = scored["customer_id"].astype(str).to_numpy()
    frame["model_version"] = scored["model_version"].to_numpy()
    as_of = pd.Timestamp(results["as_of_at"].iloc[0])
    return Sample("batch", frame.reset_index(drop=True),
                  f"{len(frame)} scored of {len(results)} customers, as of {as_of.isoformat()} ({path.name})",
                  missing)


def in_population(frame: pd.DataFrame, feature: str | None, minimum: float) -> pd.Series:
    """Rows in the training population (feature >= minimum); all rows when not configured/absent."""
    if not feature or feature not in frame.columns:
        return pd.Series(True, index=frame.index)
    return pd.to_numeric(frame[feature], errors="coerce").fillna(-np.inf) >= minimum


def read_labels(settings: Settings, messages: list[str]) -> pd.DataFrame | None:
    """churn_labels (customer_id, as_of_at, is_churned) or None with a message."""
    path = settings.marts_dir / "churn_labels.parquet"
    if not path.exists():
        messages.append(f"labels mart {path} does not exist: realised performance not computed")
        return None
    try:
        labels = pd.read_parquet(path, columns=["customer_id", "as_of_at", "is_churned"])
    except (OSError, ValueError) as err:
        messages.append(f"cannot read labels {path}: {err}; realised performance not computed")
        return None
    labels["as_of_at"] = pd.to_datetime(labels["as_of_at"], utc=True)
    return labels
