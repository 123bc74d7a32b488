"""PROTOTYPE (evidence for a product proposal, not product code): parity.retrieval.training_frame
with the on-demand features computed by the platform on their *input columns only*.

Stock Feast runs a python-mode ODFV offline as `udf(joined_table.to_pydict())`: every column of
the joined table becomes Python objects (100k rows x 20 columns) although the UDF reads two.
Here Feast is asked for the batch features (+ the ODFV inputs) only; then the same registered
UDF (`odfv.feature_transformation.udf`, what OnlineReader runs online) gets just its inputs.
`vectorised=True` instead computes days_since_last_purchase with Arrow compute (not the
registered code; the floor for comparison).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from parity.retrieval import (
    ARROW_TYPES,
    ENTITY_KEY,
    TIME_COLUMN,
    conform,
    get_service,
    service_schema,
    to_frame,
)


def _split(store: Any, service_name: str) -> tuple[list[str], list[tuple[Any, list[str]]]]:
    service = get_service(store, service_name)
    refs: list[str] = []
    odfvs = []
    for projection in service.feature_view_projections:
        try:
            odfv = store.get_on_demand_feature_view(projection.name)
        except Exception:  # a batch feature view
            odfv = None
        if odfv is None:
            refs += [f"{projection.name_to_use()}:{f.name}" for f in projection.features]
            continue
        odfvs.append((odfv, [f.name for f in projection.features]))
        for source in odfv.source_feature_view_projections.values():
            refs += [f"{source.name}:{f.name}" for f in source.features]
    return list(dict.fromkeys(refs)), odfvs


def training_frame_lean(store: Any, entity_df: pd.DataFrame, service_name: str, vectorised: bool = False) -> pd.DataFrame:
    """Same frame as parity.retrieval.training_frame (request_at = event_timestamp)."""
    schema = service_schema(store, service_name)
    types = dict(schema.features)
    refs, odfvs = _split(store, service_name)
    frame = entity_df.reset_index(drop=True).copy()
    frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN], utc=True)
    frame["__row"] = range(len(frame))
    table = store.get_historical_features(entity_df=frame[[ENTITY_KEY, TIME_COLUMN, "__row"]], features=refs).to_arrow()
    for odfv, wanted in odfvs:
        if vectorised:  # days_since_last_purchase only: the formula of the registered UDF
            micros = pc.subtract(table[TIME_COLUMN].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()),
                                 table["last_purchase_at"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()))
            out = {"days_since_last_purchase": pc.divide(pc.divide(micros.cast(pa.float64()), 1e6), 86400.0)}
        else:
            inputs = {f.name: table[f.name].to_pylist()
                      for source in odfv.source_feature_view_projections.values() for f in source.features}
            times = table[TIME_COLUMN].to_pylist()
            for request in odfv.source_request_sources.values():
                inputs.update({f.name: times for f in request.schema})
            out = odfv.feature_transformation.udf(inputs)
        for name in wanted:
            table = table.append_column(name, pa.array(out[name], ARROW_TYPES[types[name]]))
    table = table.sort_by("__row")
    features = to_frame(conform(table, schema))
    extra = [c for c in entity_df.columns if c not in (ENTITY_KEY, TIME_COLUMN)]
    return pd.concat([features, entity_df.reset_index(drop=True)[extra]], axis=1)
