"""Small groups are suppressed in what a client receives; DP releases stay within the budget."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from parity.config import load_settings
from parity.governance.config import PrivacyConfig
from parity.governance.privacy import (
    BudgetExceeded,
    dp_group_counts,
    group_figures,
    share_segment_profile,
    spent,
    suppress,
)

CONFIG = PrivacyConfig(min_group_size=5, epsilon_budget_per_client=1.0, default_epsilon=0.5)


def _scores(sizes: dict[str, int]) -> pd.DataFrame:
    rows = [(f"acme:{seg}-{i}", "acme", seg, i % 2 == 0, 0.1 * (i % 10)) for seg, n in sizes.items()
            for i in range(n)]
    return pd.DataFrame(rows, columns=["customer_id", "client_id", "segment_name", "decision", "score"])


def test_groups_below_k_are_suppressed_with_every_figure():
    figures = group_figures(_scores({"big": 12, "edge": 5, "tiny": 2}), "segment_name")
    out = suppress(figures, k=5).set_index("segment_name")
    assert list(out["suppressed"]) == [False, False, True]
    assert out.loc["tiny", ["customers", "flagged", "flagged_share", "mean_score"]].isna().all()
    assert out.loc["big", "customers"] == 12 and out.loc["edge", "flagged"] == 3


def test_the_shared_profile_file_suppresses_small_segments(tmp_path):
    settings = load_settings(tmp_path)
    settings.scores_dir.mkdir(parents=True)
    _scores({"big": 20, "tiny": 3}).to_parquet(settings.scores_dir / "scores_20260601T000000Z.parquet")
    path = share_segment_profile(settings, "acme", CONFIG)
    shared = pd.read_csv(path).set_index("segment_name")
    assert path.parent == tmp_path / "exports" / "acme"
    assert shared.loc["tiny", "suppressed"] and np.isnan(shared.loc["tiny", "customers"])
    assert shared.loc["big", "customers"] == 20


def test_dp_releases_are_charged_to_the_client_and_refused_past_the_budget(tmp_path):
    settings = load_settings(tmp_path)
    figures = group_figures(_scores({"big": 200, "tiny": 2}), "segment_name")
    first = dp_group_counts(settings, "acme", figures, "segment_name", 0.4, CONFIG, "r1")
    assert first["epsilon"].iloc[0] == pytest.approx(0.4) and spent(settings, "acme") == pytest.approx(0.4)
    assert abs(first.set_index("segment_name").loc["big", "customers"] - 200) < 60  # noisy, not wild
    dp_group_counts(settings, "acme", figures, "segment_name", 0.6, CONFIG, "r2")  # exactly the budget
    with pytest.raises(BudgetExceeded, match="'acme'.*0.1.*budget 1"):
        dp_group_counts(settings, "acme", figures, "segment_name", 0.1, CONFIG, "r3")
    assert spent(settings, "acme") == pytest.approx(1.0)  # the refused release cost nothing
    assert spent(settings, "bolt") == 0.0  # budgets are per client
    dp_group_counts(settings, "bolt", figures, "segment_name", 0.5, CONFIG, "b1")
    lines = [json.loads(x) for x in (tmp_path / "governance" / "privacy_ledger.jsonl").read_text().splitlines()]
    assert [(x["client_id"], x["what"]) for x in lines] == [("acme", "r1"), ("acme", "r2"), ("bolt", "b1")]
