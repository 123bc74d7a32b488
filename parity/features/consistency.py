"""Online/offline consistency measured from the prediction log.

Every logged prediction says which customer was scored, for which time (`request_at`), by which
model version and with which feature values. This module reads those records (serving's Parquet
log parts and batch scoring's results files), recomputes the offline point-in-time features of
each (customer, request_at) through `parity.features.retrieval.training_frame` — the same path
training uses — and compares them value by value, per feature: mismatches, missing on one side,
SMAPE for numerics, and per day of `request_at`.

Answers that used no features (`unknown_customer`, `malformed_customer_id`, `no_features`) and
answers not scored on them (`stale_features`) are counted by status, never compared: they are
not mismatches. The feature
service of a record is the one its results file names (batch) or the one its model version was
trained on (the caller's `service_of`, from the model registry). Huge logs are sampled
deterministically (a hash of request id and customer, so a rerun checks the same records) and
streamed part by part in chunks.

May import: parity.features (retrieval), parity utilities.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from parity.features.retrieval import ENTITY_KEY, TIME_COLUMN, service_schema, training_frame

CHECKED = "ok"  # the only status whose features were used for a score
COLUMNS = ("source", "request_id", "customer_id", "request_at", "model_version", "role", "status",
           "feature_service", "features")
ROLE_ORDER = {"primary": 0, "batch": 0, "canary": 1, "shadow": 2}  # which duplicate row is kept
NUMERIC = ("Float64", "Int64")


@dataclass(frozen=True)
class Tolerance:
    """When two numbers are equal: |a - b| <= absolute + relative * max(|a|, |b|)."""

    relative: float = 1e-9
    absolute: float = 1e-9


@dataclass
class FeatureTally:
    """Running counts of one feature of one feature service."""

    dtype: str
    compared: int = 0
    mismatches: int = 0
    value_mismatches: int = 0
    missing_offline: int = 0  # logged a value, offline has none
    missing_logged: int = 0  # offline has a value, the log has none
    type_mismatches: int = 0  # a logged value of another kind (text for a number, ...)
    smape_sum: float = 0.0
    smape_rows: int = 0


@dataclass
class Consistency:
    """What a check found; `features()` and `over_time()` are its tables."""

    tallies: dict[tuple[str, str], FeatureTally] = field(default_factory=dict)
    daily: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)  # (day, service, feature) -> [compared, mismatches]
    statuses: dict[str, int] = field(default_factory=dict)  # logged rows by status (after dedup and sampling)
    not_offline: dict[tuple[str, str], int] = field(default_factory=dict)  # logged feature the service lacks
    not_logged: dict[tuple[str, str], int] = field(default_factory=dict)  # service feature absent from the log
    no_offline_row: int = 0  # checked rows with values logged and none offline
    examples: list[dict[str, Any]] = field(default_factory=list)
    log_rows: int = 0  # rows in the log (before dedup and sampling)
    sampled_rows: int = 0
    checked_rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Logged predictions checked per second (reading, retrieval and comparison)."""
        return self.checked_rows / self.seconds if self.seconds > 0 else float("nan")

    def features(self) -> pd.DataFrame:
        """One row per (feature service, feature): counts, mismatch rate, SMAPE."""
        rows = []
        for (service, name), t in sorted(self.tallies.items()):
            rows.append({"feature_service": service, "feature": name, "type": t.dtype, "compared": t.compared,
                         "mismatches": t.mismatches, "mismatch_rate": t.mismatches / t.compared if t.compared else math.nan,
                         "value_mismatches": t.value_mismatches, "missing_offline": t.missing_offline,
                         "missing_logged": t.missing_logged, "type_mismatches": t.type_mismatches,
                         "smape": t.smape_sum / t.smape_rows if t.smape_rows else math.nan})
        for kind, counts in (("not_offline", self.not_offline), ("not_logged", self.not_logged)):
            for (service, name), count in sorted(counts.items()):
                rows.append({"feature_service": service, "feature": name, "type": kind, "compared": count,
                             "mismatches": count, "mismatch_rate": 1.0})
        return pd.DataFrame(rows)

    def over_time(self) -> pd.DataFrame:
        """Per day of request_at and feature: rows compared and mismatches."""
        rows = [{"day": pd.Timestamp(day), "feature_service": s, "feature": f, "compared": c, "mismatches": m,
                 "mismatch_rate": m / c if c else math.nan} for (day, s, f), (c, m) in sorted(self.daily.items())]
        return pd.DataFrame(rows, columns=["day", "feature_service", "feature", "compared", "mismatches", "mismatch_rate"])


