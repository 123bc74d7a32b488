"""parity.config: business rules read from their one home, dbt_project.yml's vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity.config import ProjectConfigError, churn_population, load_settings


def _project(root: Path, vars_text: str) -> Path:
    (root / "dbt_project").mkdir(parents=True)
    (root / "dbt_project" / "dbt_project.yml").write_text(f"name: p\nvars:\n{vars_text}")
    return root


def test_the_churn_population_is_derived_from_the_dbt_var(tmp_path):
    population = churn_population(_project(tmp_path, "  churn_activity_days: 30\n"))
    assert population.days == 30 and population.feature == "purchase_count_30d"
    assert population.min_purchases == 1
    # the project's own: the column churn_labels.sql tests and batch/monitoring filter on
    assert load_settings(tmp_path / "data").churn_population.feature == "purchase_count_90d"


@pytest.mark.parametrize("value", ["0", "'90'", "true", "[]"])
def test_a_bad_churn_activity_days_names_the_file_and_var(tmp_path, value):
    root = _project(tmp_path, f"  churn_activity_days: {value}\n")
    with pytest.raises(ProjectConfigError, match=r"dbt_project\.yml: `vars.churn_activity_days` must be"):
        churn_population(root)
