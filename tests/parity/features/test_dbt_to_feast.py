"""One source of truth: a documented column added to a dbt mart becomes a Feast feature with no
Python edit; removing it and re-applying removes the feature cleanly."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil

import pytest

from parity.config import PROJECT_ROOT
from parity.features.feature_store import apply, materialize, open_store
from parity.features.parity_check import run_parity
from parity.ingest import builds
from parity.ingest.warehouse import run_dbt
from tests.conftest import build, generate_raw

# two dbt builds (the module's published baseline and one with a new column), apply, materialize
# and parity on a project copy: the heavy group, make test-heavy
pytestmark = [pytest.mark.data, pytest.mark.heavy]

NEW_COLUMN_SQL = (
    "        cast(coalesce(aggregated.refund_count_90d, 0) as bigint) as refund_count_90d,\n"
    "        cast(coalesce(aggregated.spend_365d, 0) / greatest(coalesce(aggregated.purchase_count_365d, 0), 1)"
    " as double) as spend_per_purchase_365d,\n"
)
NEW_COLUMN_YAML = """      - name: spend_per_purchase_365d
        data_type: double
        description: "Spend per purchase over 365 days (added in dbt only)."
        meta: {feature: true}
"""


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    """A copy of the dbt project and feature repo, with its own small data folder."""
    root = tmp_path_factory.mktemp("project")
    for folder in ("dbt_project", "feature_repo"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    settings = dataclasses.replace(generate_raw(root / "data", scale=0.05), project_root=root)
    return settings


@pytest.fixture(scope="module")
def published(project_copy):
    """The unedited project built and published once: every test starts from a published build
    (its manifest is what apply reads), whichever test runs first or alone."""
    build(project_copy)
    return project_copy


@contextlib.contextmanager
def _edited(path, old: str, new: str):
    """`path` with `old` replaced by `new` for the block, restored after (the copy is shared)."""
    text = path.read_text()
    assert old in text, f"anchor not found in {path}"
    path.write_text(text.replace(old, new, 1))
    try:
        yield
    finally:
        path.write_text(text)


def test_add_then_remove_a_documented_column(published):
    settings = published
    sql = settings.dbt_project_dir / "models/marts/customer_features_weekly.sql"
    yml = settings.dbt_project_dir / "models/marts/_marts__models.yml"
    old_sql = "        cast(coalesce(aggregated.refund_count_90d, 0) as bigint) as refund_count_90d,\n"
    with _edited(sql, old_sql, NEW_COLUMN_SQL), \
            _edited(yml, "      - name: snapshot_at\n", NEW_COLUMN_YAML + "      - name: snapshot_at\n"):
        build(settings)
        apply(settings)
        materialize(settings)
        view = open_store(settings).get_feature_view("customer_activity")
        fields = {f.name: (str(f.dtype), f.description) for f in view.features}
        assert fields["spend_per_purchase_365d"] == ("Float64", "Spend per purchase over 365 days (added in dbt only).")
        report = run_parity(settings, sample_times=2)
        assert report.ok, report.summary()

    # remove it again: the project is back as it was, and so is its build (the module's baseline,
    # the previous one now); re-applying drops the feature from the registry
    builds.rollback(settings)
    apply(settings)
    view = open_store(settings).get_feature_view("customer_activity")
    assert "spend_per_purchase_365d" not in {f.name for f in view.features}
    assert "spend_30d" in {f.name for f in view.features}


def test_a_type_that_would_skew_fails_apply_naming_the_column(published):
    settings = published
    yml = settings.dbt_project_dir / "models/marts/_marts__models.yml"
    sql = settings.dbt_project_dir / "models/marts/customer_features_weekly.sql"
    from parity.features.feast_definitions import DefinitionError

    with _edited(yml, "      - name: spend_30d\n        data_type: double\n",
                 "      - name: spend_30d\n        data_type: decimal(18,2)\n"), \
            _edited(sql, "cast(coalesce(aggregated.spend_30d, 0) as double) as spend_30d",
                    "cast(coalesce(aggregated.spend_30d, 0) as decimal(18,2)) as spend_30d"):
        run_dbt(settings, "parse", capture=True)  # the published build's manifest, as parsed now
        with pytest.raises(DefinitionError,
                           match=r"customer_features_weekly\.spend_30d: dbt data_type 'decimal\(18,2\)'"):
            apply(settings)
    run_dbt(settings, "parse", capture=True)  # the published manifest matches the project again
