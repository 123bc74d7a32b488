"""Batch feature views, derived from the dbt manifest (no feature is declared in Python).

Every dbt model with `meta.feast` becomes a FeatureView named by `meta.feast.feature_view`, with
one field per column marked `meta: {feature: true}`; see parity.features.feast_definitions.
"""

from entities import customer

from parity.config import load_settings
from parity.features.feast_definitions import derive_feature_views, load_manifest

_settings = load_settings()
feature_views = derive_feature_views(load_manifest(_settings.dbt_manifest_path), [customer])

# Feast collects definitions from module attributes: expose each derived view under its name.
globals().update(feature_views)