# ------------------------------------------------------------------ reading the log

def _parts(folder: Path) -> list[Path]:
    """Parquet parts under a folder, without hidden/temporary files and `_`-folders (the WAL)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.parquet")
                  if not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts))


def log_files(predictions_dir: Path, scores_dir: Path | None) -> list[tuple[str, Path]]:
    """(source, file) of every serving log part and batch results file."""
    files = [("serving", p) for p in _parts(predictions_dir)]
    if scores_dir is not None and scores_dir.is_dir():
        files += [("batch", p) for p in sorted(scores_dir.glob("scores_*.parquet"))]
    return files


def _normalised(source: str, path: Path, table: pa.Table) -> pd.DataFrame:
    """A log part or results file as the COLUMNS frame (request_at falls back to logged_at)."""
    names = set(table.column_names)
    if source == "batch":
        need = {"customer_id", "as_of_at", "status", "model_version", "features"}
    else:
        need = {"request_id", "customer_id", "model_version", "role", "status", "features"}
    lacking = sorted(need - names)
    if lacking:
        raise ValueError(f"{path}: lacks column(s) {lacking}")
    frame = table.to_pandas()
    out = pd.DataFrame({"source": source, "customer_id": frame["customer_id"].astype(str)})
    if source == "batch":
        out["request_id"] = f"batch:{path.name}"
        out["request_at"] = pd.to_datetime(frame["as_of_at"], utc=True, cache=False)
        out["role"] = "batch"
        out["feature_service"] = frame["feature_service"] if "feature_service" in names else None
    else:
        out["request_id"] = frame["request_id"].astype(str)
        at = frame["request_at"] if "request_at" in names else frame["logged_at"]
        at = at.fillna(frame["logged_at"]) if "logged_at" in names else at
        out["request_at"] = pd.to_datetime(at, utc=True, cache=False)  # cache: iterates every value
        out["role"] = frame["role"]
        out["feature_service"] = None
    for name in ("model_version", "status", "features"):
        out[name] = frame[name]
    return out[list(COLUMNS)]


def sample_mask(frame: pd.DataFrame, rate: float) -> np.ndarray:
    """Deterministic sample: a row is kept when the hash of (request id, customer) is below `rate`."""
    if rate >= 1:
        return np.ones(len(frame), dtype=bool)
    hashes = pd.util.hash_pandas_object(frame[["request_id", "customer_id"]], index=False).to_numpy()
    return hashes < np.uint64(int(rate * 2.0**64) - 1)


def read_log(files: Sequence[tuple[str, Path]], max_rows: int, chunk_rows: int,
             found: Consistency) -> Iterator[pd.DataFrame]:
    """Chunks of checkable rows (status ok, one row per request and customer), sampled down to about
    `max_rows`; every row's status is counted in `found.statuses`. Unreadable files are notes."""
    sizes = {}
    for _, path in files:
        try:
            sizes[path] = pq.ParquetFile(path).metadata.num_rows
        except Exception as err:  # a corrupt part must not hide the others (ArrowInvalid, OSError)
            found.notes.append(f"cannot read {path}: {err}")
    found.log_rows = sum(sizes.values())
    rate = 1.0 if found.log_rows <= max_rows else max_rows / found.log_rows
    if rate < 1:
        found.notes.append(f"sampled {rate:.2%} of {found.log_rows:,} logged rows (max_rows {max_rows:,})")
    pending: list[pd.DataFrame] = []
    waiting = 0
    for source, path in files:
        if path not in sizes:
            continue
        try:
            frame = _normalised(source, path, pq.read_table(path))
        except Exception as err:
            found.notes.append(f"cannot read {path}: {err}")
            continue
        frame = frame[sample_mask(frame, rate)]
        # a shadow or canary row repeats its request's features: keep one row per request and customer
        frame = frame.assign(_order=frame["role"].map(ROLE_ORDER).fillna(9))
        frame = frame.sort_values("_order", kind="stable").drop_duplicates(["request_id", "customer_id"])
        frame = frame.drop(columns="_order")
        found.sampled_rows += len(frame)
        for status, count in frame["status"].value_counts(dropna=False).items():
            found.statuses[str(status)] = found.statuses.get(str(status), 0) + int(count)
        checked = frame[frame["status"] == CHECKED]
        if len(checked):
            pending.append(checked)
            waiting += len(checked)
        if waiting >= chunk_rows:
            yield pd.concat(pending, ignore_index=True)
            pending, waiting = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True)


