"""The segments model: fitting, naming, numpy assignment, registry round trip, promotion check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from parity.models import registry, segments
from parity.models.prepare import prepare

FEATURES = (("client_id", "String"), ("purchase_count_90d", "Int64"), ("spend_365d", "Float64"),
            ("days_since_last_purchase", "Float64"))
COLUMNS = ("purchase_count_90d", "spend_365d", "days_since_last_purchase")


def blobs(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three well separated kinds of customer (frequent/big, lapsed, new-small) + labels."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, n)
    centers = np.array([[20, 3000, 3], [1, 100, 200], [5, 300, 10]], dtype=float)
    values = centers[kind] * rng.lognormal(0, 0.15, (n, 3))
    frame = pd.DataFrame({
        "client_id": rng.choice(["acme", "bolt"], n),
        "purchase_count_90d": pd.array(np.round(values[:, 0]).astype(int), dtype="Int64"),
        "spend_365d": values[:, 1],
        "days_since_last_purchase": values[:, 2],
        "is_churned": (kind == 1).astype(int),
    })
    return frame, kind


def fitted(seed: int = 42) -> tuple[segments.SegmentModel, pd.DataFrame, np.ndarray]:
    frame, kind = blobs()
    model = segments.fit(frame, FEATURES, "churn_v1", COLUMNS, k=3, seed=seed, n_init=3,
                         log1p=("purchase_count_90d", "spend_365d", "days_since_last_purchase"))
    return model, frame, kind


def test_segments_recover_well_separated_groups_and_numbering_is_by_size():
    model, frame, kind = fitted()
    ids = model.assign(frame)
    # every true group maps to exactly one segment and vice versa
    pairs = set(zip(kind, ids))
    assert len(pairs) == 3 and len({k for k, _ in pairs}) == 3 and len({i for _, i in pairs}) == 3
    sizes = [p["size"] for p in model.profiles]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(frame)
    assert sizes == list(np.bincount(ids, minlength=3))


def test_numpy_nearest_centroid_equals_kmeans_predict():
    from sklearn.cluster import KMeans

    model, frame, _ = fitted()
    points = model.transform(frame)
    kmeans = KMeans(n_clusters=3, n_init=1, init=model.centroids, max_iter=1).fit(points)
    kmeans.cluster_centers_ = model.centroids  # predict with exactly the stored centroids
    np.testing.assert_array_equal(model.assign(frame), kmeans.predict(points))


def test_transform_of_serving_columns_equals_the_prepared_frame_path():
    model, frame, _ = fitted()
    frame = frame.copy()
    frame.loc[::7, "spend_365d"] = np.nan  # imputed, with its missing indicator
    frame["purchase_count_90d"] = frame["purchase_count_90d"].mask(frame.index % 11 == 0)
    expected = segments.standardize(prepare(frame, model.spec), model.columns, model.log1p, model.mean, model.scale)
    np.testing.assert_array_equal(model.transform(frame), expected)
    # serving's form: plain python lists by feature name, None for missing
    columns = {name: [None if pd.isna(v) else v for v in frame[name].astype(object)] for name, _ in FEATURES}
    np.testing.assert_array_equal(model.transform(columns), expected)


def test_profiles_have_churn_rates_medians_and_distinct_readable_names():
    model, _, _ = fitted()
    assert len(set(model.names)) == 3
    by_name = {p["name"]: p for p in model.profiles}
    lapsed = [p for name, p in by_name.items() if name.startswith("Lapsed")]
    assert len(lapsed) == 1 and lapsed[0]["churn_rate"] == 1.0  # the lapsed blob is the churned one
    assert lapsed[0]["median"]["days_since_last_purchase"] > 100
    assert all(set(p["median"]) == set(COLUMNS) for p in model.profiles)


def test_name_segments_uses_one_word_per_family():
    names = segments.name_segments(np.array([[2.0, 1.5, 0.1], [-2.0, 0.0, 0.0]]),
                                   ("purchase_count_90d", "purchase_count_365d", "spend_365d"))
    assert names == ("Frequent buyers", "Infrequent buyers")


def test_same_seed_same_model_and_fit_refuses_bad_settings():
    a, _, _ = fitted()
    b, _, _ = fitted()
    np.testing.assert_array_equal(a.centroids, b.centroids)
    frame, _ = blobs()
    with pytest.raises(segments.SegmentError, match="not prepared columns"):
        segments.fit(frame, FEATURES, "churn_v1", ("no_such_column",), k=3, seed=1)
    with pytest.raises(segments.SegmentError, match="k must be >= 2"):
        segments.fit(frame, FEATURES, "churn_v1", COLUMNS, k=1, seed=1)


def test_registry_round_trip_assigns_the_same_segments(tmp_path):
    model, frame, _ = fitted()
    version = segments.register(tmp_path, model, FEATURES, lambda service: FEATURES, {"note": "test"})
    assert version == "v0001" and registry.current_version(tmp_path, "segments") == "v0001"
    loaded = segments.load_current(tmp_path)
    assert loaded.version == "v0001" and loaded.names == model.names
    np.testing.assert_array_equal(loaded.centroids, model.centroids)
    np.testing.assert_array_equal(loaded.mean, model.mean)
    np.testing.assert_array_equal(loaded.assign(frame), model.assign(frame))
    entry = tmp_path / "segments" / "v0001"
    assert json.loads((entry / "model.json").read_text())["format"] == segments.SEGMENTS_FORMAT
    assert not list(entry.glob("*.pkl")) and "| id | name |" in (entry / "MODEL_CARD.md").read_text()


def test_a_tampered_entry_is_refused(tmp_path):
    model, _, _ = fitted()
    segments.register(tmp_path, model, FEATURES, lambda s: FEATURES)
    path = tmp_path / "segments" / "v0001" / "model.json"
    body = json.loads(path.read_text())
    body["centroids"][0][0] += 1.0
    path.write_text(json.dumps(body))
    with pytest.raises(registry.RegistryError, match="checksum"):
        segments.load_current(tmp_path)


def test_promotion_is_refused_when_the_live_service_differs(tmp_path):
    model, _, _ = fitted()
    changed = FEATURES[:-1]
    with pytest.raises(registry.PromotionError, match="missing from the live service: days_since_last_purchase"):
        segments.register(tmp_path, model, FEATURES, lambda s: changed)
    assert registry.current_version(tmp_path, "segments") is None


def test_no_current_segments_model_is_none(tmp_path):
    assert segments.load_current(tmp_path) is None


def test_no_purchase_in_the_window_is_lapsed_not_typical_with_the_domain_fill():
    frame, kind = blobs()
    never = frame.iloc[[0]].assign(purchase_count_90d=pd.array([0], dtype="Int64"), spend_365d=0.0,
                                   days_since_last_purchase=np.nan)
    log1p = ("purchase_count_90d", "spend_365d", "days_since_last_purchase")
    filled = segments.fit(frame, FEATURES, "churn_v1", COLUMNS, k=3, seed=42, n_init=3, log1p=log1p,
                          fill={"days_since_last_purchase": 365.0})
    lapsed = filled.names[int(filled.assign(frame[kind == 1]).max())]
    assert lapsed.startswith("Lapsed") and filled.name_of(filled.assign(never)) == [lapsed]
    # the domain fill is parity.models.prepare's default (one home); a config can still override it
    default = segments.fit(frame, FEATURES, "churn_v1", COLUMNS, k=3, seed=42, n_init=3, log1p=log1p)
    typical = float(np.nanmedian(frame["days_since_last_purchase"]))
    overridden = segments.fit(frame, FEATURES, "churn_v1", COLUMNS, k=3, seed=42, n_init=3, log1p=log1p,
                              fill={"days_since_last_purchase": typical})
    recency = COLUMNS.index("days_since_last_purchase")
    shown = [segments.log_transform(prepare(never, model.spec), COLUMNS, ())[0, recency]
             for model in (filled, default, overridden)]
    assert shown[0] == 365.0 and shown[1] == 365.0 and shown[2] == pytest.approx(typical)
