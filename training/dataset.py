"""Training set: labels mart -> entity frame -> point-in-time features, saved with a fingerprint."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from parity.features.feature_store import FeatureStoreError
from parity.features.retrieval import ENTITY_KEY, TIME_COLUMN, service_schema, training_frame
from training.errors import DataError

LABEL = "is_churned"
LABEL_END = "label_window_end_at"
LABEL_CLIENT = "label_client_id"
LABEL_COLUMNS = ("customer_id", "client_id", LABEL, "as_of_at", LABEL_END)
# an as-of time with at least this many labels, all churned, means no purchase was observed at all
MIN_ROWS_FOR_OUTAGE = 10


def read_labels(path: Path) -> pd.DataFrame:
    """The churn labels mart, or a DataError saying how to build it."""
    if not path.exists():
        raise DataError(f"labels mart {path} does not exist: run `make build` first")
    labels = pd.read_parquet(path)
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise DataError(f"labels mart {path} lacks column(s) {missing}")
    return labels[list(LABEL_COLUMNS)]


def check_labels(labels: pd.DataFrame, observed_until: datetime) -> None:
    """Refuse labels that are empty, not 0/1, or whose outcome window was not (fully) observed."""
    if labels.empty:
        raise DataError(
            "the labels mart is empty: no as-of time has a fully observed 60-day label window "
            "(generate a longer history)"
        )
    nulls = [c for c in LABEL_COLUMNS if labels[c].isna().any()]
    if nulls:
        raise DataError(f"labels have nulls in {nulls}")
    values = sorted(set(labels[LABEL].astype("int64").unique()) - {0, 1})
    if values:
        raise DataError(f"labels must be 0/1, found {values}")
    if (labels[LABEL_END] <= labels["as_of_at"]).any():
        raise DataError("some label windows end at or before their as-of time")
    unobserved = labels[labels[LABEL_END] > pd.Timestamp(observed_until)]
    if len(unobserved):
        raise DataError(
            f"{len(unobserved)} label(s) have a window ending after the data ends ({observed_until.isoformat()}), "
            f"e.g. as_of_at {unobserved['as_of_at'].min().isoformat()}: their outcome is not observed"
        )
    by_date = labels.groupby("as_of_at")[LABEL].agg(["size", "mean"])
    outage = by_date[(by_date["size"] >= MIN_ROWS_FOR_OUTAGE) & (by_date["mean"] == 1.0)]
    if len(outage):
        dates = ", ".join(ts.isoformat() for ts in outage.index)
        raise DataError(
            f"no purchase at all was observed in the label window of as-of time(s) {dates}: "
            "every customer would be labelled churned (a data gap, not churn)"
        )


def entity_frame(labels: pd.DataFrame) -> pd.DataFrame:
    """Entity/label frame for retrieval: customer_id, event_timestamp (= as_of_at), label columns."""
    frame = pd.DataFrame(
        {
            ENTITY_KEY: labels["customer_id"].astype(str).to_numpy(),
            TIME_COLUMN: pd.to_datetime(labels["as_of_at"], utc=True).to_numpy(),
            LABEL: labels[LABEL].astype("int64").to_numpy(),
            LABEL_END: pd.to_datetime(labels[LABEL_END], utc=True).to_numpy(),
            # renamed: client_id is also a feature of the service
            LABEL_CLIENT: labels["client_id"].astype(str).to_numpy(),
        }
    )
    frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN], utc=True)
    frame[LABEL_END] = pd.to_datetime(frame[LABEL_END], utc=True)
    return frame.sort_values([TIME_COLUMN, ENTITY_KEY], kind="stable").reset_index(drop=True)


def service_features(store: Any, service: str) -> tuple[tuple[str, str], ...]:
    """(name, feast dtype) of the service's features in service order; DataError if unknown."""
    try:
        return service_schema(store, service).features
    except FeatureStoreError as err:
        raise DataError(str(err)) from None


def retrieve(store: Any, entities: pd.DataFrame, service: str) -> pd.DataFrame:
    """Point-in-time features for the entity frame (key, time, features, label columns)."""
    try:
        frame = training_frame(store, entities, service)
    except FeatureStoreError as err:
        raise DataError(str(err)) from None
    if "client_id" in frame.columns:
        known = frame["client_id"].notna()
        if (frame.loc[known, "client_id"].astype(str) != frame.loc[known, LABEL_CLIENT]).any():
            raise DataError(
                "client_id of the features differs from the labels' client_id for some customers"
            )
    return frame.drop(columns=[LABEL_CLIENT])


def content_sha256(frame: pd.DataFrame) -> str:
    """sha256 over column names, Arrow types, null masks and values (values under nulls are zeroed:
    a masked array may hold anything there, and that must not change the hash)."""
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    digest = hashlib.sha256()
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        digest.update(f"{name}\x00{column.type}\x00".encode())
        if column.null_count:
            digest.update(pc.is_null(column).to_numpy(zero_copy_only=False).tobytes())
            # an all-null object column is Arrow `null`: no values under the mask to zero
            if not pa.types.is_null(column.type):
                column = pc.fill_null(column, _zero(column.type))
        sink = pa.BufferOutputStream()
        single = pa.table({name: column})
        with pa.ipc.new_stream(sink, single.schema) as writer:
            writer.write_table(single)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def _zero(dtype: pa.DataType) -> pa.Scalar:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return pa.scalar("", dtype)
    if pa.types.is_boolean(dtype):
        return pa.scalar(False)
    return pa.scalar(0).cast(dtype)


def fingerprint(frame: pd.DataFrame, service: str) -> dict[str, Any]:
    """Row count, sha256 of the frame sorted by (customer, time), time window, label balance."""
    ordered = frame.sort_values([ENTITY_KEY, TIME_COLUMN], kind="stable").reset_index(drop=True)
    return {
        "service": service,
        "rows": len(frame),
        "positives": int(frame[LABEL].sum()),
        "columns": list(map(str, frame.columns)),
        "sha256": content_sha256(ordered),
        "as_of_min": frame[TIME_COLUMN].min().isoformat(),
        "as_of_max": frame[TIME_COLUMN].max().isoformat(),
        "label_window_end_max": frame[LABEL_END].max().isoformat(),
    }


def save_dataset(frame: pd.DataFrame, print_: dict[str, Any], out_dir: Path) -> Path:
    """Write <out_dir>/<service>/dataset-<sha12>.parquet (+ .json fingerprint); returns the Parquet path."""
    folder = out_dir / print_["service"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dataset-{print_['sha256'][:12]}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps(print_, indent=2, sort_keys=True) + "\n")
    return path


def load_dataset(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A saved training set, verified against its fingerprint (so a rerun trains on the same rows)."""
    sidecar = path.with_suffix(".json")
    if not path.exists() or not sidecar.exists():
        raise DataError(f"saved dataset {path} (or its fingerprint {sidecar.name}) does not exist")
    expected = json.loads(sidecar.read_text())
    frame = pd.read_parquet(path)
    for column in (TIME_COLUMN, LABEL_END):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    actual = fingerprint(frame, expected["service"])
    if actual["sha256"] != expected["sha256"] or actual["rows"] != expected["rows"]:
        raise DataError(
            f"saved dataset {path} does not match its fingerprint (changed since it was saved)"
        )
    return frame, actual
