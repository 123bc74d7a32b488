"""Batch feature views, derived from the dbt manifest (no feature is declared in Python).

Every dbt model with `meta.feast` becomes a FeatureView named by `meta.feast.feature_view`, with
one field per column marked `meta: {feature: true}`; see parity.features.feast_definitions.
"""

from entities import customer

from parity.config import load_settings
from parity.features.feast_definitions import derive_feature_views, load_manifest
from parity.features.feature_store import store_config

_settings = load_settings()
# the profile's offline store (feature_store*.yaml) decides the source class (FileSource, SparkSource)
_offline = (store_config(_settings).get("offline_store") or {}).get("type", "duckdb")
feature_views = derive_feature_views(load_manifest(_settings.dbt_manifest_path), [customer], _offline)

# Feast collects definitions from module attributes: expose each derived view under its name.
globals().update(feature_views)
