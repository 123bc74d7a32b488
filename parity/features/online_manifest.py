"""The serving manifest: what a feature service's online read needs, written at `parity apply`.

Serving reads features straight from the SQLite online store with this manifest instead of
importing Feast (3+ s of the service's cold start). The manifest lists, per feature service, the
online store's SQLite file, one table per feature view with its features and Feast value types,
the entity key serialization version and each on-demand transformation (name, inputs, outputs and
the UDF source text Feast stored in its registry). Values read this way are identical to Feast's
(`parity.features.online.SqliteReader`, tested for every entity against the SDK and `OnlineReader`).

Staleness: the manifest records a fingerprint of the registry's *definitions* (the `spec` of
every entity, feature view, on-demand view and feature service, not the materialization
metadata that `make materialize` rewrites) and of the online-serving part of `feature_store.yaml`
(project, provider, registry, online store, entity key serialization; not the offline store).
`load_manifest` raises `ManifestError` (with the reason) when the manifest is missing, from
another format, or either fingerprint differs — the registry was applied without rewriting it,
or the online store config changed. Serving then falls back to Feast's provider (`parity.features.online.open_reader`): slower, never
wrong.

This module never imports Feast at module level; only `build_manifest` (run at apply) does.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import struct
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_NAME = "serving_manifest.json"
FORMAT = 2
# Feast ValueType numbers (feast.value_type.ValueType) of the scalars the direct reader decodes
VALUE_TYPES = {"BYTES": 1, "STRING": 2, "INT32": 3, "INT64": 4, "DOUBLE": 5, "FLOAT": 6, "BOOL": 7,
               "UNIX_TIMESTAMP": 8}
# Registry fields whose items' `spec` (field 1) define what serving reads: entities,
# feature_views, feature_services, on_demand_feature_views (feast/core/Registry.proto)
_DEFINITION_FIELDS = (1, 6, 7, 8)
# Bookkeeping Feast adds when it re-serializes a view, not a definition: materialization's
# from_proto/to_proto round trip writes a feature view's batch/stream source's
# data_source_class_type (DataSource field 17), which a re-apply had not (the manifest then went
# stale after any materialization that loaded data). Registry field -> spec field -> dropped field.
_DERIVED = {6: {7: 17, 9: 17}}


class ManifestError(RuntimeError):
    """The serving manifest cannot be used (missing, stale, unsupported); the message says why."""


@dataclass(frozen=True)
class ViewTable:
    """One feature view's SQLite table and the features to read from it with their value types."""

    name: str
    table: str
    join_key: str
    join_key_type: str
    features: dict[str, str]
    online_name: str = ""  # the view's name in the online store (Redis hash fields), versioned
    columns: dict[str, str] | None = None  # wide layout: feature -> its column


@dataclass(frozen=True)
class Transform:
    """One python-mode on-demand transformation, re-created from the source Feast stored."""

    name: str
    udf: Callable[[dict[str, Any]], dict[str, Any]]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class ServicePlan:
    """Everything the direct reader needs for one feature service."""

    name: str
    features: tuple[tuple[str, str], ...]  # service order, Feast type names (as service_schema)
    db_path: Path | None  # the SQLite file (None for Redis, whose connection is the profile's)
    entity_key_serialization_version: int
    views: tuple[ViewTable, ...]
    transforms: tuple[Transform, ...]
    store_kind: str = "sqlite"  # "sqlite" or "redis": which direct reader reads it
    project: str = ""
    layout: str = "rows"  # SQLite: "rows" = Feast's row per (entity, feature); "wide": a row per entity


def manifest_path(feast_dir: Path) -> Path:
    """Where apply writes the manifest: next to the Feast registry."""
    return feast_dir / MANIFEST_NAME


# the feature_store.yaml keys an online read depends on (a new offline store changes nothing here)
_ONLINE_CONFIG_KEYS = ("project", "provider", "registry", "online_store", "entity_key_serialization_version")


