"""An independent point-in-time oracle for the feature and label marts, in plain pandas/numpy.

It starts from the staged rows that staging accepted (quarantine_reason is null), not from the
intermediate models, and redoes everything after staging itself: currency conversion from the
seed, orphan removal, duplicate removal, versioning of corrections, every client's own
timeline (its watermark and weekly grid), the snapshot spine and every feature window, applying
"happened by t AND arrived by t AND not yet replaced at t".

Per-client timelines (README "Point in time"): a client's watermark is the time up to which its
data is known complete -- by default midnight UTC after its newest arrival, or the rule declared
in vars.client_watermarks. Snapshots are on one fixed weekly grid, vars.snapshot_anchor + 7k days;
a client's run back every 7 days from the last grid point at or before its watermark,
snapshot_weeks of them, but none before the first snapshot at which one of its customers exists.
Labels are at every label_every_n_snapshots-th grid point counted from the anchor, and need their
whole outcome window at or before the watermark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from parity.config import Settings, dbt_vars
from parity.ingest.warehouse import query

DAY = pd.Timedelta(days=1)
_VARS = dbt_vars()
SNAPSHOT_WEEKS = int(_VARS["snapshot_weeks"])
CHURN_ACTIVITY_DAYS = int(_VARS["churn_activity_days"])
CHURN_HORIZON_DAYS = int(_VARS["churn_horizon_days"])
LABEL_EVERY = int(_VARS["label_every_n_snapshots"])
ANCHOR = pd.Timestamp(_VARS["snapshot_anchor"]).tz_convert("UTC")
WEEK = pd.Timedelta(days=7)


def grid_week(t: pd.Timestamp) -> int:
    """The number of the last grid point at or before t (weeks since the anchor, floor)."""
    return (t - ANCHOR) // WEEK


@dataclass
class Timeline:
    """One client's watermark and its weekly snapshots (ascending, all <= the watermark)."""

    watermark_at: pd.Timestamp
    snapshots: pd.DatetimeIndex

    @property
    def end(self) -> pd.Timestamp | None:
        """The client's newest snapshot (None when it has none)."""
        return self.snapshots[-1] if len(self.snapshots) else None


@dataclass
class Warehouse:
    """Accepted customers and versioned transactions, rebuilt from the staging views."""

    customers: pd.DataFrame  # index customer_id: client_id, signed_up_at, first_loaded_at
    versions: pd.DataFrame  # one row per transaction version, with superseded_at
    timelines: dict[str, Timeline]  # per client with at least one transaction

    def snapshots(self, client_id: str) -> pd.DatetimeIndex:
        """The client's snapshot times (none for a client without a timeline)."""
        timeline = self.timelines.get(client_id)
        return timeline.snapshots if timeline else pd.DatetimeIndex([], tz="UTC")

    def client_of(self, customer_id: str) -> str:
        return self.customers.loc[customer_id, "client_id"]


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True).astype("datetime64[ns, UTC]")


def watermark(rule: dict | None, versions: pd.DataFrame) -> pd.Timestamp:
    """A client's watermark from its declared rule (vars.client_watermarks) and its versions."""
    rule = rule or {"rule": "newest_arrival"}
    if rule["rule"] == "newest_arrival":
        return versions["loaded_at"].max().floor("D") + DAY
    if rule["rule"] == "fixed":
        return pd.Timestamp(rule["watermark_at"]).tz_convert("UTC")
    if rule["rule"] == "newest_event_plus_delay":
        return versions["transacted_at"].max() + pd.Timedelta(hours=rule["delay_hours"])
    raise ValueError(f"unknown watermark rule {rule!r}")


