"""Request-time features: computed from the request's timestamp, identically offline and online.

Feast stores a python-mode transformation as source text in its registry and re-creates it
without this module's globals, so each transformation is self-contained (imports inside).
Training (offline retrieval), serving and the parity check all run this registered code.
A transformation tagged `udf_accepts_arrow` also takes pyarrow columns: training_frame then runs
it on whole Arrow columns (vectorised) instead of python lists.
"""

from typing import Any

from feast import Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, UnixTimestamp
from features import feature_views

# The moment a prediction is made for. Training passes each label's as-of time; serving passes
# the request time (now unless the caller says otherwise).
prediction_request = RequestSource(
    name="prediction_request",
    schema=[Field(name="request_at", dtype=UnixTimestamp, description="When the prediction is made (UTC).")],
    description="Per-request inputs of on-demand features.",
    tags={"owner": "platform"},
)


# Days since the customer's last purchase, measured at request time (the weekly snapshot's
# last_purchase_at ages between snapshots; this does not).
@on_demand_feature_view(
    sources=[feature_views["customer_activity"][["last_purchase_at"]], prediction_request],
    # no field description: Feast's ODFV inference compares fields including descriptions
    schema=[Field(name="days_since_last_purchase", dtype=Float64)],
    mode="python",
    description="days_since_last_purchase: days from the last purchase to request_at "
    "(NULL without a purchase in the 365 days before the snapshot).",
    # udf_accepts_arrow: the function also takes pyarrow columns (training_frame runs it vectorised)
    tags={"owner": "platform", "dbt_model": "customer_features_weekly", "udf_accepts_arrow": "true"},
)
def request_recency(inputs: dict[str, Any]) -> dict[str, Any]:
    """days_since_last_purchase = request_at - last_purchase_at in fractional days (None if missing).

    Columns are python lists (Feast's online and offline paths, parity.features.online) or pyarrow arrays
    (parity.features.retrieval.training_frame: vectorised, no python objects per row). Lists give a list of
    float/None; arrays give a float64 array. Both compute microseconds / 1e6 / 86400 exactly, so
    the floats are identical. Naive timestamps are taken as UTC; pandas Timestamps and datetimes
    are both accepted.
    """
    import pyarrow as pa

    last_column, now_column = inputs["last_purchase_at"], inputs["request_at"]
    if isinstance(last_column, (pa.Array, pa.ChunkedArray)):
        import pyarrow.compute as pc

        def micros(column):  # naive -> UTC (same instant), then epoch microseconds
            column = column if isinstance(column, (pa.Array, pa.ChunkedArray)) else pa.array(column)
            return column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())

        elapsed = pc.subtract(micros(now_column), micros(last_column)).cast(pa.float64())
        return {"days_since_last_purchase": pc.divide(pc.divide(elapsed, 1e6), 86400.0)}

    from datetime import timezone

    def utc(value):
        if value is None or value != value:  # None, NaT or NaN
            return None
        if hasattr(value, "to_pydatetime"):
            value = value.to_pydatetime()
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    days = []
    for last, now in zip(last_column, now_column):
        last_utc, now_utc = utc(last), utc(now)
        days.append(None if last_utc is None or now_utc is None else (now_utc - last_utc).total_seconds() / 86400.0)
    return {"days_since_last_purchase": days}
