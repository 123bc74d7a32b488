"""Derive Feast definitions from the dbt manifest: the dbt mart YAML is the one source of truth.

A feature mart declares `meta.feast` (feature view name, entity, join key, timestamp field, TTL)
and marks feature columns with `meta: {feature: true}`; the contract `data_type` gives the type
and the column description the Feast description. This module turns that into Feast objects and
refuses any type Feast would read differently offline and online (decimal, int32, float32,
naive timestamps), naming the column.

The profile's offline store (feature_store*.yaml) chooses the source class: a Parquet `FileSource`
for the embedded DuckDB store, a `SparkSource` over the same Parquet location for Spark. The
engine that built the marts (the manifest's `adapter_type`) chooses how type names read: Spark's
`timestamp` is an instant (its TIMESTAMP_LTZ), DuckDB's a naive time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from feast import Entity, FeatureView, Field, FileSource
from feast.data_format import ParquetFormat
from feast.data_source import DataSource
from feast.types import Bool, FeastType, Float64, Int64, String, UnixTimestamp

# dbt contract data_type (lower-cased) -> Feast type. Only types that read back identically on
# the offline (Parquet via DuckDB) and online (SQLite/Redis protobuf) paths are allowed.
DBT_TO_FEAST: dict[str, FeastType] = {
    "double": Float64,
    "float8": Float64,
    "double precision": Float64,
    "bigint": Int64,
    "int8": Int64,
    "varchar": String,
    "text": String,
    "string": String,
    "boolean": Bool,
    "timestamptz": UnixTimestamp,
    "timestamp with time zone": UnixTimestamp,
}

# Type names that mean something else on another engine (dbt adapter_type -> extra mappings):
# Spark's TIMESTAMP (= TIMESTAMP_LTZ) is an instant, stored UTC-adjusted in Parquet.
ENGINE_TYPES: dict[str, dict[str, FeastType]] = {
    "spark": {"timestamp": UnixTimestamp, "timestamp_ltz": UnixTimestamp},
}
# offline store types (feature_store*.yaml `offline_store.type`) whose sources are SparkSource
SPARK_OFFLINE_STORES = frozenset({"spark", "parity.features.spark_store.ArrowSparkOfflineStore",
                                  "feast.infra.offline_stores.contrib.spark_offline_store.spark.SparkOfflineStore"})

# Feast type -> the Arrow type the Parquet column must have.
FEAST_TO_ARROW: dict[str, tuple[str, ...]] = {
    "Float64": ("double",),
    "Int64": ("int64",),
    "String": ("string", "large_string"),
    "Bool": ("bool",),
    "UnixTimestamp": ("timestamp[us, tz=UTC]", "timestamp[ns, tz=UTC]", "timestamp[ms, tz=UTC]"),
}

WHY_NOT = {
    "decimal": "Feast's offline path returns Decimal while the online path returns float; cast to double",
    "numeric": "Feast's offline path returns Decimal while the online path returns float; cast to double",
    "integer": "int32 offline vs int64 online; cast to bigint",
    "int": "int32 offline vs int64 online; cast to bigint",
    "int4": "int32 offline vs int64 online; cast to bigint",
    "smallint": "a narrow integer reads differently offline and online; cast to bigint",
    "float": "float32 loses precision against online float64; cast to double",
    "real": "float32 loses precision against online float64; cast to double",
    "timestamp": "a naive timestamp is ambiguous; use timestamptz (UTC)",
    "timestamp_ntz": "a naive timestamp is ambiguous; use timestamp (Spark's instant type)",
    "date": "dates are not a Feast feature type; use timestamptz (UTC)",
}


class DefinitionError(ValueError):
    """The dbt declaration of a feature cannot become an exact Feast feature."""


@dataclass(frozen=True)
class FeatureColumn:
    """One feature column as declared in dbt."""

    name: str
    dbt_type: str
    feast_type: FeastType
    description: str


@dataclass(frozen=True)
class MartSpec:
    """One feature mart as declared in dbt: where it is written and what Feast reads from it."""

    model: str
    path: str
    feature_view: str
    entity: str
    join_key: str
    timestamp_field: str
    ttl: timedelta
    description: str
    owner: str
    features: tuple[FeatureColumn, ...]


def load_manifest(path: Path) -> dict[str, Any]:
    """Read dbt's manifest.json, with a clear message when dbt has not been run."""
    if not path.exists():
        raise DefinitionError(f"dbt manifest not found at {path}: run `make build` (or dbt parse) first")
    return json.loads(path.read_text())


