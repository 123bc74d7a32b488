"""Customer segments: a nearest-centroid model over prepared behaviour features, in the registry.

Fitting uses scikit-learn (StandardScaler + seeded KMeans) on the churn training set; what is
stored is plain JSON — the prepare spec, the clustered column subset, which of them are log1p'd,
the scaler's mean/scale and the centroids — so assignment is a few lines of numpy (nearest
centroid, ties to the lower id) and loading never executes pickle. A version lives in the same
registry as the churn model, under model name `segments`:

    segments/v0001/model.json       columns, log1p, mean, scale, centroids, names
                  /calibrator.json  {"method": "none"}: the registry requires the file; a
                                    segment model has no probability to calibrate
                  /metadata.json    feature service + features (checked on promote like churn),
                                    prepare spec, per-segment profiles, fit settings
                  /MODEL_CARD.md    the profile table in words

Segments are numbered by size (0 = largest) and named from their most distinctive features
("Lapsed, low spenders"), so a name explains itself to a reader of the export.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from parity.jsonable import jsonable
from parity.models import registry
from parity.models.prepare import DERIVED, PrepareSpec, fit_spec, prepare, prepare_matrix

if TYPE_CHECKING:
    import pandas as pd

MODEL_NAME = "segments"
SEGMENTS_FORMAT = 1
LABEL = "is_churned"
# words for a centroid far above / below the average on a (prepared) column
WORDS: dict[str, tuple[str, str]] = {
    "days_since_last_purchase": ("lapsed", "recently active"),
    "purchase_count_30d": ("active this month", "quiet this month"),
    "purchase_count_90d": ("frequent buyers", "infrequent buyers"),
    "purchase_count_365d": ("many purchases this year", "few purchases this year"),
    "purchase_trend_30d": ("buying more lately", "buying less lately"),
    "spend_30d": ("high spend this month", "low spend this month"),
    "spend_90d": ("high recent spend", "low recent spend"),
    "spend_365d": ("high spenders", "low spenders"),
    "avg_basket_90d": ("large baskets", "small baskets"),
    "refund_count_90d": ("many refunds", "few refunds"),
    "refund_rate_90d": ("refund-prone", "rarely refund"),
    "category_count_90d": ("broad shoppers", "narrow shoppers"),
    "tenure_days": ("long-standing", "new"),
    "overdue_ratio_365d": ("overdue", "on schedule"),
    "birth_year": ("younger", "older"),
}
# one word per family, so a name never says the same thing twice ("frequent buyers, many purchases")
FAMILY = {
    "purchase_count_30d": "frequency",
    "purchase_count_90d": "frequency",
    "purchase_count_365d": "frequency",
    "spend_30d": "spend",
    "spend_90d": "spend",
    "spend_365d": "spend",
    "refund_count_90d": "refunds",
    "refund_rate_90d": "refunds",
    "days_since_last_purchase": "recency",
    "overdue_ratio_365d": "recency",
}
NAME_MIN_Z = 0.35  # a centroid coordinate (in standard deviations) worth naming


class SegmentError(ValueError):
    """A segments model cannot be fitted, stored or loaded; the message says why."""


@dataclass(frozen=True)
class SegmentModel:
    """A fitted segments model: prepare spec, clustered columns, scaler and centroids."""

    spec: PrepareSpec
    feature_service: str
    columns: tuple[str, ...]
    log1p: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    centroids: np.ndarray
    names: tuple[str, ...]
    profiles: tuple[dict[str, Any], ...] = ()
    version: str | None = None
    metadata: Mapping[str, Any] | None = None

    @property
    def k(self) -> int:
        """Number of segments."""
        return len(self.centroids)

    def transform(self, frame: pd.DataFrame | Mapping[str, Sequence[Any]]) -> np.ndarray:
        """Retrieval frame (or serving's column dict) -> standardized matrix of the clustered
        columns; the same values as `standardize(prepare(frame, spec), ...)` without a DataFrame
        (serving assigns segments on every request)."""
        missing = [c for c in self.columns if c not in self.spec.columns]
        if missing:
            raise SegmentError(f"prepared frame lacks segment column(s) {missing}")
        matrix = prepare_matrix(frame, self.spec)
        values = _log1p(matrix[:, [self.spec.columns.index(c) for c in self.columns]], self.columns, self.log1p)
        return (values - self.mean) / self.scale

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """Segment id of every row (nearest centroid)."""
        return nearest(self.transform(frame), self.centroids)

    def name_of(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Names of segment ids."""
        return [self.names[int(i)] for i in ids]


def log_transform(prepared: pd.DataFrame, columns: Sequence[str], log1p: Sequence[str]) -> np.ndarray:
    """The clustered columns as float64, log1p applied (at >= 0) to the skewed ones."""
    missing = [c for c in columns if c not in prepared.columns]
    if missing:
        raise SegmentError(f"prepared frame lacks segment column(s) {missing}")
    return _log1p(prepared[list(columns)].to_numpy(dtype="float64").copy(), columns, log1p)


def _log1p(values: np.ndarray, columns: Sequence[str], log1p: Sequence[str]) -> np.ndarray:
    """log1p (at >= 0) of the skewed columns, in place."""
    for j, column in enumerate(columns):
        if column in log1p:
            values[:, j] = np.log1p(np.clip(values[:, j], 0.0, None))
    return values


def standardize(
    prepared: pd.DataFrame,
    columns: Sequence[str],
    log1p: Sequence[str],
    mean: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """(log-transformed values - mean) / scale, as StandardScaler.transform does."""
    return (log_transform(prepared, columns, log1p) - mean) / scale


def nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (squared Euclidean) per row; ties go to the lower index."""
    if len(points) == 0:
        return np.empty(0, dtype="int64")
    distances = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(distances, axis=1).astype("int64")


def name_segments(centroids: np.ndarray, columns: Sequence[str]) -> tuple[str, ...]:
    """A readable, unique name per centroid from its most distinctive coordinates."""
    names: list[str] = []
    for row in centroids:
        words, families = [], set()
        for j in np.argsort(-np.abs(row), kind="stable"):
            column = columns[j]
            family = FAMILY.get(column, column)
            if column in WORDS and abs(row[j]) >= NAME_MIN_Z and family not in families:
                words.append(WORDS[column][0 if row[j] > 0 else 1])
                families.add(family)
        base = ", ".join(words[:2]) if words else "typical customers"
        name = base[0].upper() + base[1:]
        extra = 2
        while name in names and extra < len(words):
            name = name + ", " + words[extra]
            extra += 1
        if name in names:
            name = f"{name} ({len(names)})"
        names.append(name)
    return tuple(names)


def profile(
    frame: pd.DataFrame,
    prepared: pd.DataFrame,
    ids: np.ndarray,
    names: Sequence[str],
    columns: Sequence[str],
) -> tuple[dict[str, Any], ...]:
    """Per segment: size, share, median of each clustered column and churn rate (if labelled)."""
    total = max(len(ids), 1)
    rows = []
    for segment, name in enumerate(names):
        mask = ids == segment
        medians = {
            c: jsonable(float(np.median(prepared.loc[mask, c]))) if mask.any() else None
            for c in columns
        }
        churn = (
            jsonable(float(frame.loc[mask, LABEL].mean()))
            if LABEL in frame.columns and mask.any()
            else None
        )
        rows.append(
            {
                "segment_id": segment,
                "name": name,
                "size": int(mask.sum()),
                "share": round(float(mask.sum()) / total, 6),
                "churn_rate": churn,
                "median": medians,
            }
        )
    return tuple(rows)


def fit(
    frame: pd.DataFrame,
    features: Sequence[tuple[str, str]],
    feature_service: str,
    columns: Sequence[str],
    k: int,
    seed: int,
    log1p: Sequence[str] = (),
    max_rows: int | None = None,
    n_init: int = 10,
    min_level_count: int = 20,
    fill: Mapping[str, float] | None = None,
) -> SegmentModel:
    """Fit the prepare spec, a StandardScaler and a seeded KMeans on (a seeded sample of) `frame`.

    `fill` is parity.models.prepare's domain value for a missing numeric feature (e.g. no purchase in the
    365-day window -> days_since_last_purchase 365), so such customers are not imputed "typical".
    """
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    if k < 2:
        raise SegmentError(f"segments.k must be >= 2, got {k}")
    if max_rows and len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed).sort_index()
    if len(frame) < k:
        raise SegmentError(f"{len(frame)} training row(s) cannot make {k} segments")
    derived = [c for c in columns if c in DERIVED]
    spec = fit_spec(frame, features, derived=derived, min_level_count=min_level_count, fill=fill)
    unknown = [c for c in columns if c not in spec.columns]
    if unknown:
        raise SegmentError(
            f"segment column(s) {unknown} are not prepared columns of service "
            f"'{feature_service}' (known: {list(spec.columns)})"
        )
    prepared = prepare(frame, spec)
    raw = log_transform(prepared, columns, log1p)
    scaler = StandardScaler().fit(raw)
    points = scaler.transform(raw)
    kmeans = KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(points)
    # number segments by size (largest first), ties by the centroid's first coordinate
    sizes = np.bincount(kmeans.labels_, minlength=k)
    order = sorted(range(k), key=lambda i: (-sizes[i], tuple(kmeans.cluster_centers_[i])))
    centroids = kmeans.cluster_centers_[order]
    names = name_segments(centroids, columns)
    ids = nearest(points, centroids)
    return SegmentModel(
        spec=spec,
        feature_service=feature_service,
        columns=tuple(columns),
        log1p=tuple(c for c in columns if c in set(log1p)),
        mean=np.asarray(scaler.mean_, dtype="float64"),
        scale=np.asarray(scaler.scale_, dtype="float64"),
        centroids=np.asarray(centroids, dtype="float64"),
        names=names,
        profiles=profile(frame, prepared, ids, names, columns),
    )


def model_card(model: SegmentModel, version_hint: str = "") -> str:
    """MODEL_CARD.md: what the segments are, in words and medians."""
    lines = [
        f"# Customer segments {version_hint}".rstrip(),
        "",
        (
            f"{model.k} segments from StandardScaler + KMeans over prepared features of "
            f"`{model.feature_service}` ({', '.join(model.columns)}; log1p: "
            f"{', '.join(model.log1p) or 'none'}). Assignment = nearest centroid."
        ),
        "",
        "| id | name | size | share | churn rate | " + " | ".join(model.columns) + " |",
        "|---" * (5 + len(model.columns)) + "|",
    ]
    for p in model.profiles:
        churn = "-" if p["churn_rate"] is None else f"{p['churn_rate']:.1%}"
        medians = " | ".join(
            "-" if p["median"][c] is None else f"{p['median'][c]:.4g}" for c in model.columns
        )
        lines.append(
            f"| {p['segment_id']} | {p['name']} | {p['size']} | {p['share']:.1%} | {churn} | {medians} |"
        )
    return "\n".join(lines) + "\n"


def entry_files(
    model: SegmentModel,
    features: Sequence[tuple[str, str]],
    extra_metadata: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """The registry entry's files (plain JSON and Markdown; no pickle)."""
    body = {
        "format": SEGMENTS_FORMAT,
        "assignment": "nearest centroid (squared Euclidean) in standardized space",
        "columns": list(model.columns),
        "log1p": list(model.log1p),
        "mean": model.mean.tolist(),
        "scale": model.scale.tolist(),
        "centroids": model.centroids.tolist(),
        "names": list(model.names),
    }
    metadata = {
        "format": registry.FORMAT,
        "kind": "segments",
        "model_name": MODEL_NAME,
        "feature_service": model.feature_service,
        "features": [[name, dtype] for name, dtype in features],
        "prepare_spec": model.spec.to_dict(),
        "k": model.k,
        "profiles": list(model.profiles),
        **dict(extra_metadata or {}),
    }
    return {
        registry.MODEL_FILE: registry.dumps(body),
        registry.CALIBRATOR_FILE: registry.dumps(
            {"method": "none", "reason": "a segments model outputs ids, not probabilities"}
        ),
        registry.METADATA_FILE: registry.dumps(metadata),
        registry.CARD_FILE: model_card(model).encode(),
    }


def from_files(files: Mapping[str, bytes], version: str | None = None) -> SegmentModel:
    """Inverse of `entry_files` (refuses other formats and inconsistent shapes)."""
    body = json.loads(files[registry.MODEL_FILE])
    metadata = json.loads(files[registry.METADATA_FILE])
    if body.get("format") != SEGMENTS_FORMAT or metadata.get("kind") != "segments":
        raise SegmentError(
            f"segments entry {version or ''} has format {body.get('format')!r} / kind "
            f"{metadata.get('kind')!r}; expected {SEGMENTS_FORMAT} / 'segments'"
        )
    centroids = np.asarray(body["centroids"], dtype="float64")
    mean, scale = np.asarray(body["mean"], "float64"), np.asarray(body["scale"], "float64")
    d = len(body["columns"])
    if centroids.ndim != 2 or centroids.shape[1] != d or mean.shape != (d,) or scale.shape != (d,):
        raise SegmentError(f"segments entry {version or ''} has inconsistent shapes")
    if len(body["names"]) != len(centroids):
        raise SegmentError(f"segments entry {version or ''}: {len(body['names'])} names for "
                           f"{len(centroids)} centroids")
    return SegmentModel(
        spec=PrepareSpec.from_dict(metadata["prepare_spec"]),
        feature_service=str(metadata["feature_service"]),
        columns=tuple(body["columns"]),
        log1p=tuple(body["log1p"]),
        mean=mean,
        scale=scale,
        centroids=centroids,
        names=tuple(body["names"]),
        profiles=tuple(metadata.get("profiles", [])),
        version=version,
        metadata=metadata,
    )


def register(
    registry_dir: Path,
    model: SegmentModel,
    features: Sequence[tuple[str, str]],
    live_schema: registry.LiveSchema,
    extra_metadata: Mapping[str, Any] | None = None,
    promote: bool = True,
    name: str = MODEL_NAME,
) -> str:
    """Write a new version (atomically) and, by default, make it current; returns the version."""
    version = registry.write_version(registry_dir, name, entry_files(model, features, extra_metadata))
    if promote:
        registry.promote(registry_dir, name, version, live_schema)
    return version


def load_version(registry_dir: Path, version: str, name: str = MODEL_NAME) -> SegmentModel:
    """Load one version after verifying every checksum (registry format; no pickle)."""
    # the registry's own verification (checksums of every file), shared with the churn model
    files = registry.verified_files(registry.entry_dir(registry_dir, name, version))
    return from_files(files, version)


def load_current(registry_dir: Path, name: str = MODEL_NAME) -> SegmentModel | None:
    """The current segments model, or None when none was ever promoted."""
    version = registry.current_version(registry_dir, name)
    return None if version is None else load_version(registry_dir, version, name)
