"""Retrieval helpers: the only way training and serving read features.

`training_frame` (offline, point-in-time) and `online_frame` (online store) return the same
columns in the same order with the same dtypes: the entity key, the prediction time and then the
feature service's features in service order. Types follow the Feast schema exactly (derived from
the dbt contracts): Int64 -> pandas Int64 (nullable), Float64 -> float64, String -> object,
UnixTimestamp -> datetime64[us, UTC], Bool -> boolean.

Offline, Feast is asked for the batch features only (plus the inputs of the service's on-demand
views); the platform then runs each on-demand view's *registered* python function on just its
input columns. Feast itself would run it as `udf(joined_table.to_pydict())`: every column of the
joined table as python objects, most of the retrieval time. A function tagged `udf_accepts_arrow`
gets Arrow columns (vectorised); any other gets python lists of its inputs, as online. The batch
join itself is the configured offline store's (feature_store.yaml: parity.features.stores.AsofDuckDBOfflineStore,
which returns rows in input order; any other store's order is restored from a row number).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from parity.features.feature_store import FeatureStoreError

if TYPE_CHECKING:
    import pandas as pd

ENTITY_KEY = "customer_id"
TIME_COLUMN = "event_timestamp"
REQUEST_TIME = "request_at"

ARROW_TYPES: dict[str, pa.DataType] = {
    "Float64": pa.float64(),
    "Int64": pa.int64(),
    "String": pa.string(),
    "Bool": pa.bool_(),
    "UnixTimestamp": pa.timestamp("us", tz="UTC"),
}
# tag of an on-demand view whose python function also accepts pyarrow columns
ARROW_UDF_TAG = "udf_accepts_arrow"


@dataclass(frozen=True)
class ServiceSchema:
    """The ordered features of a feature service with their Feast type names."""

    name: str
    features: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.features]

    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of a retrieval result: key, time, then the features."""
        fields = [pa.field(ENTITY_KEY, pa.string()), pa.field(TIME_COLUMN, ARROW_TYPES["UnixTimestamp"])]
        fields += [pa.field(name, ARROW_TYPES[dtype]) for name, dtype in self.features]
        return pa.schema(fields)


def get_service(store: Any, name: str) -> Any:
    """The named FeatureService, or an error listing the ones that exist and what to run."""
    from feast.errors import FeatureServiceNotFoundException

    try:
        return store.get_feature_service(name, allow_cache=True)
    except FeatureServiceNotFoundException:
        known = sorted(s.name for s in store.list_feature_services())
        raise FeatureStoreError(
            f"feature service '{name}' is not in the registry (known: {known}); "
            "define it in feature_repo/services.py and run `make apply`"
        ) from None


def service_schema(store: Any, name: str) -> ServiceSchema:
    """Features of a service in service order, with their Feast types."""
    return schema_of(get_service(store, name))


def schema_of(service: Any) -> ServiceSchema:
    """The ServiceSchema of a FeatureService object."""
    features = []
    for projection in service.feature_view_projections:
        for field in projection.features:
            features.append((field.name, str(field.dtype)))
    return ServiceSchema(name=service.name, features=tuple(features))


