"""Drift statistics: pure functions over two samples (reference = training, current = now).

Per numeric feature: PSI over the reference's deciles (fewer bins for small samples) plus a two-sample Kolmogorov-Smirnov test;
per categorical feature: PSI over the levels plus a chi-square test of the 2 x levels table with
Cramér's V as its effect size. Missing values are a bin/level of their own in PSI, so a feature
that suddenly arrives empty shows up even though the tests ignore missing values.

A feature is flagged `drift` when PSI >= psi_alert, or when the test is significant AND its
effect size is material (KS D >= ks_min_statistic / V >= cramers_v_min): with thousands of rows
a test alone calls every tiny difference significant. `warn` = PSI >= psi_warn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from monitoring.config import DriftConfig

CATEGORICAL_TYPES = ("String", "Bool")
MISSING = "__missing__"
ALL = "all"
STATUSES = ("ok", "warn", "drift", "skipped")


def psi_from_counts(reference: np.ndarray, current: np.ndarray, smoothing: float = 0.5) -> float:
    """Population stability index sum((c - r) * ln(c / r)) over bin shares.

    Shares are smoothed with `smoothing` pseudo-rows per bin (Laplace): a bin that happens to be
    empty in a small sample would otherwise contribute ~0.7 on its own through a tiny floor.
    """
    r = np.asarray(reference, dtype="float64")
    c = np.asarray(current, dtype="float64")
    if r.sum() == 0 or c.sum() == 0:
        return float("nan")
    r = (r + smoothing) / (r.sum() + smoothing * len(r))
    c = (c + smoothing) / (c.sum() + smoothing * len(c))
    return float(np.sum((c - r) * np.log(c / r)))


def effective_bins(n_reference: int, n_current: int, bins: int, min_rows_per_bin: int) -> int:
    """Fewer bins for small samples: each bin should expect at least `min_rows_per_bin` rows."""
    return int(max(2, min(bins, min(n_reference, n_current) // max(min_rows_per_bin, 1))))


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates from ties merged)."""
    finite = reference[np.isfinite(reference)]
    if len(finite) == 0:
        return np.empty(0)
    return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))


def binned_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin (len(edges) + 1 value bins: (-inf, e0], (e0, e1], ... ) plus a missing bin."""
    finite = np.isfinite(values)
    counts = np.bincount(np.searchsorted(edges, values[finite], side="left"), minlength=len(edges) + 1)
    return np.r_[counts, (~finite).sum()]


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = 10, smoothing: float = 0.5) -> float:
    """PSI of a numeric feature over the reference's quantile bins (+ a missing bin)."""
    reference = np.asarray(reference, dtype="float64")
    current = np.asarray(current, dtype="float64")
    edges = quantile_edges(reference, bins)
    return psi_from_counts(binned_counts(reference, edges), binned_counts(current, edges), smoothing)


def _levels(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), MISSING).astype(str)


def category_counts(reference: pd.Series, current: pd.Series) -> pd.DataFrame:
    """2 x levels table of counts (levels = union of both samples, missing as its own level)."""
    table = pd.DataFrame(
        {"reference": _levels(reference).value_counts(), "current": _levels(current).value_counts()}
    ).fillna(0)
    return table.sort_index().T


def psi_categorical(reference: pd.Series, current: pd.Series, smoothing: float = 0.5) -> float:
    """PSI over the union of levels (+ missing)."""
    table = category_counts(reference, current)
    return psi_from_counts(table.loc["reference"].to_numpy(), table.loc["current"].to_numpy(), smoothing)


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value on the non-missing values (NaN if a side is empty)."""
    r = np.asarray(reference, dtype="float64")
    c = np.asarray(current, dtype="float64")
    r, c = r[np.isfinite(r)], c[np.isfinite(c)]
    if len(r) == 0 or len(c) == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(r, c)
    return float(result.statistic), float(result.pvalue)


def chi2_test(reference: pd.Series, current: pd.Series) -> tuple[float, float, float]:
    """Chi-square statistic, p-value and Cramér's V of the 2 x levels table (NaN if < 2 levels)."""
    table = category_counts(reference, current)
    table = table.loc[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return float("nan"), float("nan"), float("nan")
    chi2, p, _, _ = stats.chi2_contingency(table.to_numpy())
    n = table.to_numpy().sum()
    v = float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))
    return float(chi2), float(p), v


def is_categorical(dtype: str) -> bool:
    """Feast type names compared as categories (everything else is numeric)."""
    return dtype in CATEGORICAL_TYPES