# ------------------------------------------------------------------ comparing

class LoggedColumns:
    """The logged feature objects of a chunk as columns: one pandas column per key (numbers and
    booleans in numeric dtypes when every value is one, else python objects) and which rows carry
    each key at all (a key the log lacks is not a null)."""

    def __init__(self, texts: Sequence[str | None]):
        docs = [orjson.loads(t) if t is not None else {} for t in texts]
        self.frame = pd.DataFrame.from_records(docs) if docs else pd.DataFrame()
        self.frame.index = range(len(docs))
        shapes = pd.Series([frozenset(d) for d in docs], dtype=object) if docs else pd.Series(dtype=object)
        self._shapes = shapes.value_counts()  # most logs have one key set: presence is then per shape
        self._inverse = pd.factorize(shapes)[0] if docs else np.zeros(0, dtype=int)
        self._keys = list(pd.factorize(shapes)[1]) if docs else []

    @property
    def names(self) -> set[str]:
        return set(self.frame.columns)

    def present(self, name: str) -> np.ndarray:
        """Rows whose logged object has the key `name`."""
        has = np.array([name in keys for keys in self._keys], dtype=bool)
        return has[self._inverse] if len(self._inverse) else np.zeros(0, dtype=bool)

    def column(self, name: str) -> pd.Series:
        return self.frame[name] if name in self.frame.columns else pd.Series([None] * len(self.frame), dtype=object)