def online_config_fingerprint(store_yaml: Path) -> str:
    """sha256 of the online-serving keys of feature_store.yaml (as written, ${VARS} unresolved)."""
    import yaml

    raw = yaml.safe_load(store_yaml.read_text()) or {}
    relevant = {key: raw.get(key) for key in _ONLINE_CONFIG_KEYS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# registry fingerprint (protobuf wire format, no Feast import)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """Top-level (field number, wire type, value) triples of a serialized protobuf message."""
    out: list[tuple[int, int, bytes | int]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        if number == 0 or pos > len(data):
            raise ValueError("not a message")
        out.append((number, wire, value))
    return out


def _map_entry(wire: int, value: bytes | int) -> bool:
    """A map<string, string> entry: exactly key (1) and value (2), both length-delimited."""
    if wire != 2:
        return False
    try:
        fields = _fields(value)
    except (ValueError, IndexError):
        return False
    return [(n, w) for n, w, _ in fields] == [(1, 2), (2, 2)]


def _canonical(data: bytes, depth: int = 0) -> bytes:
    """A serialized message with its map entries sorted, recursively: protobuf writes map
    entries in no fixed order, and Feast re-serializes the registry at every materialization."""
    try:
        fields = _fields(data) if depth < 32 and data else None
    except (ValueError, IndexError):
        fields = None
    if fields is None:  # a string, bytes or a scalar: as it is
        return b"B" + data
    maps = {n for n, w, v in fields if _map_entry(w, v)}
    maps -= {n for n, w, v in fields if not _map_entry(w, v)}
    parts, entries = [], {}
    for number, wire, value in fields:
        if isinstance(value, bytes):
            value = _canonical(value, depth + 1)
        else:
            value = str(value).encode()
        part = b"%d:%d:%d:" % (number, wire, len(value)) + value
        if number in maps:
            entries.setdefault(number, []).append(part)
        else:
            parts.append(part)
    for number in sorted(entries):
        parts += sorted(entries[number])
    return b"M" + b"".join(parts)


def definitions_fingerprint(registry_bytes: bytes) -> str:
    """sha256 over the `spec` of every entity, feature view, feature service and on-demand view
    in a serialized Feast registry: materialization metadata excluded, map order ignored."""
    return _items_fingerprint((number, item) for number, _, item in _fields(registry_bytes)
                              if number in _DEFINITION_FIELDS and isinstance(item, bytes))


def _items_fingerprint(items: Any, drop: dict[int, int] | None = None) -> str:
    """The fingerprint of (registry field number, serialized object) pairs: their specs', without
    the spec field numbered `drop[number]` when given."""
    specs = []
    for number, item in items:
        spec = next((v for n, _, v in _fields(item) if n == 1), b"")
        if drop and number in drop:
            spec = b"".join(_encode(n, w, v) for n, w, v in _fields(spec) if n != drop[number])
        if number in _DERIVED:
            spec = b"".join(_encode(n, w, _without(v, _DERIVED[number][n]) if n in _DERIVED[number] else v)
                            for n, w, v in _fields(spec))
        specs.append(number.to_bytes(1, "little") + hashlib.sha256(_canonical(spec)).digest())
    return hashlib.sha256(b"".join(sorted(specs))).hexdigest()


def _without(message: bytes | int, number: int) -> bytes | int:
    """A serialized message without its field `number` (a scalar: as it is)."""
    if not isinstance(message, bytes):
        return message
    return b"".join(_encode(n, w, v) for n, w, v in _fields(message) if n != number)


def _encode(number: int, wire: int, value: bytes | int) -> bytes:
    """One field back in protobuf wire format (inverse of `_fields` for one triple)."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)
    head = varint(number << 3 | wire)
    if wire == 0:
        return head + varint(int(value))
    if wire == 2:
        return head + varint(len(value)) + value
    return head + value  # fixed 32/64-bit: the raw bytes


# Feast's SQL registry (feast/infra/registry/sql.py): table and proto column of each definition
# kind, by the Registry proto field number the file registry stores it under
_SQL_TABLES = {1: ("entities", "entity_proto"), 6: ("feature_views", "feature_view_proto"),
               7: ("feature_services", "feature_service_proto"),
               8: ("on_demand_feature_views", "feature_view_proto")}
# the `project` field of each spec (EntitySpecV2: 9, the others: 2): Feast's SQL registry writes a
# feature view back without it at materialization, and the rows are selected by project anyway
_SPEC_PROJECT = {1: 9, 6: 2, 7: 2, 8: 2}


def sql_definitions_fingerprint(url: str, project: str) -> str:
    """`definitions_fingerprint` of a project in Feast's SQL registry at `url` (SQLAlchemy URL),
    read from its tables (the same protos the file registry holds), without importing Feast."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as con:
            items = [(number, bytes(row[0])) for number, (table, column) in _SQL_TABLES.items()
                     for row in con.execute(sqlalchemy.text(f"select {column} from {table} where project_id = :p"),
                                            {"p": project})]
        engine.dispose()
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise ManifestError(f"the SQL registry cannot be read ({type(err).__name__}: {str(err).splitlines()[0]}): "
                            "run `make services-up` (or set PARITY_REGISTRY_URL)") from err
    return _items_fingerprint(items, _SPEC_PROJECT)


# --------------------------------------------------------------------------------------------
# entity keys and values


def entity_key_bytes(join_key: str, value: str | int, value_type: str = "STRING", version: int = 3) -> bytes:
    """Feast's `serialize_entity_key` (version 3) of a single-join-key entity key."""
    if version != 3:
        raise ManifestError(f"entity key serialization version {version} is not supported (only 3)")
    key = join_key.encode("utf8")
    if value_type == "STRING":
        raw, code = str(value).encode("utf8"), VALUE_TYPES["STRING"]
    elif value_type == "INT64":
        raw, code = struct.pack("<q", int(value)), VALUE_TYPES["INT64"]
    else:
        raise ManifestError(f"entity join key type {value_type} is not supported (STRING, INT64)")
    return b"".join((struct.pack("<III", 1, VALUE_TYPES["STRING"], len(key)), key,
                     struct.pack("<II", code, len(raw)), raw))


def string_key_prefix(join_key: str) -> bytes:
    """The constant head of a STRING single-join-key entity key; append len + utf8 value."""
    key = join_key.encode("utf8")
    return struct.pack("<III", 1, VALUE_TYPES["STRING"], len(key)) + key + struct.pack("<I", VALUE_TYPES["STRING"])


def value_message() -> type:
    """Feast's generated `Value` protobuf class, loaded from its file so `feast/__init__` (3 s
    of imports) never runs; the already-imported module when Feast is loaded anyway."""
    import importlib.util
    import sys

    loaded = sys.modules.get("feast.protos.feast.types.Value_pb2")
    if loaded is not None:
        return loaded.Value
    spec = importlib.util.find_spec("feast")
    if spec is None or not spec.submodule_search_locations:
        raise ManifestError("the feast package is not installed (its Value protobuf is needed)")
    path = Path(next(iter(spec.submodule_search_locations))) / "protos" / "feast" / "types" / "Value_pb2.py"
    module_spec = importlib.util.spec_from_file_location("_parity_feast_value_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # registers feast/types/Value.proto in the default pool
    return module.Value


def load_udf(source: str, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The transformation function from the source text Feast stored (decorators dropped), in the
    namespace Feast's own rehydration uses (`pd`/`np` available; the UDF imports the rest)."""
    import numpy as np

    tree = ast.parse(textwrap.dedent(source))
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not functions:
        raise ManifestError(f"on-demand view '{name}': no function in the stored UDF source")
    for node in functions:
        node.decorator_list = []
    namespace: dict[str, Any] = {"__name__": "feast_udf_rehydrate", "np": np, "numpy": np}
    # pandas only for a function that names it: importing it was ~0.15 s of the service's start
    if {"pd", "pandas"} & {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}:
        import pandas as pd

        namespace.update(pd=pd, pandas=pd)
    exec(compile(tree, f"<on-demand view {name}>", "exec"), namespace)  # noqa: S102 (our registry's source)
    chosen = next((n for n in functions if n.name == name), functions[0])
    return namespace[chosen.name]


# --------------------------------------------------------------------------------------------
# write (at apply; imports Feast) and load (at serving start; no Feast)


def _portable(path: Path, folder: Path) -> str:
    """`path` relative to the manifest's folder when inside it (a copied data folder then reads
    its own files), else absolute."""
    path, folder = path.resolve(), folder.resolve()
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)


def build_manifest(store: Any, registry_file: Path, store_yaml: Path, feast_dir: Path) -> dict[str, Any]:
    """The manifest of every feature service of an applied store (run right after apply)."""
    from feast.infra.online_stores.helpers import compute_table_id
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    from parity.features.retrieval import service_schema

    config = store.config
    online = store._get_provider().online_store
    # Feast's own per-feature rows, or the wide store's one row per entity (parity.features.wide_store)
    layout = "wide" if hasattr(online, "table_name") and hasattr(online, "write_arrow") else "rows"
    direct = isinstance(online, SqliteOnlineStore) and (
        layout == "wide" or type(online).online_read is SqliteOnlineStore.online_read)
    kind = "sqlite" if direct else _redis_kind(online, config)
    table_id = compute_table_id if layout == "rows" else (lambda project, view, versioning: online.table_name(config, view))
    versioning = bool(getattr(config.registry, "enable_online_feature_view_versioning", False))
    if getattr(config.registry, "registry_type", "file") == "sql":
        registry = {"kind": "sql", "definitions_sha256": sql_definitions_fingerprint(config.registry.path, config.project)}
    else:
        registry = {"kind": "file", "path": _portable(registry_file, feast_dir),
                    "definitions_sha256": definitions_fingerprint(registry_file.read_bytes())}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "project": config.project,
        "registry": registry,
        "feature_store_yaml": {"path": str(store_yaml), "online_sha256": online_config_fingerprint(store_yaml)},
        "online_store": {"type": config.online_store.type,
                         "path": _portable(Path(SqliteOnlineStore._get_db_path(config)), feast_dir) if direct else None,
                         "direct_read": kind is not None, "kind": kind, "layout": layout},
        "entity_key_serialization_version": config.entity_key_serialization_version,
        "feature_services": {},
    }
    for service in store.list_feature_services():
        manifest["feature_services"][service.name] = _service_entry(
            store, service, table_id, versioning, layout == "wide")
        manifest["feature_services"][service.name]["features"] = [
            list(f) for f in service_schema(store, service.name).features]
    return manifest


def _redis_kind(online: Any, config: Any) -> str | None:
    """"redis" when the online store is Feast's own Redis store on one server or a cluster (read
    directly by parity.features.online_redis), else None (read through Feast)."""
    from feast.infra.online_stores.redis import RedisOnlineStore

    if not isinstance(online, RedisOnlineStore) or type(online).online_read is not RedisOnlineStore.online_read:
        return None
    redis_type = str(getattr(getattr(config.online_store, "redis_type", None), "value", "redis"))
    return "redis" if redis_type in ("redis", "redis_cluster") else None


def _service_entry(store: Any, service: Any, table_id: Callable[..., str], versioning: bool,
                   wide: bool = False) -> dict[str, Any]:
    """Views (tables, features, types) and transformations of one service, resolved as
    `parity.features.retrieval.resolve_service` (as offline retrieval and OnlineReader)."""
    from parity.features.retrieval import resolve_service

    plan = resolve_service(store, service)
    transforms, problems = [], []
    for step in plan.steps:
        if step.mode != "python" or not step.source or step.chained:
            problems.append(f"on-demand view '{step.name}' is not a python-mode view with stored source")
        transforms.append({"name": step.name, "udf_name": getattr(step.udf, "__name__", step.name),
                           "udf_source": step.source, "inputs": list(step.inputs), "outputs": list(step.outputs)})
    views = []
    for name, features in sorted(plan.views.items()):
        view = store.get_feature_view(name)
        types = {f.name: f.dtype.to_value_type().name for f in view.features}
        keys = [(c.name, c.dtype.to_value_type().name) for c in view.entity_columns]
        unsupported = sorted(f for f in features if types.get(f) not in VALUE_TYPES)
        if unsupported:
            problems.append(f"view '{name}': value types of {unsupported} are not read directly")
        if len(keys) != 1:
            problems.append(f"view '{name}': {len(keys)} join keys (the direct reader takes one)")
        from feast.infra.online_stores.helpers import compute_versioned_name

        entry = {"name": name, "table": table_id(store.config.project, view, versioning),
                 "online_name": compute_versioned_name(view, versioning),
                 "join_key": keys[0][0] if keys else None, "join_key_type": keys[0][1] if keys else None,
                 "features": {f: types.get(f) for f in sorted(features)}}
        if wide:  # the wide store's feature columns (parity.features.wide_store)
            from parity.features.wide_store import column_name

            entry["columns"] = {f: column_name(f, types.get(f)) for f in sorted(features)}
        views.append(entry)
    return {"views": views, "on_demand": transforms, "problems": problems}


def write_manifest(store: Any, registry_file: Path, store_yaml: Path, feast_dir: Path) -> Path:
    """Build and write the manifest atomically (temp file + rename)."""
    path = manifest_path(feast_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(build_manifest(store, registry_file, store_yaml, feast_dir), indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def load_manifest(feast_dir: Path, store_yaml: Path, registry_url: str | None = None) -> dict[str, Any]:
    """The manifest, checked fresh against the registry and feature_store.yaml (ManifestError
    otherwise, with the reason and the fix). `registry_url`: the SQL registry's URL (resolved
    from the profile) when the manifest was written from one."""
    path = manifest_path(feast_dir)
    if not path.exists():
        raise ManifestError(f"no serving manifest at {path}: run `make apply`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"serving manifest format {manifest.get('format')!r} != {FORMAT}: run `make apply`")
    if manifest["registry"].get("kind") == "sql":
        if not registry_url:
            raise ManifestError("the serving manifest was written from a SQL registry and no registry URL was given")
        current = sql_definitions_fingerprint(registry_url, manifest["project"])
    else:
        registry = feast_dir / manifest["registry"]["path"]  # an absolute path stays absolute
        if not registry.exists():
            raise ManifestError(f"the registry {registry} named by the serving manifest does not exist: run `make apply`")
        current = definitions_fingerprint(registry.read_bytes())
    if current != manifest["registry"]["definitions_sha256"]:
        raise ManifestError("the Feast registry's definitions changed since the serving manifest was written "
                            "(applied without `parity apply`?): run `make apply`")
    if not store_yaml.exists() or online_config_fingerprint(store_yaml) != manifest["feature_store_yaml"]["online_sha256"]:
        raise ManifestError(f"the online store settings in {store_yaml} changed since the serving manifest was "
                            "written: run `make apply`")
    manifest["folder"] = str(feast_dir)
    return manifest


def service_plan(manifest: dict[str, Any], service_name: str) -> ServicePlan:
    """The direct-read plan of one service (ManifestError when the store or a type is not supported)."""
    online = manifest["online_store"]
    if not online.get("direct_read"):
        raise ManifestError(f"online store type {online.get('type')!r} is not read directly (SQLite, Redis only)")
    entry = manifest["feature_services"].get(service_name)
    if entry is None:
        raise ManifestError(f"feature service '{service_name}' is not in the serving manifest "
                            f"(known: {sorted(manifest['feature_services'])}): define it and run `make apply`")
    if entry["problems"]:
        raise ManifestError(f"feature service '{service_name}': " + "; ".join(entry["problems"]))
    version = int(manifest["entity_key_serialization_version"])
    if version != 3:
        raise ManifestError(f"entity key serialization version {version} is not supported (only 3)")
    views = tuple(ViewTable(v["name"], v["table"], v["join_key"], v["join_key_type"], dict(v["features"]),
                            v.get("online_name") or v["name"], dict(v["columns"]) if v.get("columns") else None)
                  for v in entry["views"])
    transforms = tuple(Transform(t["name"], load_udf(t["udf_source"], t["udf_name"]), tuple(t["inputs"]),
                                 tuple(t["outputs"])) for t in entry["on_demand"])
    kind = online.get("kind") or "sqlite"
    db_path = Path(manifest.get("folder", ".")) / online["path"] if kind == "sqlite" else None
    layout = online.get("layout", "rows")
    if layout not in ("rows", "wide"):
        raise ManifestError(f"online store layout {layout!r} is not read directly (rows, wide)")
    return ServicePlan(service_name, tuple((n, t) for n, t in entry["features"]), db_path, version,
                       views, transforms, kind, manifest.get("project", ""), layout)
