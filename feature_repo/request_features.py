"""Request-time features: computed from the request's timestamp, identically offline and online."""

from feast import Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, UnixTimestamp
from features import feature_views

from parity import request_features

# The moment a prediction is made for. Training passes each label's as-of time; serving passes
# the request time (now unless the caller says otherwise).
prediction_request = RequestSource(
    name="prediction_request",
    schema=[Field(name="request_at", dtype=UnixTimestamp, description="When the prediction is made (UTC).")],
    description="Per-request inputs of on-demand features.",
    tags={"owner": "platform"},
)

# Days since the customer's last purchase, measured at request time (the weekly snapshot's
# last_purchase_at ages between snapshots; this does not). The transformation itself lives in
# parity.request_features so that Feast's registry references importable code.
request_recency = on_demand_feature_view(
    sources=[feature_views["customer_activity"][["last_purchase_at"]], prediction_request],
    # no field description: Feast's ODFV inference compares fields including descriptions
    schema=[Field(name="days_since_last_purchase", dtype=Float64)],
    mode="python",
    description="days_since_last_purchase: days from the last purchase to request_at "
    "(NULL without a purchase in the 365 days before the snapshot).",
    tags={"owner": "platform", "dbt_model": "customer_features_weekly"},
)(request_features.request_recency)
