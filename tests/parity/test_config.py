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


def test_the_profile_chooses_the_dbt_target_and_the_feast_config(tmp_path, monkeypatch):
    monkeypatch.delenv("PARITY_DBT_TARGET", raising=False)
    monkeypatch.delenv("PARITY_PROFILE", raising=False)
    embedded = load_settings(tmp_path)
    assert (embedded.profile, embedded.dbt_target) == ("embedded", "duckdb")
    assert embedded.feature_store_yaml.name == "feature_store.yaml"
    assert embedded.env()["PARITY_DBT_TARGET"] == "duckdb"
    monkeypatch.setenv("PARITY_PROFILE", "scale")
    scale = load_settings(tmp_path)
    assert (scale.dbt_target, scale.feature_store_yaml.name) == ("spark", "feature_store.scale.yaml")
    env = scale.env()  # what dbt and Feast subprocesses see
    assert env["PARITY_DBT_TARGET"] == "spark" and env["PARITY_PROFILE"] == "scale"
    assert env["PARITY_REDIS_CONNECTION"].startswith("127.0.0.1:")
    assert env["PARITY_REGISTRY_URL"].startswith("postgresql+psycopg://")
    for name in ("PARITY_REDIS_CONNECTION", "PARITY_REGISTRY_URL", "PARITY_SPARK_MASTER"):
        assert "${" + name + "}" in scale.feature_store_yaml.read_text()
    monkeypatch.setenv("PARITY_REDIS_CONNECTION", "redis1:6379,redis2:6379,ssl=true")
    assert load_settings(tmp_path).feast_env()["PARITY_REDIS_CONNECTION"] == "redis1:6379,redis2:6379,ssl=true"
    monkeypatch.setenv("PARITY_DBT_TARGET", "duckdb")  # an explicit target wins over the profile's
    assert load_settings(tmp_path).dbt_target == "duckdb"


def test_the_scale_profile_uses_the_ports_services_up_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("PARITY_PROFILE", "scale")
    for name in ("PARITY_REDIS_CONNECTION", "PARITY_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "services.json").write_text('{"redis": {"port": 7001}, "postgres": {"port": 7002}}')
    env = load_settings(tmp_path).feast_env()
    assert env["PARITY_REDIS_CONNECTION"] == "127.0.0.1:7001"
    assert env["PARITY_REGISTRY_URL"] == "postgresql+psycopg://parity@127.0.0.1:7002/parity"


def test_an_unknown_profile_is_refused_naming_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("PARITY_PROFILE", "big")
    with pytest.raises(ProjectConfigError, match="PARITY_PROFILE='big' is not a profile \\(known: embedded, scale\\)"):
        load_settings(tmp_path)


def test_each_profile_keeps_its_own_feast_records(tmp_path, monkeypatch):
    monkeypatch.delenv("PARITY_PROFILE", raising=False)
    assert load_settings(tmp_path).feast_dir == tmp_path.resolve() / "feast"
    monkeypatch.setenv("PARITY_PROFILE", "scale")
    assert load_settings(tmp_path).feast_dir == tmp_path.resolve() / "feast-scale"
