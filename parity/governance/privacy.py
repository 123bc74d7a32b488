"""Privacy-safe aggregates shared with a client: per-group figures suppressed below a minimum
group size k, and optionally released with differential-privacy noise (OpenDP's Laplace
mechanism) under a per-client epsilon budget tracked in a ledger; a release past the budget is
refused. Thresholds in the governance config (`privacy:`), their one home.

Exact release: a group with fewer than k customers keeps its name with every figure blanked and
`suppressed = true`. DP release: the per-group counts of customers and of flagged customers get
Laplace noise calibrated by OpenDP (one customer moves one group's two counts by 1 each: L1
sensitivity 2); the epsilon OpenDP's privacy map reports is written to the ledger *before* the
figures are returned; groups whose noisy count is below k are then suppressed (post-processing,
no extra privacy cost). Scores' means are not released under DP (unbounded per-group sums).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from parity.config import Settings
from parity.governance.config import GovernanceError, PrivacyConfig

LEDGER = Path("governance") / "privacy_ledger.jsonl"
FIGURES = ("customers", "flagged", "flagged_share", "mean_score")
SENSITIVITY = 2  # one customer: +-1 on its group's customers and on its group's flagged count


class BudgetExceeded(GovernanceError):
    """A DP release would take a client past its epsilon budget."""


def group_figures(scores: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per group: customers, flagged customers (decision true), their share and the mean score."""
    scored = scores.assign(flagged=scores["decision"].fillna(False).astype(bool))
    out = scored.groupby(by, dropna=False).agg(customers=("customer_id", "size"), flagged=("flagged", "sum"),
                                               mean_score=("score", "mean")).reset_index()
    out["flagged_share"] = out["flagged"] / out["customers"]
    return out[[by, *FIGURES]]


def suppress(figures: pd.DataFrame, k: int, count: str = "customers") -> pd.DataFrame:
    """Blank every figure of groups with fewer than k customers; `suppressed` says which."""
    out = figures.copy()
    small = out[count] < k
    for column in FIGURES:
        if column in out:
            out[column] = out[column].astype("float64").where(~small)
    out["suppressed"] = small
    return out


def ledger_path(settings: Settings) -> Path:
    """The per-client epsilon ledger (append-only JSON lines)."""
    return settings.data_dir / LEDGER


def spent(settings: Settings, client: str) -> float:
    """Epsilon already released to a client."""
    path = ledger_path(settings)
    if not path.exists():
        return 0.0
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return float(sum(line["epsilon"] for line in lines if line["client_id"] == client))


def _charge(settings: Settings, client: str, epsilon: float, budget: float, what: str) -> None:
    """Record the release's epsilon, refusing it when the client's budget would be exceeded."""
    used = spent(settings, client)
    if used + epsilon > budget + 1e-12:
        raise BudgetExceeded(f"client '{client}': releasing {what} costs epsilon {epsilon:g}, but {used:g} of "
                             f"its budget {budget:g} is spent (ledger {ledger_path(settings)}); refused")
    path = ledger_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "client_id": client,
            "epsilon": epsilon, "what": what, "spent_after": used + epsilon, "budget": budget}
    with open(path, "ab") as handle:
        handle.write(json.dumps(line, sort_keys=True).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def dp_group_counts(settings: Settings, client: str, figures: pd.DataFrame, by: str, epsilon: float,
                    config: PrivacyConfig, what: str) -> pd.DataFrame:
    """The groups' customer and flagged counts with OpenDP Laplace noise (charged to the client's
    budget first), the share derived from them, then suppressed below k."""
    import opendp.prelude as dp

    if epsilon <= 0:
        raise GovernanceError(f"epsilon must be > 0, got {epsilon}")
    dp.enable_features("contrib")
    scale = SENSITIVITY / epsilon
    mechanism = dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int), scale=scale)
    cost = float(mechanism.map(SENSITIVITY))  # OpenDP's own privacy map: what this release costs
    _charge(settings, client, cost, config.epsilon_budget_per_client, what)
    exact = [int(v) for v in figures["customers"]] + [int(v) for v in figures["flagged"]]
    noisy = np.clip(np.asarray(mechanism(exact), dtype="float64"), 0, None)
    n = len(figures)
    out = figures[[by]].copy()
    out["customers"], out["flagged"] = noisy[:n], np.minimum(noisy[n:], noisy[:n])
    out["flagged_share"] = np.where(out["customers"] > 0, out["flagged"] / out["customers"].where(out["customers"] > 0), np.nan)
    out["mean_score"] = np.nan  # not released under DP
    out = suppress(out, config.min_group_size)
    out["epsilon"] = cost
    return out


def latest_scores(settings: Settings) -> tuple[pd.DataFrame, str]:
    """The newest batch scores file and its as-of stamp."""
    files = sorted(settings.scores_dir.glob("scores_*.parquet"))
    if not files:
        raise GovernanceError(f"no batch scores in {settings.scores_dir}: run `make score` first")
    return pd.read_parquet(files[-1]), files[-1].stem.removeprefix("scores_")


def share_segment_profile(settings: Settings, client: str, config: PrivacyConfig,
                          epsilon: float | None = None) -> Path:
    """Write the client's per-segment figures of the latest batch, k-suppressed (and DP-noised
    when `epsilon` is given) to <data>/exports/<client>/segment_profile_<as-of>[_dp].csv."""
    scores, stamp = latest_scores(settings)
    mine = scores[scores["client_id"] == client]
    if mine.empty:
        raise GovernanceError(f"client '{client}' has no rows in the latest batch scores")
    figures = group_figures(mine, "segment_name")
    if epsilon is None:
        released, suffix = suppress(figures, config.min_group_size), ""
    else:
        released, suffix = dp_group_counts(settings, client, figures, "segment_name", epsilon, config,
                                           f"segment profile {stamp}"), "_dp"
    path = settings.data_dir / "exports" / client / f"segment_profile_{stamp}{suffix}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    released.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path
