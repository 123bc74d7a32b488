"""/v1/predict carries the segment of the current segments model, the same as batch scoring."""

from __future__ import annotations

import pytest

from batch.config import load_config
from batch.pipeline import run_score, run_segments_train
from parity.features.feature_store import materialized_until
from serving.smoke import wait_ready
from tests.batch.fixtures import private_copy
from tests.serving.test_app import Service, _ids

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def segmented(trained_data, tmp_path_factory):
    """trained_data's models plus a current segments model, in a private registry copy."""
    settings = private_copy(trained_data, tmp_path_factory.mktemp("segmented"), copies=("registry",))
    run_segments_train(settings, load_config())
    return settings


def test_predictions_carry_the_same_segment_and_score_as_batch(segmented):
    as_of = materialized_until(segmented)
    ids = _ids(segmented, 40)
    batch = run_score(segmented, load_config(), as_of=as_of).results.set_index("customer_id")
    svc = Service(segmented)
    try:
        wait_ready(svc.base)
        body = {"customers": [{"customer_id": i, "request_at": as_of.isoformat()} for i in ids]
                + [{"customer_id": "acme:AC-999999"}]}
        answer = svc.client.post("/v1/predict", json=body).json()
        model = svc.client.get("/v1/model").json()
    finally:
        svc.stop()
    for p in answer["predictions"][:-1]:
        row = batch.loc[p["customer_id"]]
        assert p["segment_id"] == row["segment_id"] and p["segment_name"] == row["segment_name"]
        assert p["score"] == pytest.approx(row["score"], abs=1e-9, rel=0)
    unknown = answer["predictions"][-1]
    assert unknown["status"] == "unknown_customer" and unknown["segment_id"] is None
    assert model["segments"]["version"] == "v0001"
