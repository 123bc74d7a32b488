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


def test_lineage_walks_the_manifest_by_layer():
    country = catalogue.upstream(MANIFEST, "features", "country")
    assert country.by_layer == {"raw": ["acme.customers", "bolt.customers"],
                                "staging": ["stg_acme__customers", "stg_bolt__customers"],
                                "intermediate": ["int_customers"], "mart": ["features"]}  # the seed is no model lineage
    assert country.columns == {layer: [] for layer in catalogue.LAYERS}  # no column lineage asked for
    assert catalogue.upstream(MANIFEST, "no_such_mart", "x").by_layer["mart"] == []


def _model(name: str, folder: str, sql: str | None, parents: list[str]) -> dict:
    return {"resource_type": "model", "name": name, "original_file_path": f"models/{folder}/{name}.sql",
            "relation_name": f'"w"."{folder}"."{name}"', "columns": {}, "depends_on": {"nodes": parents},
            **({"compiled_code": sql} if sql else {})}


# compiled SQL shaped like the project's: a staging model names the raw file's fields in the import
# CTE that reads it line by line, renames them, and joins a seed; a mart aggregates
COMPILED = {
    "sources": {"source.p.acme.customers": {
        "resource_type": "source", "source_name": "acme", "name": "customers",
        "relation_name": "read_csv('/raw/acme/customers.csv', columns=struct_pack(raw_line := 'VARCHAR'))",
        "columns": {"raw_line": {}}, "meta": {"required_fields": ["Kunden Nr", "land", "betrag"]}}},
    "nodes": {
        "seed.p.rates": {"resource_type": "seed", "name": "rates", "relation_name": '"w"."main"."rates"',
                         "columns": {"code": {}, "usd_per_unit": {}}},
        "model.p.stg_acme__customers": _model("stg_acme__customers", "staging", """
            with source as (
                select * from (
                    with lines as (select raw_line from read_csv('/raw/acme/customers.csv', columns=struct_pack(raw_line := 'VARCHAR')))
                    select split_part(raw_line, ';', 1) as "Kunden Nr", split_part(raw_line, ';', 2) as land,
                           split_part(raw_line, ';', 3) as betrag, raw_line from lines
                ) as records
            ),
            rates as (select * from "w"."main"."rates"),
            parsed as (
                select 'acme:' || "Kunden Nr" as customer_id, upper(land) as country, 'acme' as client_id,
                       cast(betrag as double) * rates.usd_per_unit as amount_usd, sha256(raw_line) as raw_line_sha256,
                       '/raw/acme/customers.csv' as source_file
                from source left join rates on rates.code = 'EUR'
            )
            select * from parsed""", ["source.p.acme.customers", "seed.p.rates"]),
        "model.p.features": _model("features", "marts", """
            with customers as (select * from "w"."staging"."stg_acme__customers"),
            final as (select customer_id, max(country) as country, sum(amount_usd) as spend, max(client_id) as client_id
                      from customers group by customer_id)
            select * from final""", ["model.p.stg_acme__customers"]),
        "model.p.unbuilt": _model("unbuilt", "marts", None, ["model.p.stg_acme__customers"]),
    },
}


def test_column_lineage_traces_compiled_sql_from_the_mart_to_the_raw_files_fields():
    from parity.ingest.column_lineage import ColumnLineage

    columns = ColumnLineage(COMPILED)
    country = catalogue.upstream(COMPILED, "features", "country", columns)
    assert country.columns == {"raw": ["acme.customers.land"], "staging": ["stg_acme__customers.country"],
                               "intermediate": [], "mart": ["features.country"]}
    assert country.problem is None
    spend = catalogue.upstream(COMPILED, "features", "spend", columns)  # the file's field and the seed's rate
    assert spend.columns["raw"] == ["acme.customers.betrag", "seed rates.usd_per_unit"]
    key = catalogue.upstream(COMPILED, "features", "customer_id", columns)
    assert key.columns["raw"] == ["acme.customers.Kunden Nr"]  # quoted, any case: the field as documented
    # a column computed from a constant reaches no raw field, and says so rather than guessing
    client = catalogue.upstream(COMPILED, "features", "client_id", columns)
    assert client.columns["raw"] == [] and "no raw field reached" in client.problem
    unbuilt = catalogue.upstream(COMPILED, "unbuilt", "x", columns)
    assert unbuilt.columns["raw"] == [] and "no compiled SQL" in unbuilt.problem


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
    # column level, traced through the build's compiled SQL: each client's raw field -> its staging
    # column -> ... -> the mart column
    country = rows["country"].find_element(By.CLASS_NAME, "lineage")
    assert country.find_element(By.CLASS_NAME, "layer-mart").text.split()[-1] == "customer_features_weekly.country"
    staged = country.find_element(By.CLASS_NAME, "layer-staging").text.split(maxsplit=1)[1].split(", ")
    customer_models = {n["name"] for n in manifest["nodes"].values()
                       if n["resource_type"] == "model" and n["name"].startswith("stg_") and n["name"].endswith("__customers")}
    assert set(staged) == {f"{m}.country" for m in customer_models}
    raw_fields = country.find_element(By.CLASS_NAME, "layer-raw").text.split(maxsplit=1)[1].split(", ")
    assert raw_fields and all(f.split(".")[0] in scored_data.clients for f in raw_fields)
    if "acme" in scored_data.clients:  # acme's file calls it `land` (its source YAML), staging renames it
        assert "acme.customers.land" in raw_fields
    assert not rows["country"].find_elements(By.CLASS_NAME, "lineage-problem")
    assert errors(browser) == []
    shot(browser, "catalogue")