def conform(table: pa.Table, schema: ServiceSchema) -> pa.Table:
    """Select key, time and features in order and cast each to its declared Arrow type.

    Casts are `safe` (a lossy conversion raises): this only normalises representation, e.g.
    timestamp precision, never values.
    """
    target = schema.arrow_schema()
    columns = []
    for field in target:
        if field.name not in table.column_names:
            raise FeatureStoreError(f"retrieval result lacks column '{field.name}' of service '{schema.name}'")
        column = table.column(field.name)
        columns.append(column if column.type == field.type else column.cast(field.type, safe=True))
    return pa.Table.from_arrays(columns, schema=target)


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas with nullable integers/booleans (NaN never turns an int into a float)."""
    import pandas as pd  # here, not at the top: the serving process imports this module, not pandas

    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get)


@dataclass(frozen=True)
class OnDemandStep:
    """One on-demand view of a service: its registered function, inputs and wanted outputs."""

    name: str
    udf: Any
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    accepts_arrow: bool
    mode: str = "python"
    source: str = ""  # the function's source text, as Feast stores it (python mode)
    chained: bool = False  # fed by another on-demand view


@dataclass(frozen=True)
class ServicePlan:
    """What reading a feature service takes: the batch views with the features to read from each
    (the service's own and its on-demand views' inputs, in service order) and the on-demand
    steps to run on them. The one resolution used offline, online and by the serving manifest."""

    views: dict[str, tuple[str, ...]]
    steps: tuple[OnDemandStep, ...]


def resolve_service(store: Any, service: Any) -> ServicePlan:
    """The ServicePlan of a FeatureService (see ServicePlan)."""
    odfvs = {view.name: view for view in store.list_on_demand_feature_views(allow_cache=True)}
    views: dict[str, dict[str, None]] = {}
    steps: list[OnDemandStep] = []
    for projection in service.feature_view_projections:
        wanted = [f.name for f in projection.features]
        odfv = odfvs.get(projection.name)
        if odfv is None:
            views.setdefault(projection.name, {}).update(dict.fromkeys(wanted))
            continue
        sources = list(odfv.source_feature_view_projections.values())
        inputs = [f.name for source in sources for f in source.features]
        for source in sources:
            views.setdefault(source.name, {}).update(dict.fromkeys(f.name for f in source.features))
        inputs += [f.name for request in odfv.source_request_sources.values() for f in request.schema]
        transformation = odfv.feature_transformation
        steps.append(OnDemandStep(
            name=odfv.name,
            udf=transformation.udf,
            inputs=tuple(inputs),
            outputs=tuple(wanted),
            accepts_arrow=(odfv.tags or {}).get(ARROW_UDF_TAG) == "true",
            mode=getattr(odfv, "mode", "python"),
            source=getattr(transformation, "udf_string", "") or "",
            chained=any(source.name in odfvs for source in sources),
        ))
    return ServicePlan({name: tuple(features) for name, features in views.items()}, tuple(steps))


def offline_plan(store: Any, service: Any) -> tuple[list[str], list[OnDemandStep]] | None:
    """For a FeatureService: the batch feature refs to ask Feast for (its batch features and its
    on-demand views' inputs) and the on-demand steps to run on the result; None when only Feast's
    own path applies (a pandas-mode on-demand view, or one fed by another on-demand view)."""
    plan = resolve_service(store, service)
    if any(step.mode != "python" or step.chained for step in plan.steps):
        return None
    return [f"{view}:{name}" for view, names in plan.views.items() for name in names], list(plan.steps)


def run_on_demand(table: pa.Table, steps: Sequence[OnDemandStep]) -> pa.Table:
    """Append each step's outputs, computed by its registered function on its input columns only."""
    for step in steps:
        missing = [name for name in step.inputs if name not in table.column_names]
        if missing:
            raise FeatureStoreError(f"on-demand view '{step.name}' lacks input column(s) {missing}")
        if step.accepts_arrow:
            out = step.udf({name: table.column(name) for name in step.inputs})
        else:
            out = step.udf({name: table.column(name).to_pylist() for name in step.inputs})
        for name in step.outputs:
            values = out[name]
            if not isinstance(values, (pa.Array, pa.ChunkedArray)):
                values = pa.array(values)  # inferred as Feast's own Table.from_pydict does
            table = table.append_column(name, values)
    return table


def offline_arrow(store: Any, entity_df: pd.DataFrame, service_name: str, readable_column: str | None = None) -> pa.Table:
    """Point-in-time result (request_at = event_timestamp): Feast's offline store joins the batch
    features; the service's on-demand views run on their input columns (see the module doc).
    `readable_column`: pushed fresh values readable online by that column's time, not the row's
    (parity.features.fresh.apply_pushed).

    Columns: the entity frame's, request_at, then the service's features (not yet `conform`ed)."""
    return _offline_table(store, get_service(store, service_name), entity_df, readable_column)


def _offline_table(store: Any, service: Any, entity_df: pd.DataFrame, readable_column: str | None = None) -> pa.Table:
    import pandas as pd

    frame = entity_df.copy()
    # cache=False: the cache check alone iterates the column as Timestamps (~25 ms per 100k rows)
    frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN], utc=True, cache=False)
    plan = offline_plan(store, service)
    if plan is None:
        frame[REQUEST_TIME] = frame[TIME_COLUMN]
        return store.get_historical_features(entity_df=frame, features=service).to_arrow()
    refs, steps = plan
    # request_at is event_timestamp: added after the join, not carried through it
    table = store.get_historical_features(entity_df=frame, features=refs).to_arrow()
    # fresh features pushed between snapshots (parity.features.fresh): what serving returned at t
    from parity.features.fresh import apply_pushed

    table = apply_pushed(store, sorted({r.split(":", 1)[0] for r in refs}), table, ENTITY_KEY, TIME_COLUMN,
                         readable_column)
    table = table.append_column(REQUEST_TIME, table.column(TIME_COLUMN))
    table = run_on_demand(table, steps)
    # the shape of Feast's own result: entity frame columns, request_at, then the service's features
    wanted = dict.fromkeys([*frame.columns, REQUEST_TIME, *schema_of(service).names])
    return table.select([name for name in wanted if name in table.column_names])