def _numeric(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def compare_feature(
    name: str, dtype: str, reference: pd.Series, current: pd.Series, config: DriftConfig, min_rows: int
) -> dict[str, Any]:
    """One row of the drift table: sizes, missing shares, PSI, test, effect size and status."""
    row: dict[str, Any] = {
        "feature": name,
        "kind": "categorical" if is_categorical(dtype) else "numeric",
        "n_reference": len(reference),
        "n_current": len(current),
        "missing_reference": float(reference.isna().mean()) if len(reference) else float("nan"),
        "missing_current": float(current.isna().mean()) if len(current) else float("nan"),
        "psi": float("nan"),
        "test": "chi2" if is_categorical(dtype) else "KS",
        "statistic": float("nan"),
        "p_value": float("nan"),
        "effect": float("nan"),
        "status": "skipped",
        "note": "",
    }
    if len(reference) < min_rows or len(current) < min_rows:
        row["note"] = f"too few rows ({len(reference)} reference, {len(current)} current; need {min_rows})"
        return row
    if is_categorical(dtype):
        row["psi"] = psi_categorical(reference, current, config.smoothing)
        chi2, p, v = chi2_test(reference, current)
        row.update(statistic=chi2, p_value=p, effect=v)
        significant = p < config.chi2_pvalue and v >= config.cramers_v_min
    else:
        r, c = _numeric(reference), _numeric(current)
        bins = effective_bins(len(r), len(c), config.bins, config.min_rows_per_bin)
        row["psi"] = psi_numeric(r, c, bins, config.smoothing)
        d, p = ks_test(r, c)
        row.update(statistic=d, p_value=p, effect=d)
        significant = p < config.ks_pvalue and d >= config.ks_min_statistic
    row["status"] = status(row["psi"], significant, config.psi_warn, config.psi_alert)
    return row


def status(psi: float, significant: bool, warn: float, alert: float) -> str:
    """drift / warn / ok from PSI and the (effect-size-guarded) test."""
    if (np.isfinite(psi) and psi >= alert) or significant:
        return "drift"
    if np.isfinite(psi) and psi >= warn:
        return "warn"
    return "ok"


def drift_table(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[tuple[str, str]],
    config: DriftConfig,
    min_rows: int,
    group_by: str | None = None,
) -> pd.DataFrame:
    """Every feature compared overall (group 'all') and, with `group_by`, per group value.

    Features absent from `current` get status 'skipped' with a note (never an exception).
    """
    overall = reference
    if group_by and group_by in reference.columns and group_by in current.columns:
        # a group with no current rows (a client not delivering, or all its customers stale) is
        # reported on its own (freshness, "no rows for ..."); left in the overall reference it
        # would show as drift of every feature that differs between clients
        present = set(current[group_by].dropna().astype(str))
        keep = reference[group_by].isna() | reference[group_by].astype(str).isin(present)
        overall = reference[keep.to_numpy()]
    groups: list[tuple[str, pd.DataFrame, pd.DataFrame]] = [(ALL, overall, current)]
    if group_by and group_by in reference.columns and group_by in current.columns:
        values = sorted(set(reference[group_by].dropna().astype(str)) | set(current[group_by].dropna().astype(str)))
        for value in values:
            groups.append(
                (
                    value,
                    reference[reference[group_by].astype(str) == value],
                    current[current[group_by].astype(str) == value],
                )
            )
    rows = []
    for group, ref, cur in groups:
        for name, dtype in features:
            if group != ALL and name == group_by:
                continue  # constant within its own group
            if name not in cur.columns or name not in ref.columns:
                side = "current sample" if name not in cur.columns else "reference"
                rows.append({"group": group, "feature": name, "status": "skipped",
                             "note": f"feature missing from the {side}"})
                continue
            rows.append({"group": group, **compare_feature(name, dtype, ref[name], cur[name], config, min_rows)})
    columns = ["group", "feature", "kind", "n_reference", "n_current", "missing_reference", "missing_current",
               "psi", "test", "statistic", "p_value", "effect", "status", "note"]
    return pd.DataFrame(rows).reindex(columns=columns)


def compare_scores(
    reference: np.ndarray, current: np.ndarray, psi_alert: float, ks_pvalue: float, ks_min: float,
    bins: int = 10, min_rows: int = 50, min_rows_per_bin: int = 20,
) -> dict[str, Any]:
    """Score distribution shift: PSI over reference score deciles, KS, means and status."""
    reference = np.asarray(reference, dtype="float64")
    current = np.asarray(current, dtype="float64")
    out: dict[str, Any] = {
        "n_reference": len(reference),
        "n_current": len(current),
        "mean_reference": float(np.nanmean(reference)) if len(reference) else float("nan"),
        "mean_current": float(np.nanmean(current)) if len(current) else float("nan"),
        "psi": float("nan"),
        "ks_statistic": float("nan"),
        "p_value": float("nan"),
        "status": "skipped",
        "note": "",
    }
    if len(reference) < min_rows or len(current) < min_rows:
        out["note"] = f"too few scores ({len(reference)} reference, {len(current)} current; need {min_rows})"
        return out
    out["psi"] = psi_numeric(reference, current, effective_bins(len(reference), len(current), bins, min_rows_per_bin))
    out["ks_statistic"], out["p_value"] = ks_test(reference, current)
    significant = out["p_value"] < ks_pvalue and out["ks_statistic"] >= ks_min
    out["status"] = "drift" if (out["psi"] >= psi_alert or significant) else "ok"
    return out