def feast_type_for(model: str, column: str, dbt_type: str | None, engine: str = "duckdb") -> FeastType:
    """Map a dbt contract type (as `engine` names it) to its exact Feast type, or fail naming the column."""
    if not dbt_type:
        raise DefinitionError(f"{model}.{column}: feature column has no contract data_type")
    key = dbt_type.strip().lower()
    known = {**DBT_TO_FEAST, **ENGINE_TYPES.get(engine, {})}
    if key in known:
        return known[key]
    base = key.split("(")[0].strip()
    reason = WHY_NOT.get(base, "no exact Feast type")
    raise DefinitionError(f"{model}.{column}: dbt data_type '{dbt_type}' is not allowed for a feature ({reason})")


def mart_specs(manifest: dict[str, Any]) -> list[MartSpec]:
    """Every dbt model that declares `meta.feast`, with its feature columns, in manifest order."""
    specs = []
    engine = (manifest.get("metadata") or {}).get("adapter_type") or "duckdb"
    for node in manifest["nodes"].values():
        if node.get("resource_type") != "model":
            continue
        meta = node.get("config", {}).get("meta") or node.get("meta") or {}
        feast_meta = meta.get("feast")
        if not feast_meta:
            continue
        model = node["name"]
        if node["config"].get("materialized") != "external" or not node["config"].get("location"):
            raise DefinitionError(f"{model}: a Feast mart must be materialized='external' with a Parquet location")
        if not node["config"].get("contract", {}).get("enforced"):
            raise DefinitionError(f"{model}: a Feast mart must have an enforced contract")
        columns = node.get("columns", {})
        for required in (feast_meta["join_key"], feast_meta["timestamp_field"]):
            if required not in columns:
                raise DefinitionError(f"{model}: meta.feast names column '{required}' that the model does not document")
        features = tuple(
            FeatureColumn(
                name=name,
                dbt_type=col.get("data_type") or "",
                feast_type=feast_type_for(model, name, col.get("data_type"), engine),
                description=col.get("description") or "",
            )
            for name, col in columns.items()
            if (col.get("meta") or {}).get("feature") or "feature" in (col.get("tags") or [])
        )
        undocumented = [f.name for f in features if not f.description.strip()]
        if undocumented:
            raise DefinitionError(f"{model}: feature column(s) {undocumented} have no description")
        specs.append(
            MartSpec(
                model=model,
                path=node["config"]["location"],
                feature_view=feast_meta["feature_view"],
                entity=feast_meta["entity"],
                join_key=feast_meta["join_key"],
                timestamp_field=feast_meta["timestamp_field"],
                ttl=timedelta(days=float(feast_meta["ttl_days"])),
                description=feast_meta.get("description") or node.get("description", ""),
                owner=meta.get("owner", ""),
                features=features,
            )
        )
    return sorted(specs, key=lambda s: s.feature_view)


def source_class(offline_store: str) -> type:
    """The batch source class of an offline store type: SparkSource for Spark, else FileSource."""
    if offline_store in SPARK_OFFLINE_STORES:
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

        return SparkSource
    return FileSource


