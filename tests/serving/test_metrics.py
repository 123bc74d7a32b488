"""serving.metrics: the batch-observed histogram exposes what prometheus_client's Histogram would."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from serving.metrics import BatchHistogram


def test_batch_histogram_exposes_the_same_text_as_prometheus_histogram():
    buckets = tuple(i / 10 for i in range(1, 11))
    theirs_registry, ours_registry = CollectorRegistry(), CollectorRegistry()
    theirs = Histogram("score", "Scores", ["model_version"], buckets=buckets, registry=theirs_registry)
    ours = BatchHistogram("score", "Scores", "model_version", buckets=buckets, registry=ours_registry)
    rng = np.random.default_rng(0)
    # values on the bucket bounds count in that bucket (le); above the last bound: +Inf only
    batches = [("v1", rng.random(100)), ("v1", np.array([0.1, 0.2, 0.30000000000000004, 1.0, 1.5])), ("v2", rng.random(7))]
    for version, values in batches:
        ours.observe_many(version, values)
        for value in values.tolist():
            theirs.labels(version).observe(value)
    ours_text, theirs_text = (_samples(generate_latest(r)) for r in (ours_registry, theirs_registry))
    assert ours_text.keys() == theirs_text.keys()
    for name, value in theirs_text.items():  # counts exactly; sums up to summation order
        assert abs(ours_text[name] - value) <= 1e-9 * max(1.0, abs(value)), name


def _samples(text: bytes) -> dict[str, float]:
    """Sample line -> value, without prometheus_client's `_created` timestamps."""
    out = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#") and "_created" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out