def _numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Logged JSON values as floats (NaN for null; int and float alike) and where a value was of
    another kind (text, bool: a type mismatch, never coerced)."""
    if values.dtype.kind in "fiu":
        return values.to_numpy(dtype="float64", na_value=np.nan), np.zeros(len(values), dtype=bool)
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = float(v)
        else:
            bad[i] = True
    return out, bad


def _objects(values: pd.Series, dtype: str) -> tuple[pd.Series, np.ndarray]:
    """Logged values of a non-numeric feature and where one is of another kind (never coerced)."""
    objects = values.astype(object).where(values.notna(), None)
    if dtype == "UnixTimestamp":
        texts = objects.map(lambda v: None if v is None else str(v))
        parsed = pd.to_datetime(texts, utc=True, errors="coerce", format="mixed", cache=False)
        return parsed, (objects.notna() & parsed.isna()).to_numpy()
    want = bool if dtype == "Bool" else str
    bad = np.array([v is not None and type(v) is not want for v in objects.tolist()], dtype=bool)
    return objects, bad


def compare_feature(dtype: str, logged: Sequence[Any] | pd.Series, offline: pd.Series,
                    tol: Tolerance) -> dict[str, np.ndarray]:
    """Row masks for one feature: `mismatch` (any kind), `value`, `missing_offline`,
    `missing_logged`, `type`, and the per-row SMAPE (NaN where not defined)."""
    logged = logged if isinstance(logged, pd.Series) else pd.Series(list(logged), dtype=object)
    offline = offline.reset_index(drop=True)
    n = len(logged)
    smape = np.full(n, np.nan)
    if dtype in NUMERIC:
        a, bad = _numbers(logged)
        b = pd.to_numeric(offline).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        has_a, has_b = ~np.isnan(a) & ~bad, ~np.isnan(b)
        both = has_a & has_b
        diff = np.abs(a - b)
        value = both & ~(diff <= tol.absolute + tol.relative * np.maximum(np.abs(a), np.abs(b)))
        denom = np.abs(a) + np.abs(b)
        with np.errstate(invalid="ignore", divide="ignore"):
            smape[both] = np.where(denom[both] == 0, 0.0, 2 * diff[both] / denom[both])
    else:
        a_obj, bad = _objects(logged, dtype)
        b_obj = pd.to_datetime(offline, utc=True) if dtype == "UnixTimestamp" else offline.astype(object)
        has_a = a_obj.notna().to_numpy() & ~bad
        has_b = b_obj.notna().to_numpy()
        both = has_a & has_b
        equal = np.zeros(n, dtype=bool)
        if both.any():
            equal[both] = a_obj.to_numpy(dtype=object)[both] == b_obj.to_numpy(dtype=object)[both]
        value = both & ~equal
    missing_offline = has_a & ~has_b
    missing_logged = ~has_a & ~bad & has_b
    mismatch = value | missing_offline | missing_logged | bad
    return {"mismatch": mismatch, "value": value, "missing_offline": missing_offline,
            "missing_logged": missing_logged, "type": bad, "smape": smape}


def _plain(value: Any) -> Any:
    """A value for the examples table (NaN/NA as None, numpy scalars unwrapped)."""
    if value is None or (not isinstance(value, (str, bytes)) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _example(row: pd.Series, service: str, name: str, logged: Any, offline: Any) -> dict[str, Any]:
    return {"feature_service": service, "feature": name, "customer_id": row["customer_id"],
            "request_at": row["request_at"], "source": row["source"], "model_version": row["model_version"],
            "logged": _plain(logged), "offline": _plain(offline)}


def _tally(found: Consistency, service: str, name: str, dtype: str, result: dict[str, np.ndarray],
           days: np.ndarray, labels: np.ndarray) -> None:
    """Add one feature's comparison to the running counts (overall and per day)."""
    t = found.tallies.setdefault((service, name), FeatureTally(dtype))
    t.compared += len(days)
    t.mismatches += int(result["mismatch"].sum())
    t.value_mismatches += int(result["value"].sum())
    t.missing_offline += int(result["missing_offline"].sum())
    t.missing_logged += int(result["missing_logged"].sum())
    t.type_mismatches += int(result["type"].sum())
    smape = result["smape"][~np.isnan(result["smape"])]
    t.smape_sum += float(smape.sum())
    t.smape_rows += len(smape)
    compared = np.bincount(days, minlength=len(labels))
    bad = np.bincount(days, weights=result["mismatch"].astype(float), minlength=len(labels)).astype(int)
    for k in np.flatnonzero(compared):
        slot = found.daily.setdefault((str(labels[k]), service, name), [0, 0])
        slot[0] += int(compared[k])
        slot[1] += int(bad[k])


