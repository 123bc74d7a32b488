"""Human review in monitoring: override rates per client and segment, and — once the 60-day
labels of the reviewed batches mature — whether the reviewers or the model were right.

Decisions come from the console's records (`parity.reviews`); segments from the batch each
decision was taken on (the decision is about that batch's row); labels from the churn_labels mart,
matched like realised performance (`performance.match_labels`). Pure functions, a frame in.

Who was right, per decision with a matured label: the model flagged every reviewed customer
(the queue holds flagged customers only), so the model was right when the customer churned. An
approval agrees with the model; an override or a 'model wrong' says "do not act", and the reviewer
was right when the customer stayed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from monitoring import performance
from parity import reviews

OUTCOME_COLUMNS = ["action", "decisions", "with_label", "churned", "model_right_rate", "reviewer_right_rate"]


def batch_time(stamp: str) -> pd.Timestamp | None:
    """A batch stamp (20261129T000001Z) as a UTC time, None when it is not one."""
    try:
        return pd.Timestamp(pd.to_datetime(stamp, format="%Y%m%dT%H%M%SZ", utc=True))
    except (ValueError, TypeError):
        return None


def with_segments(decided: pd.DataFrame, scores_dir: Path, prefix: str, messages: list[str]) -> pd.DataFrame:
    """The decisions with the segment each customer had in the batch it was decided on."""
    out = decided.assign(segment_name=pd.Series(pd.NA, index=decided.index, dtype="object"))
    for stamp in sorted(set(decided["batch_as_of"])):
        path = scores_dir / f"{prefix}{stamp}.parquet"
        try:
            batch = pd.read_parquet(path, columns=["customer_id", "segment_name"])
        except (OSError, ValueError) as err:
            messages.append(f"reviews: segments of batch {stamp} unknown ({path}: {err})")
            continue
        names = dict(zip(batch["customer_id"], batch["segment_name"]))
        mask = out["batch_as_of"] == stamp
        out.loc[mask, "segment_name"] = out.loc[mask, "customer_id"].map(names)
    out["segment_name"] = out["segment_name"].fillna("no segment")
    return out


def outcomes(decided: pd.DataFrame, labels: pd.DataFrame | None, tolerance_days: float) -> pd.DataFrame:
    """Per action (and `all`): decisions, those with a matured label, churned among them, and the
    share where the model / the reviewer was right (NaN until a label matures)."""
    latest = decided[decided["is_latest"]] if len(decided) else decided
    if not len(latest):
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    scored = pd.DataFrame({"customer_id": latest["customer_id"].astype(str).to_numpy(),
                           "scored_for": latest["batch_as_of"].map(batch_time).to_numpy(),
                           "action": latest["action"].to_numpy()})
    scored = scored[scored["scored_for"].notna()]
    matched = performance.match_labels(scored, labels, tolerance_days) if labels is not None else scored.iloc[0:0]
    rows = []
    for action in (*reviews.ACTIONS, "all"):
        mine = latest if action == "all" else latest[latest["action"] == action]
        known = matched if action == "all" else matched[matched["action"] == action]
        churned = known["is_churned"].astype(bool) if len(known) else pd.Series(dtype=bool)
        agrees = known["action"] == "approve" if len(known) else pd.Series(dtype=bool)
        reviewer_right = (agrees & churned) | (~agrees & ~churned)
        rows.append({"action": action, "decisions": len(mine), "with_label": len(known),
                     "churned": int(churned.sum()),
                     "model_right_rate": float(churned.mean()) if len(known) else float("nan"),
                     "reviewer_right_rate": float(reviewer_right.mean()) if len(known) else float("nan")})
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS)


def review_findings(console_dir: Path, scores_dir: Path, prefix: str,
                    read_labels: Callable[[], pd.DataFrame | None], tolerance_days: float,
                    messages: list[str]) -> dict[str, pd.DataFrame]:
    """Override rates by client and by segment, and outcomes, of every recorded decision
    (`read_labels` is called only when there are decisions)."""
    try:
        decided = reviews.decisions(console_dir)
    except Exception as err:  # a locked or damaged console database: said, not raised
        messages.append(f"reviews: cannot read {console_dir / reviews.FILE}: {err}")
        decided = reviews.decisions(console_dir / "missing")
    if not len(decided):
        messages.append(f"reviews: no review decision recorded in {console_dir} (the console's review queue)")
        return {"by_client": pd.DataFrame(), "by_segment": pd.DataFrame(), "outcomes": pd.DataFrame()}
    decided = with_segments(decided, scores_dir, prefix, messages)
    return {"by_client": reviews.override_rates(decided),
            "by_segment": reviews.override_rates(decided, by="segment_name"),
            "outcomes": outcomes(decided, read_labels(), tolerance_days)}