def batch_source(spec: MartSpec, offline_store: str, tags: dict[str, str]) -> DataSource:
    """The mart's Parquet output as the source class of the profile's offline store."""
    common = {"name": f"{spec.model}_source", "path": spec.path, "timestamp_field": spec.timestamp_field,
              "description": f"Parquet output of dbt model {spec.model}", "tags": tags}
    if offline_store in SPARK_OFFLINE_STORES:
        import warnings

        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

        with warnings.catch_warnings():  # "experimental" on every construction: said once in the README
            warnings.simplefilter("ignore", RuntimeWarning)
            return SparkSource(file_format="parquet", **common)
    return FileSource(file_format=ParquetFormat(), **common)


def build_feature_view(spec: MartSpec, entity: Entity, offline_store: str = "duckdb") -> FeatureView:
    """The Feast FeatureView (and its Parquet source for `offline_store`) for one mart."""
    if entity.join_key != spec.join_key:
        raise DefinitionError(
            f"{spec.model}: join key '{spec.join_key}' does not match entity '{entity.name}' ({entity.join_key})"
        )
    tags = {"owner": spec.owner, "dbt_model": spec.model, "derived_from": "dbt manifest"}
    source = batch_source(spec, offline_store, tags)
    return FeatureView(
        name=spec.feature_view,
        entities=[entity],
        ttl=spec.ttl,
        schema=[Field(name=f.name, dtype=f.feast_type, description=f.description) for f in spec.features],
        source=source,
        online=True,
        description=spec.description,
        tags=tags,
        owner=spec.owner,
    )


def derive_feature_views(manifest: dict[str, Any], entities: Iterable[Entity],
                         offline_store: str = "duckdb") -> dict[str, FeatureView]:
    """All feature views declared in the manifest, keyed by name, with sources for `offline_store`
    (the `offline_store.type` of the profile's feature_store*.yaml)."""
    by_name = {e.name: e for e in entities}
    views = {}
    for spec in mart_specs(manifest):
        if spec.entity not in by_name:
            raise DefinitionError(f"{spec.model}: meta.feast.entity '{spec.entity}' is not a defined entity {sorted(by_name)}")
        views[spec.feature_view] = build_feature_view(spec, by_name[spec.entity], offline_store)
    return views


def select_features(view: FeatureView, names: list[str], service: str) -> Any:
    """A projection of `view` on `names`, failing with the missing names (a service asks for a
    feature that no dbt column declares)."""
    have = {f.name for f in view.features}
    missing = [n for n in names if n not in have]
    if missing:
        raise DefinitionError(
            f"feature service '{service}' uses {missing} from feature view '{view.name}', but the dbt model "
            f"'{view.tags.get('dbt_model')}' declares no such feature column"
        )
    return view[names]


def check_parquet_schema(spec: MartSpec) -> list[str]:
    """Problems where the Parquet file's Arrow types differ from the declared Feast types."""
    import pyarrow.parquet as pq

    path = Path(spec.path)
    if not path.exists():
        return [f"{spec.model}: Parquet output {path} does not exist (run `make build`)"]
    if path.is_dir():  # a part directory (Spark): the dataset's schema
        import pyarrow.dataset as ds

        schema = ds.dataset(path, format="parquet", exclude_invalid_files=True).schema
    else:
        schema = pq.read_schema(path)
    problems = []
    expected = [(spec.join_key, ("string", "large_string")), (spec.timestamp_field, FEAST_TO_ARROW["UnixTimestamp"])]
    expected += [(f.name, FEAST_TO_ARROW[str(f.feast_type)]) for f in spec.features]
    for name, allowed in expected:
        if name not in schema.names:
            problems.append(f"{spec.model}.{name}: declared in dbt but missing from {path.name}")
        elif str(schema.field(name).type) not in allowed:
            problems.append(
                f"{spec.model}.{name}: Parquet type {schema.field(name).type} but Feast reads it as "
                f"{allowed[0]} (declared in dbt); offline and online values would differ"
            )
    return problems
