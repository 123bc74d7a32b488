"""Deriving Feast definitions from the dbt manifest: exact types, clear errors naming the column."""

from __future__ import annotations

import copy
import json

import pytest
from feast import Entity, ValueType
from feast.types import Float64, Int64, String, UnixTimestamp

from parity.features.feast_definitions import (
    DefinitionError,
    derive_feature_views,
    feast_type_for,
    mart_specs,
    select_features,
)

CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)


def _manifest(columns: dict[str, dict]) -> dict:
    """A minimal manifest with one external, contracted feature mart."""
    base = {
        "customer_id": {"name": "customer_id", "data_type": "varchar", "description": "key", "meta": {}},
        "snapshot_at": {"name": "snapshot_at", "data_type": "timestamptz", "description": "time", "meta": {}},
    }
    base.update(columns)
    return {
        "nodes": {
            "model.parity.mart": {
                "resource_type": "model",
                "name": "mart",
                "description": "a mart",
                "columns": base,
                "config": {
                    "materialized": "external",
                    "location": "/tmp/mart.parquet",
                    "contract": {"enforced": True},
                    "meta": {
                        "owner": "me",
                        "feast": {
                            "feature_view": "activity",
                            "entity": "customer",
                            "join_key": "customer_id",
                            "timestamp_field": "snapshot_at",
                            "ttl_days": 7,
                        },
                    },
                },
            }
        }
    }


def _feature(name: str, dtype: str, description: str = "documented") -> dict:
    return {name: {"name": name, "data_type": dtype, "description": description, "meta": {"feature": True}}}


@pytest.mark.parametrize(
    ("dbt_type", "feast_type"),
    [("double", Float64), ("bigint", Int64), ("varchar", String), ("timestamptz", UnixTimestamp),
     ("TIMESTAMP WITH TIME ZONE", UnixTimestamp)],
)
def test_exact_type_mapping(dbt_type, feast_type):
    assert feast_type_for("mart", "col", dbt_type) == feast_type


@pytest.mark.parametrize("dbt_type", ["decimal(18,2)", "integer", "float", "timestamp", "date", "numeric"])
def test_types_that_skew_are_refused_naming_the_column(dbt_type):
    with pytest.raises(DefinitionError, match=r"mart\.spend_30d: dbt data_type"):
        derive_feature_views(_manifest(_feature("spend_30d", dbt_type)), [CUSTOMER])


def test_documented_feature_columns_become_fields_with_types_and_descriptions():
    manifest = _manifest({**_feature("spend_30d", "double", "Spend"), **_feature("visits", "bigint", "Visits"),
                          "not_a_feature": {"name": "not_a_feature", "data_type": "double", "meta": {}}})
    view = derive_feature_views(manifest, [CUSTOMER])["activity"]
    fields = {f.name: (f.dtype, f.description) for f in view.features}
    assert fields == {"spend_30d": (Float64, "Spend"), "visits": (Int64, "Visits")}
    assert view.ttl.days == 7 and view.tags["dbt_model"] == "mart" and view.batch_source.path == "/tmp/mart.parquet"


def test_feature_without_description_is_refused():
    with pytest.raises(DefinitionError, match=r"\['visits'\] have no description"):
        mart_specs(_manifest(_feature("visits", "bigint", "")))


def test_mart_must_be_external_and_contracted():
    manifest = _manifest(_feature("visits", "bigint"))
    broken = copy.deepcopy(manifest)
    broken["nodes"]["model.parity.mart"]["config"]["contract"] = {"enforced": False}
    with pytest.raises(DefinitionError, match="enforced contract"):
        mart_specs(broken)
    broken = copy.deepcopy(manifest)
    broken["nodes"]["model.parity.mart"]["config"]["materialized"] = "table"
    with pytest.raises(DefinitionError, match="external"):
        mart_specs(broken)


def test_service_asking_for_a_feature_dbt_does_not_declare_names_it():
    view = derive_feature_views(_manifest(_feature("visits", "bigint")), [CUSTOMER])["activity"]
    with pytest.raises(DefinitionError, match=r"churn_vX.*\['spend_30d'\].*'mart'"):
        select_features(view, ["visits", "spend_30d"], "churn_vX")


@pytest.mark.data
def test_project_manifest_declares_the_churn_features(built_data):
    manifest = json.loads(built_data.dbt_manifest_path.read_text())
    specs = {s.feature_view: s for s in mart_specs(manifest)}
    features = {f.name: str(f.feast_type) for f in specs["customer_activity"].features}
    assert features["spend_30d"] == "Float64" and features["purchase_count_30d"] == "Int64"
    assert features["last_purchase_at"] == "UnixTimestamp" and features["country"] == "String"
