"""Synthetic inputs of controllable size: a feature mart with customer_features_weekly's exact
schema, entity frames, and a small Feast repo (FileSource + FeatureView + the same on-demand view
and feature service as feature_repo/) over it, with the product's DuckDB offline and SQLite
online store (the store types are read from feature_repo/feature_store.yaml; a second repo dir,
`feature_repo_stock`, selects Feast's own `duckdb` and `sqlite` stores over the same files for
plain Feast).

The mart has gaps (dropped weekly rows) and entity frames hit snapshot instants and TTL edges
exactly, so the three retrieval paths must agree on point-in-time *and* TTL semantics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# Same end as the test suite's data; snapshots count back weekly from it (as the dbt mart does).
END = datetime(2026, 6, 1, tzinfo=timezone.utc)
TTL = timedelta(days=7)
PROJECT = "parity_bench"
VIEW = "customer_activity"
SERVICE = "churn_v1"
DROP_SHARE = 0.1  # weekly rows missing (customer inactive / late), so TTL matters

SCHEMA = pa.schema([
    ("customer_id", pa.string()),
    ("client_id", pa.string()),
    ("country", pa.string()),
    ("acquisition_channel", pa.string()),
    ("birth_year", pa.int64()),
    ("tenure_days", pa.int64()),
    ("purchase_count_30d", pa.int64()),
    ("purchase_count_90d", pa.int64()),
    ("purchase_count_365d", pa.int64()),
    ("purchase_trend_30d", pa.int64()),
    ("spend_30d", pa.float64()),
    ("spend_90d", pa.float64()),
    ("spend_365d", pa.float64()),
    ("avg_basket_90d", pa.float64()),
    ("refund_count_90d", pa.int64()),
    ("refund_rate_90d", pa.float64()),
    ("category_count_90d", pa.int64()),
    ("last_purchase_at", pa.timestamp("us", tz="UTC")),
    ("snapshot_at", pa.timestamp("us", tz="UTC")),
])
# The features of churn_v1 (feature_repo/services.py) in service order.
SERVICE_FEATURES = [
    "client_id", "country", "acquisition_channel", "birth_year", "tenure_days",
    "purchase_count_30d", "purchase_count_90d", "purchase_count_365d", "purchase_trend_30d",
    "spend_30d", "spend_90d", "spend_365d", "avg_basket_90d", "refund_count_90d",
    "refund_rate_90d", "category_count_90d",
]
VIEW_FEATURES = [f.name for f in SCHEMA if f.name not in ("customer_id", "snapshot_at")]
CLIENTS = np.array(["acme", "bolt", "cora"])
COUNTRIES = np.array(["DE", "US", "GB", "FR", "CA", "IE"])
CHANNELS = np.array(["organic", "paid_search", "social", "referral", "affiliate"])


def customer_ids(n: int) -> np.ndarray:
    """'<client>:<id>' keys like the platform's, spread over the three clients."""
    idx = np.arange(n)
    return np.char.add(np.char.add(CLIENTS[idx % 3], ":C-"), np.char.zfill(idx.astype(str), 7)).astype(object)


def snapshot_times(weeks: int) -> pd.DatetimeIndex:
    """Weekly snapshot instants ending at END (oldest first)."""
    return pd.DatetimeIndex([END - timedelta(days=7 * i) for i in range(weeks - 1, -1, -1)])