def timeline(watermark_at: pd.Timestamp, customers: pd.DataFrame) -> Timeline:
    """The weekly grid back from the last grid point <= the watermark, from the first customer on."""
    end = ANCHOR + grid_week(watermark_at) * WEEK
    exists_from = customers[["signed_up_at", "first_loaded_at"]].max(axis=1)
    exists_from = exists_from[exists_from <= end]
    if exists_from.empty:
        return Timeline(watermark_at, pd.DatetimeIndex([], tz="UTC"))
    n = min(SNAPSHOT_WEEKS, (end - exists_from.min()) // (7 * DAY) + 1)
    return Timeline(watermark_at, pd.DatetimeIndex([end - 7 * i * DAY for i in range(n)][::-1]))


def load(settings: Settings, watermark_rules: dict | None = None) -> Warehouse:
    """Rebuild customers, transaction versions and client timelines from the staged rows.

    watermark_rules: vars.client_watermarks as the build saw it (default: dbt_project.yml's).
    """
    union = " union all ".join
    customers = query(settings, union(
        f"select customer_id, client_id, signed_up_at, loaded_at "
        f"from staging.stg_{c}__customers where quarantine_reason is null"
        for c in settings.clients))
    tx = query(settings, union(
        f"select client_id, transaction_id, customer_id, transaction_type, category, currency, "
        f"amount_local, transacted_at, loaded_at "
        f"from staging.stg_{c}__transactions where quarantine_reason is null"
        for c in settings.clients))
    for frame, cols in ((customers, ("signed_up_at", "loaded_at")),
                        (tx, ("transacted_at", "loaded_at"))):
        for col in cols:
            frame[col] = _utc(frame[col])

    # customers: the newest record is current; first arrival is when the customer became known
    first_loaded = customers.groupby("customer_id")["loaded_at"].min()
    current = (customers.sort_values(["customer_id", "loaded_at", "signed_up_at"],
                                     ascending=[True, False, True])
               .drop_duplicates("customer_id").set_index("customer_id"))
    current["first_loaded_at"] = first_loaded

    # transactions: convert with the seed's rates, drop orphans and same-arrival duplicates
    rates = pd.read_csv(settings.dbt_project_dir / "seeds" / "currency_rates.csv")
    tx["amount_usd"] = tx["amount_local"] * tx["currency"].map(
        dict(zip(rates["currency"], rates["usd_per_unit"])))
    assert tx["amount_usd"].notna().all(), "staging accepted a row with an unknown currency"
    tx = tx[tx["customer_id"].isin(current.index)]
    tx = (tx.sort_values(["client_id", "transaction_id", "loaded_at", "transacted_at",
                          "amount_usd"])
          .drop_duplicates(["client_id", "transaction_id", "loaded_at"]))
    # versions: a later arrival of the same id replaces the earlier one from its arrival on
    grouped = tx.groupby(["client_id", "transaction_id"])
    tx["version_number"] = grouped.cumcount() + 1
    tx["superseded_at"] = grouped["loaded_at"].shift(-1)
    tx = tx.reset_index(drop=True)

    rules = (_VARS.get("client_watermarks") or {}) if watermark_rules is None else watermark_rules
    customers = current[["client_id", "signed_up_at", "first_loaded_at"]]
    timelines = {
        client: timeline(watermark(rules.get(client), versions),
                         customers[customers["client_id"] == client])
        for client, versions in tx.groupby("client_id")
    }
    return Warehouse(customers, tx, timelines)


def spine(wh: Warehouse, customer_id: str) -> pd.DatetimeIndex:
    """Snapshots of the customer's client at which the customer exists (signed up and known)."""
    c = wh.customers.loc[customer_id]
    snapshots = wh.snapshots(c["client_id"])
    return snapshots[(snapshots >= c["signed_up_at"]) & (snapshots >= c["first_loaded_at"])]


def label_times(wh: Warehouse, client_id: str) -> list[pd.Timestamp]:
    """The client's snapshots at every 4th grid point (counted from the anchor) whose outcome
    window ends <= its watermark."""
    tl = wh.timelines.get(client_id)
    if tl is None or tl.end is None:
        return []
    return [t for t in tl.snapshots
            if t + CHURN_HORIZON_DAYS * DAY <= tl.watermark_at
            and grid_week(t) % LABEL_EVERY == 0]


def _ns(s: pd.Series) -> np.ndarray:
    """Epoch nanoseconds (NaT becomes the smallest int64)."""
    return _utc(s).dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view("int64")


class CustomerOracle:
    """Point-in-time features of one customer from a given set of transaction versions."""

    def __init__(self, wh: Warehouse, customer_id: str, versions: pd.DataFrame | None = None):
        self.customer = wh.customers.loc[customer_id]
        v = wh.versions[wh.versions["customer_id"] == customer_id] if versions is None else versions
        self.versions = v
        self.transacted = _ns(v["transacted_at"])
        self.loaded = _ns(v["loaded_at"])
        sup = v["superseded_at"]
        self.superseded = np.where(sup.isna(), np.iinfo(np.int64).max, _ns(sup))
        self.purchase = (v["transaction_type"] == "purchase").to_numpy()
        self.refund = (v["transaction_type"] == "refund").to_numpy()
        self.amount = v["amount_usd"].to_numpy(dtype=float)
        self.category = v["category"].to_numpy(dtype=object)

    def features(self, t: pd.Timestamp) -> dict:
        """The feature row of customer_features_weekly at snapshot t."""
        tn, d = t.value, DAY.value
        known = ((self.transacted <= tn) & (self.transacted > tn - 365 * d)
                 & (self.loaded <= tn) & (self.superseded > tn))
        in30 = self.transacted > tn - 30 * d
        prior30 = (self.transacted > tn - 60 * d) & ~in30
        in90 = self.transacted > tn - 90 * d
        p, r = known & self.purchase, known & self.refund
        n30, n90, n365 = int((p & in30).sum()), int((p & in90).sum()), int(p.sum())
        spend90 = float(self.amount[p & in90].sum())
        refunds90 = int((r & in90).sum())
        cats = {c for c in self.category[p & in90] if pd.notna(c)}
        signed = self.customer["signed_up_at"]
        return {
            "client_id": self.customer["client_id"],
            "tenure_days": (t.floor("D") - signed.floor("D")).days,
            "purchase_count_30d": n30,
            "purchase_count_90d": n90,
            "purchase_count_365d": n365,
            "purchase_trend_30d": n30 - int((p & prior30).sum()),
            "spend_30d": float(self.amount[p & in30].sum()),
            "spend_90d": spend90,
            "spend_365d": float(self.amount[p].sum()),
            "avg_basket_90d": spend90 / n90 if n90 else np.nan,
            "refund_count_90d": refunds90,
            "refund_rate_90d": refunds90 / max(n90, 1),
            "category_count_90d": len(cats),
            "last_purchase_at": (pd.Timestamp(int(self.transacted[p].max()), tz="UTC")
                                 if p.any() else pd.NaT),
        }

    def future_purchases(self, t: pd.Timestamp, days: int) -> int:
        """Purchases in (t, t + days] among the current versions (what we know now)."""
        tn = t.value
        current = self.superseded == np.iinfo(np.int64).max
        window = (self.transacted > tn) & (self.transacted <= tn + days * DAY.value)
        return int((current & self.purchase & window).sum())


INT_FEATURES = ["tenure_days", "purchase_count_30d", "purchase_count_90d", "purchase_count_365d",
                "purchase_trend_30d", "refund_count_90d", "category_count_90d"]
FLOAT_FEATURES = ["spend_30d", "spend_90d", "spend_365d", "avg_basket_90d", "refund_rate_90d"]


def read_mart(settings: Settings, name: str) -> pd.DataFrame:
    """A Parquet mart with every timestamp column in UTC (ns)."""
    df = pd.read_parquet(settings.marts_dir / f"{name}.parquet")
    for col in df.columns:
        if isinstance(df[col].dtype, pd.DatetimeTZDtype) or col.endswith("_at"):
            df[col] = _utc(df[col])
    return df


def mismatches(expected: dict, actual: pd.Series, rel: float = 1e-9) -> list[str]:
    """Feature names whose mart value differs from the oracle value (ints exact, floats rel)."""
    bad = []
    for name, want in expected.items():
        got = actual[name]
        if name in FLOAT_FEATURES:
            if np.isnan(want) or pd.isna(got):
                same = np.isnan(want) and pd.isna(got)
            else:
                same = bool(np.isclose(got, want, rtol=rel, atol=1e-9))
        elif name == "last_purchase_at":
            same = (pd.isna(want) and pd.isna(got)) or (not pd.isna(got) and got == want)
        else:
            same = got == want
        if not same:
            bad.append(f"{name}: mart={got!r} oracle={want!r}")
    return bad