def check_chunk(chunk: pd.DataFrame, service: str, store: Any, found: Consistency, tol: Tolerance,
                max_examples: int) -> None:
    """Retrieve the chunk's offline point-in-time features and add the comparison to `found`."""
    schema = dict(service_schema(store, service).features)
    logged = LoggedColumns(chunk["features"].tolist())
    at = pd.to_datetime(chunk["request_at"], utc=True, cache=False)
    offline = training_frame(store, pd.DataFrame({ENTITY_KEY: chunk["customer_id"].to_numpy(), TIME_COLUMN: at}), service)
    for name in sorted(logged.names - set(schema)):
        found.not_offline[(service, name)] = found.not_offline.get((service, name), 0) + int(logged.present(name).sum())
    day_codes, days = pd.factorize(at.dt.tz_convert(None).to_numpy().astype("datetime64[D]"))
    labels = np.datetime_as_string(np.asarray(days, dtype="datetime64[D]"), unit="D")
    any_logged = np.zeros(len(chunk), dtype=bool)
    any_offline = np.zeros(len(chunk), dtype=bool)
    for name, dtype in schema.items():
        present = logged.present(name)
        absent = int((~present).sum())
        if absent:  # a feature of the service the log does not carry: counted, not compared
            found.not_logged[(service, name)] = found.not_logged.get((service, name), 0) + absent
        if not present.any():
            continue
        rows = np.flatnonzero(present)
        values = logged.column(name).iloc[rows].reset_index(drop=True)
        theirs = offline[name].iloc[rows].reset_index(drop=True)
        result = compare_feature(dtype, values, theirs, tol)
        any_logged[rows] |= values.notna().to_numpy()
        any_offline[rows] |= theirs.notna().to_numpy()
        _tally(found, service, name, dtype, result, day_codes[rows], labels)
        shown = sum(1 for e in found.examples if e["feature"] == name and e["feature_service"] == service)
        for j in np.flatnonzero(result["mismatch"])[: max(0, max_examples - shown)]:
            found.examples.append(_example(chunk.iloc[rows[j]], service, name, values.iloc[j], theirs.iloc[j]))
    found.no_offline_row += int((any_logged & ~any_offline).sum())
    found.checked_rows += len(chunk)


def check(store: Any, files: Sequence[tuple[str, Path]], service_of: Callable[[str], str | None], *,
          max_rows: int, chunk_rows: int, tolerance: Tolerance = Tolerance(), max_examples: int = 3) -> Consistency:
    """Compare every (sampled) logged prediction's features with offline point-in-time retrieval.

    `max_examples` mismatching rows are kept per feature. `service_of(model_version)` names the feature service a serving record's model was trained on
    (None: unknown; such rows are counted in the notes, not compared)."""
    found = Consistency()
    started = time.perf_counter()
    unknown: dict[str, int] = {}
    for chunk in read_log(files, max_rows, chunk_rows, found):
        services = chunk["feature_service"].copy()
        todo = services.isna()
        if todo.any():
            by_version = {v: service_of(v) for v in chunk.loc[todo, "model_version"].astype(str).unique()}
            services[todo] = chunk.loc[todo, "model_version"].astype(str).map(by_version)
        for version in chunk.loc[services.isna(), "model_version"].astype(str):
            unknown[version] = unknown.get(version, 0) + 1
        for service, part in chunk[services.notna()].groupby(services[services.notna()], sort=True):
            check_chunk(part.reset_index(drop=True), str(service), store, found, tolerance, max_examples)
    for version, count in sorted(unknown.items()):
        found.notes.append(f"{count} logged rows of model version {version!r}: its feature service is unknown "
                           "(not in the model registry): not compared")
    found.seconds = time.perf_counter() - started
    return found


def breaches(found: Consistency, max_mismatch_rate: float, min_rows: int) -> list[dict[str, Any]]:
    """Features whose mismatch rate is above the threshold (with at least `min_rows` compared)."""
    table = found.features()
    if table.empty:
        return []
    over = table[(table["compared"] >= min_rows) & (table["mismatch_rate"] > max_mismatch_rate)]
    return [{"feature_service": r.feature_service, "feature": r.feature, "mismatch_rate": float(r.mismatch_rate),
             "mismatches": int(r.mismatches), "compared": int(r.compared), "type": r.type}
            for r in over.itertuples()]
