"""A build's dbt commands in one dbt process (parity.ingest.warehouse.DbtSession,
parity.ingest.dbt_session): a failing model still fails with dbt's message naming it; each command
runs with its own environment (a build's parse and its build differ: PARITY_BUILD_DIR, target
path); the manifest consumers read names the published marts and the build's own manifest, parsed
from the parse's state, equals a full parse in the build's environment; an edit of the project
while a build runs fails the build instead of recording a fingerprint of code dbt did not run."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from parity.config import PROJECT_ROOT, Settings, load_settings
from parity.ingest import builds, warehouse
from parity.ingest.pipeline import BuildFailed, _seed_parse_state
from parity.ingest.warehouse import DbtError, DbtSession, run_dbt

PROFILE = """\
parity:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('PARITY_WAREHOUSE_DIR', env_var('PARITY_BUILD_DIR', env_var('PARITY_DATA_DIR') ~ '/published')) }}/warehouse.duckdb"
      threads: 1
"""


def _tiny(tmp_path: Path, models: dict[str, str]) -> Settings:
    """A minimal dbt project (DuckDB) of `models` and a data folder, as Settings."""
    root = tmp_path / "root"
    (root / "dbt_project" / "models").mkdir(parents=True)
    (root / "dbt_project" / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nconfig-version: 2\nprofile: parity\nmodel-paths: [models]\n")
    (root / "dbt_project" / "profiles.yml").write_text(PROFILE)
    for name, sql in models.items():
        (root / "dbt_project" / "models" / f"{name}.sql").write_text(sql)
    (tmp_path / "data").mkdir()
    return dataclasses.replace(load_settings(tmp_path / "data"), project_root=root, dbt_target="duckdb")


def test_a_failing_model_fails_with_dbt_s_message_naming_it(tmp_path: Path) -> None:
    settings = _tiny(tmp_path, {"fine": "select 1 as x",
                                "broken_model": "select * from a_table_that_is_not_there"})
    build = tmp_path / "build"
    build.mkdir()
    with DbtSession(settings) as session, pytest.raises(DbtError) as failed:
        # as a build runs it: the build given the manifest its parse kept
        session.start(settings, "parse", "--quiet", keep_manifest=True, target_dir=build / "run", build_dir=build)
        session.run(settings, "build", capture=True, reuse_manifest=True, target_dir=build / "run", build_dir=build)
    message = str(failed.value)
    assert message.startswith("`dbt build` failed (exit 1)")
    assert "broken_model" in message and "a_table_that_is_not_there" in message
    # the log file keeps the error, not every statement (info level unless DBT_LOG_LEVEL_FILE says)
    log = (tmp_path / "data" / "dbt" / "logs" / "dbt.log").read_text()
    assert "a_table_that_is_not_there" in log and "[debug]" not in log
    # the same command as a `dbt` process of its own says the same
    with pytest.raises(DbtError) as alone:
        run_dbt(settings, "build", capture=True, target_dir=build / "run2", build_dir=build)
    assert "broken_model" in str(alone.value) and "a_table_that_is_not_there" in str(alone.value)


def test_each_command_runs_with_its_own_environment(tmp_path: Path) -> None:
    """A parse without PARITY_BUILD_DIR, then a build with it, in one process: the parse's manifest
    has the published value, the build's manifest and table the build's (dbt re-parses the files
    whose env vars changed, from the parse's state)."""
    sql = ("{{ config(materialized='table', meta={'where': env_var('PARITY_BUILD_DIR', 'published')}) }}\n"
           "select '{{ env_var('PARITY_BUILD_DIR', 'published') }}' as where_built")
    settings = dataclasses.replace(_tiny(tmp_path, {"located": sql}), extra_env={"DBT_LOG_LEVEL_FILE": "debug"})
    build = tmp_path / "build"
    build.mkdir()
    with DbtSession(settings) as session:
        session.run(settings, "parse", "--quiet", capture=True, target_dir=build / "target", warehouse_of=build)
        _seed_parse_state(build / "target", build / "run")
        done = session.run(settings, "build", capture=True, target_dir=build / "run", build_dir=build)
    assert "Partial parsing enabled" in (tmp_path / "data" / "dbt" / "logs" / "dbt.log").read_text()
    assert "Done. PASS=1" in done.stdout

    def meta(target: str) -> str:
        manifest = json.loads((build / target / "manifest.json").read_text())
        return manifest["nodes"]["model.tiny.located"]["config"]["meta"]["where"]

    assert meta("target") == "published"
    assert meta("run") == str(build)
    assert warehouse.query(None, "select where_built from main.located", folder=build)["where_built"].tolist() == [str(build)]


REUSED = "the manifest parsed by the previous command is used"


def test_a_build_is_given_the_manifest_parsed_in_exactly_its_environment(tmp_path: Path) -> None:
    sql = "select '{{ env_var('PARITY_TINY', 'unset') }}' as value"
    settings = _tiny(tmp_path, {"valued": sql})
    build = tmp_path / "build"
    build.mkdir()
    other = dataclasses.replace(settings, extra_env={"PARITY_TINY": "other"})
    with DbtSession(settings) as session:
        session.start(settings, "parse", "--quiet", "--no-write-json", keep_manifest=True,
                      target_dir=build / "run", build_dir=build)
        done = session.run(settings, "build", capture=True, reuse_manifest=True, target_dir=build / "run",
                           build_dir=build)
        assert REUSED in done.stdout and "Done. PASS=1" in done.stdout
        assert warehouse.query(None, "select value from main.valued", folder=build)["value"].tolist() == ["unset"]
        # another environment (here an env var the model reads): dbt parses for itself
        session.start(settings, "parse", "--quiet", "--no-write-json", keep_manifest=True,
                      target_dir=build / "run", build_dir=build)
        done = session.run(other, "build", capture=True, reuse_manifest=True, target_dir=build / "run",
                           build_dir=build)
        assert REUSED not in done.stdout and "Done. PASS=1" in done.stdout
        assert warehouse.query(None, "select value from main.valued", folder=build)["value"].tolist() == ["other"]
        # a manifest serves one command
        done = session.run(other, "build", capture=True, reuse_manifest=True, target_dir=build / "run",
                           build_dir=build)
        assert REUSED not in done.stdout


def test_a_dbt_error_before_any_node_is_a_message(tmp_path: Path) -> None:
    settings = _tiny(tmp_path, {"fine": "select 1 as x"})
    with DbtSession(settings) as session, pytest.raises(DbtError) as failed:
        session.run(settings, "build", "--select", "fine", "--no-such-option", capture=True,
                    target_dir=tmp_path / "t", build_dir=tmp_path)
    assert "no-such-option" in str(failed.value)


# the parts of a parsed node that decide what dbt runs (not what a run adds: compiled code, times)
PARSED = ("config", "relation_name", "depends_on", "checksum", "raw_code", "fqn", "refs", "sources",
          "original_file_path", "database", "schema", "alias", "unrendered_config")


@pytest.mark.data
def test_the_build_manifest_equals_a_full_parse_and_consumers_read_published_paths(
        built_data: Settings, tmp_path: Path) -> None:
    folder = builds.published(built_data).path
    published = str(built_data.published_dir)
    consumers = json.loads((folder / "target" / "manifest.json").read_text())
    ran = json.loads((folder / "run" / "manifest.json").read_text())
    mart = "model.parity.customer_features_weekly"
    assert consumers["nodes"][mart]["config"]["location"].startswith(f"{published}/marts/")
    assert ran["nodes"][mart]["config"]["location"].startswith(f"{folder}/marts/")
    # the build's own parse starts from the parse's state (partial: the files whose env vars
    # differ are parsed again); a full parse in the build's environment gives the same nodes,
    # sources and unit tests
    _seed_parse_state(folder / "target", tmp_path / "partial")
    for kind, extra in (("partial", ()), ("full", ("--no-partial-parse",))):
        run_dbt(built_data, "parse", "--quiet", *extra, capture=True, target_dir=tmp_path / kind, build_dir=folder)
    assert "Partial parsing enabled" in (built_data.data_dir / "dbt" / "logs" / "dbt.log").read_text()
    partial, full = (json.loads((tmp_path / kind / "manifest.json").read_text()) for kind in ("partial", "full"))
    for kind in ("nodes", "sources", "unit_tests", "macros"):
        assert partial[kind].keys() == full[kind].keys() == ran[kind].keys(), kind
    for uid, node in full["nodes"].items():
        assert {k: node.get(k) for k in PARSED} == {k: partial["nodes"][uid].get(k) for k in PARSED}, uid
        # what the build ran with (its manifest as written after the run)
        assert node["config"] == ran["nodes"][uid]["config"] and node["relation_name"] == ran["nodes"][uid]["relation_name"]
    for uid, source in full["sources"].items():
        assert {k: v for k, v in source.items() if k != "created_at"} == \
            {k: v for k, v in partial["sources"][uid].items() if k != "created_at"}, uid
    for uid, test in full["unit_tests"].items():
        assert {k: v for k, v in test.items() if k != "created_at"} == \
            {k: v for k, v in partial["unit_tests"][uid].items() if k != "created_at"}, uid


@pytest.mark.data
def test_a_project_edited_while_dbt_runs_fails_the_build(built_data: Settings, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The incremental check and raw_state.json name the project dbt parsed: edited after dbt
    parsed it (here: while its build runs), the build is not published (before, raw_state.json
    recorded the edited project, so the next incremental build ran on tables of other code)."""
    from tests.parity.ingest.test_incremental import _build_incremental, _copy_data

    root = tmp_path / "root"
    shutil.copytree(PROJECT_ROOT / "dbt_project", root / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    settings = dataclasses.replace(_copy_data(built_data, tmp_path / "data"), project_root=root)
    before = builds.published(settings)
    model = root / "dbt_project" / "models" / "marts" / "churn_labels.sql"
    run = DbtSession.run

    def edit_during_build(self, s, *args, **kwargs):
        done = run(self, s, *args, **kwargs)
        if args[0] == "build":
            model.write_text(model.read_text() + "\n-- edited while the build ran\n")
        return done

    monkeypatch.setattr(DbtSession, "run", edit_during_build)
    with pytest.raises(BuildFailed, match=r"dbt project changed while this build ran \(models/marts/churn_labels.sql\)"):
        _build_incremental(settings)
    assert builds.published(settings).path == before.path


def test_a_spark_build_keeps_a_dbt_process_per_command(tmp_path: Path) -> None:
    """dbt-spark starts a JVM in its process: no shared process, each command is run_dbt's."""
    settings = dataclasses.replace(_tiny(tmp_path, {"fine": "select 1 as x"}), dbt_target="spark")
    with DbtSession(settings) as session:
        assert not session.in_process
        done = session.run(settings, "parse", "--quiet", capture=True, target_dir=tmp_path / "t")
    assert done.args[0] == "parse" and (tmp_path / "t" / "manifest.json").is_file()
