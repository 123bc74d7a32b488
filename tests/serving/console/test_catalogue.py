"""The feature catalogue: lineage from a manifest (pure), and the page in the browser."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from selenium.webdriver.common.by import By

from serving.console import catalogue
from tests.serving.console.conftest import errors, shot, signed_in, wait_for

MANIFEST = {
    "sources": {"source.p.acme.customers": {"source_name": "acme", "name": "customers", "columns": {"land": {}}},
                "source.p.bolt.customers": {"source_name": "bolt", "name": "customers", "columns": {"country": {}}}},
    "nodes": {
        "seed.p.rates": {"resource_type": "seed", "name": "rates", "columns": {"country": {}}},
        "model.p.stg_acme__customers": {"resource_type": "model", "name": "stg_acme__customers",
                                        "original_file_path": "models/staging/acme/stg_acme__customers.sql",
                                        "columns": {"country": {}}, "depends_on": {"nodes": ["source.p.acme.customers"]}},
        "model.p.stg_bolt__customers": {"resource_type": "model", "name": "stg_bolt__customers",
                                        "original_file_path": "models/staging/bolt/stg_bolt__customers.sql",
                                        "columns": {}, "depends_on": {"nodes": ["source.p.bolt.customers", "seed.p.rates"]}},
        "model.p.int_customers": {"resource_type": "model", "name": "int_customers",
                                  "original_file_path": "models/intermediate/int_customers.sql", "columns": {},
                                  "depends_on": {"nodes": ["model.p.stg_acme__customers", "model.p.stg_bolt__customers"]}},
        "model.p.features": {"resource_type": "model", "name": "features", "original_file_path": "models/marts/features.sql",
                             "columns": {"country": {}, "spend_90d": {}},
                             "depends_on": {"nodes": ["model.p.int_customers"]}},
    },
}


def test_lineage_walks_the_manifest_by_layer_and_names_same_named_columns():
    country = catalogue.upstream(MANIFEST, "features", "country")
    assert country.by_layer == {"raw": ["acme.customers", "bolt.customers"],
                                "staging": ["stg_acme__customers", "stg_bolt__customers"],
                                "intermediate": ["int_customers"], "mart": ["features"]}
    assert country.same_name == {"raw": ["bolt.customers.country"], "staging": ["stg_acme__customers.country"],
                                 "intermediate": [], "mart": ["features.country"]}  # the seed is no lineage
    spend = catalogue.upstream(MANIFEST, "features", "spend_90d")
    assert spend.same_name["raw"] == [] and spend.by_layer["raw"] == ["acme.customers", "bolt.customers"]
    assert catalogue.upstream(MANIFEST, "no_such_mart", "x").by_layer["mart"] == []


def test_rows_list_the_versions_whose_metadata_uses_each_feature():
    versions = [SimpleNamespace(version="v0002", metadata={"features": [["country", "String"]]}),
                SimpleNamespace(version="v0001", metadata={"features": [["country", "String"], ["spend_90d", "Float64"]]}),
                SimpleNamespace(version="v0000", metadata={})]
    features = [{"feature": "country", "dbt_model": "features"}, {"feature": "spend_90d", "dbt_model": "features"},
                {"feature": "hour_of_request", "dbt_model": ""}]
    rows = {r["feature"]: r for r in catalogue.rows(features, MANIFEST, versions, "v0002")}
    assert rows["country"]["versions"] == ["v0002", "v0001"] and rows["country"]["in_current"]
    assert rows["spend_90d"]["versions"] == ["v0001"] and not rows["spend_90d"]["in_current"]
    assert rows["hour_of_request"]["lineage"] is None and rows["hour_of_request"]["versions"] == []


@pytest.mark.data
@pytest.mark.server
def test_catalogue_page_lists_every_served_feature_with_lineage_and_the_current_models_use(console, browser, scored_data):
    from parity.features.feature_store import open_store
    from parity.features.retrieval import service_schema
    from parity.models import registry
    from tests.training.conftest import keep_data_dir_env

    signed_in(browser, console.base)
    browser.get(f"{console.base}/console/catalogue")
    rows = {r.get_attribute("data-feature"): r for r in wait_for(browser, "catalogue").find_elements(By.CSS_SELECTOR, "tbody tr")}
    current = registry.current_version(scored_data.registry_dir, "churn")
    meta = registry.read_metadata(scored_data.registry_dir, "churn", current)
    with keep_data_dir_env():
        served = [name for name, _ in service_schema(open_store(scored_data), meta["feature_service"]).features]
    assert set(served) <= set(rows)
    for name, _ in meta["features"]:  # every feature of the current model says so
        assert f"{current} (current)" in rows[name].find_element(By.CLASS_NAME, "versions").text
        assert meta["feature_service"] in rows[name].find_element(By.CLASS_NAME, "services").text
    # a mart feature's lineage reaches every listed client's raw files through staging
    manifest = json.loads(scored_data.dbt_manifest_path.read_text())
    raw_clients = {s["source_name"] for s in manifest["sources"].values()} & set(scored_data.clients)
    lineage = rows["spend_90d"].find_element(By.CLASS_NAME, "lineage")
    raw = lineage.find_element(By.CLASS_NAME, "layer-raw").text
    assert raw_clients and all(f"{client}." in raw for client in raw_clients)
    assert "stg_" in lineage.find_element(By.CLASS_NAME, "layer-staging").text
    assert "customer_features_weekly" in lineage.find_element(By.CLASS_NAME, "layer-mart").text
    assert errors(browser) == []
    shot(browser, "catalogue")