def online_arrow(store: Any, customer_ids: Sequence[str], service_name: str,
                 request_at: datetime | Sequence[datetime]) -> pa.Table:
    """Raw result of Feast's online store for the given customers at request time `request_at`
    (one time for all, or one per customer)."""
    service = get_service(store, service_name)
    times = [request_at] * len(customer_ids) if isinstance(request_at, datetime) else list(request_at)
    if len(times) != len(customer_ids):
        raise ValueError(f"{len(times)} request times for {len(customer_ids)} customers")
    rows = [{ENTITY_KEY: cid, REQUEST_TIME: at} for cid, at in zip(customer_ids, times)]
    table = store.get_online_features(features=service, entity_rows=rows).to_arrow()
    return table.append_column(TIME_COLUMN, pa.array(times, type=ARROW_TYPES["UnixTimestamp"]))


def input_order(rows: pa.ChunkedArray, count: int) -> np.ndarray | None:
    """Indices that put a result back in input order, from its `__row` column (a permutation of
    0..count-1): one scatter, no sort. None when the result is in input order already."""
    positions = rows.to_numpy()
    if len(positions) == count and (positions == np.arange(count)).all():
        return None
    order = np.full(count, -1, dtype=np.int64)
    if len(positions) == count:
        order[positions] = np.arange(count)
    if len(positions) != count or (order < 0).any():
        raise FeatureStoreError(f"offline retrieval returned {len(positions)} rows for {count} entity rows")
    return order


def training_frame(store: Any, entity_df: pd.DataFrame, service_name: str) -> pd.DataFrame:
    """Point-in-time features for an entity/label frame (columns customer_id, event_timestamp, ...).

    Returns one row per input row, in the input order: key, time, the service's features, then
    the entity frame's other columns (e.g. the label).
    """
    missing = {ENTITY_KEY, TIME_COLUMN} - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity frame lacks column(s) {sorted(missing)}")
    service = get_service(store, service_name)
    schema = schema_of(service)
    keys = entity_df[[ENTITY_KEY, TIME_COLUMN]].reset_index(drop=True)
    keys["__row"] = np.arange(len(keys), dtype=np.int64)
    table = _offline_table(store, service, keys)
    order = input_order(table.column("__row"), len(keys))
    table = conform(table, schema)
    features = to_frame(table if order is None else table.take(order))
    extra = [c for c in entity_df.columns if c not in (ENTITY_KEY, TIME_COLUMN)]
    if not extra:
        return features
    # copy=False: both frames are this call's own (the labels were copied by the selection)
    import pandas as pd

    return pd.concat([features, entity_df[extra].reset_index(drop=True)], axis=1, copy=False)


def online_frame(
    store: Any, customer_ids: Sequence[str], service_name: str, request_at: datetime | None = None
) -> pd.DataFrame:
    """Online features for customers at `request_at` (default now); unknown ids give missing values."""
    request_at = request_at or datetime.now(timezone.utc)
    schema = service_schema(store, service_name)
    return to_frame(conform(online_arrow(store, list(customer_ids), service_name, request_at), schema))
