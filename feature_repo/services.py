"""Feature services: the versioned feature sets models depend on (never ad-hoc feature lists).

A version is frozen once a model is trained on it; a changed list is a new version (churn_v2).
"""

from feast import FeatureService
from features import feature_views
from request_features import request_recency

from parity.features.feast_definitions import select_features

CHURN_V1_FEATURES = [
    "client_id",
    "country",
    "acquisition_channel",
    "birth_year",
    "tenure_days",
    "purchase_count_30d",
    "purchase_count_90d",
    "purchase_count_365d",
    "purchase_trend_30d",
    "spend_30d",
    "spend_90d",
    "spend_365d",
    "avg_basket_90d",
    "refund_count_90d",
    "refund_rate_90d",
    "category_count_90d",
]

# Churn model, version 1: weekly behaviour snapshot + request-time recency.
churn_v1 = FeatureService(
    name="churn_v1",
    features=[
        select_features(feature_views["customer_activity"], CHURN_V1_FEATURES, "churn_v1"),
        request_recency,
    ],
    description="Features of churn model v1: behaviour snapshot (RFM, refunds, diversity, tenure, profile) and recency at request time.",
    tags={"owner": "data-science", "model": "churn", "version": "1"},
)