def feature_table(entities: int, weeks: int, seed: int = 1) -> pa.Table:
    """entities x weekly snapshots (minus signup and DROP_SHARE gaps), the mart's exact schema."""
    rng = np.random.default_rng(seed)
    ids = customer_ids(entities)
    snaps = snapshot_times(weeks)
    first_week = rng.integers(0, max(1, weeks // 2), entities)  # customers sign up over time
    ent = np.repeat(np.arange(entities), weeks)
    week = np.tile(np.arange(weeks), entities)
    keep = (week >= first_week[ent]) & (rng.random(len(ent)) >= DROP_SHARE)
    ent, week = ent[keep], week[keep]
    n = len(ent)
    snap_us = snaps.asi8[week] // 1000  # ns -> us
    c90 = np.where(rng.random(n) < 0.05, 0, rng.poisson(6, n))  # ~5% without a recent purchase
    c30 = rng.binomial(c90, 0.35)
    c365 = c90 + rng.poisson(18, n)
    spend90 = np.round(c90 * rng.gamma(2.0, 25.0, n), 4)
    has_purchase = (c365 > 0) & (rng.random(n) >= 0.05)
    last_us = snap_us - rng.integers(0, 60 * 86_400, n) * 1_000_000  # whole seconds, as in the mart
    country = COUNTRIES[rng.integers(0, len(COUNTRIES), entities)].astype(object)
    country[rng.random(entities) < 0.05] = None
    birth = rng.integers(1940, 2008, entities).astype(float)
    birth[rng.random(entities) < 0.03] = np.nan
    columns = {
        "customer_id": pa.array(ids[ent], pa.string()),
        "client_id": pa.array(CLIENTS[ent % 3], pa.string()),
        "country": pa.array(country[ent], pa.string()),
        "acquisition_channel": pa.array(CHANNELS[(ent * 7) % len(CHANNELS)], pa.string()),
        "birth_year": pa.array(pd.array(birth[ent], dtype="Int64"), pa.int64()),
        "tenure_days": pa.array((week - first_week[ent]) * 7 + rng.integers(0, 7, n), pa.int64()),
        "purchase_count_30d": pa.array(c30, pa.int64()),
        "purchase_count_90d": pa.array(c90, pa.int64()),
        "purchase_count_365d": pa.array(c365, pa.int64()),
        "purchase_trend_30d": pa.array(c30 - rng.poisson(2, n), pa.int64()),
        "spend_30d": pa.array(np.round(spend90 * c30 / np.maximum(c90, 1), 4), pa.float64()),
        "spend_90d": pa.array(spend90, pa.float64()),
        "spend_365d": pa.array(spend90 + np.round(rng.gamma(2.0, 200.0, n), 4), pa.float64()),
        "avg_basket_90d": pa.array(np.where(c90 > 0, spend90 / np.maximum(c90, 1), np.nan), pa.float64(),
                                   from_pandas=True),
        "refund_count_90d": pa.array(rng.binomial(c90, 0.05), pa.int64()),
        "refund_rate_90d": pa.array(rng.random(n) * 0.2, pa.float64()),
        "category_count_90d": pa.array(np.minimum(c90, rng.integers(1, 8, n)), pa.int64()),
        "last_purchase_at": pa.array(np.where(has_purchase, last_us, 0), pa.timestamp("us", tz="UTC"),
                                     mask=~has_purchase),
        "snapshot_at": pa.array(snap_us, pa.timestamp("us", tz="UTC")),
    }
    return pa.table(columns, schema=SCHEMA)


def write_features(path: Path, entities: int, weeks: int, seed: int = 1) -> int:
    """Write the synthetic mart to `path` (Parquet, like dbt's external materialization); rows written."""
    table = feature_table(entities, weeks, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=1_000_000)
    return table.num_rows


def entity_frame(rows: int, entities: int, weeks: int, seed: int = 2) -> pd.DataFrame:
    """customer_id + event_timestamp rows: 1% unknown customers, 20% exactly on a snapshot instant,
    10% exactly one TTL after one (the inclusive edge), the rest anywhere in the covered period."""
    rng = np.random.default_rng(seed)
    ids = customer_ids(entities)
    pick = rng.integers(0, entities, rows)
    cid = ids[pick].copy()
    unknown = rng.random(rows) < 0.01
    cid[unknown] = np.char.add("acme:UNKNOWN-", np.arange(unknown.sum()).astype(str)).astype(object)
    snaps = snapshot_times(weeks).asi8 // 1000  # us
    start, end = snaps[0] - 3 * 86_400_000_000, snaps[-1] + 10 * 86_400_000_000
    ts = rng.integers(start // 1_000_000, end // 1_000_000, rows) * 1_000_000  # whole seconds
    kind = rng.random(rows)
    on_snap = kind < 0.2
    ts[on_snap] = snaps[rng.integers(0, len(snaps), on_snap.sum())]
    on_edge = (kind >= 0.2) & (kind < 0.3)
    ts[on_edge] = snaps[rng.integers(0, len(snaps), on_edge.sum())] + 7 * 86_400_000_000
    return pd.DataFrame({
        "customer_id": cid.astype(str),
        "event_timestamp": pd.to_datetime(ts, unit="us", utc=True),
    })


# The Feast definitions of the synthetic repo: the platform's view shape over the synthetic mart,
# and request_recency with the function and tags of feature_repo/request_features.py (its source
# text is inserted by write_repo, so the bench runs the product's python-mode UDF).
DEFINITIONS = '''"""Synthetic bench repo: written by bench/synth.py (do not edit)."""

from datetime import timedelta
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, ValueType
from feast.data_format import ParquetFormat
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64, String, UnixTimestamp

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)

customer_features_weekly_source = FileSource(
    name="customer_features_weekly_source",
    path=__PATH__,
    file_format=ParquetFormat(),
    timestamp_field="snapshot_at",
)

customer_activity = FeatureView(
    name="customer_activity",
    entities=[customer],
    ttl=timedelta(days=7),
    schema=[__FIELDS__],
    source=customer_features_weekly_source,
    online=True,
)

prediction_request = RequestSource(name="prediction_request", schema=[Field(name="request_at", dtype=UnixTimestamp)])


@on_demand_feature_view(
    sources=[customer_activity[["last_purchase_at"]], prediction_request],
    schema=[Field(name="days_since_last_purchase", dtype=Float64)],
    mode="python",
    tags=__ODFV_TAGS__,
)
__ODFV_FUNCTION__


churn_v1 = FeatureService(name="churn_v1", features=[customer_activity[__SERVICE__], request_recency])
'''

PRODUCT_REPO = Path(__file__).resolve().parents[1] / "feature_repo"
STOCK_TYPES = {"online_store": "sqlite", "offline_store": "duckdb"}  # Feast's own stores


def product_odfv(name: str = "request_recency") -> tuple[str, dict[str, str]]:
    """Source text (without decorators) and tags of the product's on-demand view function."""
    import ast

    text = (PRODUCT_REPO / "request_features.py").read_text()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            tags = next((ast.literal_eval(k.value) for d in node.decorator_list
                         for k in getattr(d, "keywords", []) if k.arg == "tags"), {})
            return ast.get_source_segment(text, node), tags
    raise LookupError(f"no function {name} in {PRODUCT_REPO / 'request_features.py'}")


def product_store_type(kind: str) -> str:
    """The `online_store` or `offline_store` type the product configures in feature_repo/."""
    import yaml

    config = yaml.safe_load((PRODUCT_REPO / "feature_store.yaml").read_text())
    return config[kind]["type"]


_FEAST_TYPES = {pa.string(): "String", pa.int64(): "Int64", pa.float64(): "Float64",
                pa.timestamp("us", tz="UTC"): "UnixTimestamp"}


@dataclass(frozen=True)
class SynthRepo:
    """Paths of one synthetic Feast repo (the repo dir sits at <root>/feature_repo so that
    parity.config.Settings(project_root=root) points the platform's own helpers at it)."""

    root: Path
    parquet: Path

    @property
    def repo(self) -> Path:
        return self.root / "feature_repo"

    @property
    def stock_repo(self) -> Path:
        """Same registry and online store files, Feast's own `duckdb` and `sqlite` stores (plain Feast)."""
        return self.root / "feature_repo_stock"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def registry(self) -> Path:
        return self.data_dir / "feast" / "registry.db"

    @property
    def online_db(self) -> Path:
        return self.data_dir / "feast" / "online_store.db"


def write_repo(root: Path, parquet: Path) -> SynthRepo:
    """Write feature_store.yaml + definitions for a synthetic repo over `parquet`."""
    synth = SynthRepo(root=root, parquet=parquet)
    synth.repo.mkdir(parents=True, exist_ok=True)
    (synth.data_dir / "feast").mkdir(parents=True, exist_ok=True)
    synth.stock_repo.mkdir(parents=True, exist_ok=True)
    product = {kind: product_store_type(kind) for kind in STOCK_TYPES}
    for repo, types in ((synth.repo, product), (synth.stock_repo, STOCK_TYPES)):
        (repo / "feature_store.yaml").write_text(
            f"project: {PROJECT}\nprovider: local\n"
            f"registry:\n  registry_type: file\n  path: {synth.registry}\n  cache_ttl_seconds: 60\n"
            f"online_store:\n  type: {types['online_store']}\n  path: {synth.online_db}\n"
            f"offline_store:\n  type: {types['offline_store']}\nentity_key_serialization_version: 3\n"
        )
    fields = ", ".join(f'Field(name="{f.name}", dtype={_FEAST_TYPES[f.type]})' for f in SCHEMA
                       if f.name in VIEW_FEATURES)
    function, tags = product_odfv()
    text = (DEFINITIONS.replace("__PATH__", repr(str(parquet))).replace("__FIELDS__", fields)
            .replace("__SERVICE__", repr(SERVICE_FEATURES)).replace("__ODFV_TAGS__", repr(tags))
            .replace("__ODFV_FUNCTION__", function))
    (synth.repo / "definitions.py").write_text(text)
    (synth.repo / ".feastignore").write_text("__pycache__/\n")
    return synth


def apply_repo(synth: SynthRepo) -> None:
    """`feast apply` of the synthetic repo (in-process, as parity.features.feature_store.apply does)."""
    import os
    import sys

    os.environ.setdefault("FEAST_USAGE", "False")
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    config = load_repo_config(synth.repo, synth.repo / "feature_store.yaml")
    if str(synth.repo) not in sys.path:  # Feast imports repo modules by bare name
        sys.path.insert(0, str(synth.repo))
    sys.modules.pop("definitions", None)
    apply_total(config, synth.repo, skip_source_validation=True)
    # the online tables of both repos in the one online store file: Feast's `plan` creates only
    # Feast's own layout, a wide product store (parity.features.wide_store) makes its own
    from feast import FeatureStore

    for repo in (synth.repo, synth.stock_repo):
        store = FeatureStore(repo_path=str(repo))
        store._get_provider().online_store.update(
            store.config, tables_to_delete=[], tables_to_keep=store.list_feature_views(),
            entities_to_delete=[], entities_to_keep=store.list_entities(), partial=True)
