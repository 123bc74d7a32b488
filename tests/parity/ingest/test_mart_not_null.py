"""A NULL in a not_null column of an external (Parquet) mart fails the build and publishes
nothing: the marts are written by our own `external` materialization (macros/materializations.sql:
COPY to a temporary file beside the target, renamed over it), so neither dbt-duckdb's typed table
nor its checks stand between a NULL and the published Parquet file.

On a project copy whose `client_watermarks` gives one client a NULL `watermark_at` (declared
`not_null` twice: a contract constraint, checked on every row by the COPY, and a dbt data test):
1. as the project declares it: the COPY fails naming the model and the column;
2. with the constraint removed, the data test alone: the file is written in the new build folder,
   the test fails, naming its model and column.
Each time `python -m parity build` (`run_build`, which the CLI prints) raises BuildFailed saying
which build stays published, and every file of the published build is byte-identical.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil

import pytest

from parity.config import PROJECT_ROOT, Settings
from parity.ingest import builds, warehouse
from parity.ingest.pipeline import BuildFailed
from tests.conftest import build, generate_raw

# three dbt builds of a small drop on a project copy: the heavy group, make test-heavy
pytestmark = [pytest.mark.data, pytest.mark.heavy]

MART = "client_watermarks"
NULL_FOR_BOLT = "        case when client_id = 'bolt' then null else watermark_at end as watermark_at,\n"


def _state(settings: Settings) -> dict[str, str]:
    """Where `published` points and the sha256 of every file of the build it points at."""
    hashes = {"published ->": os.readlink(settings.published_dir)}
    for path in sorted(p for p in settings.published_dir.resolve().rglob("*") if p.is_file()):
        hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A project copy and a small drop, built and published as the project declares it."""
    root = tmp_path_factory.mktemp("not_null")
    shutil.copytree(PROJECT_ROOT / "dbt_project", root / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    settings = dataclasses.replace(generate_raw(root / "data", scale=0.02), project_root=root)
    build(settings)
    nulls = warehouse.query(settings, f"select count(*) as n from marts.{MART} where watermark_at is null")
    assert nulls["n"].iloc[0] == 0
    return settings


def _edit(settings: Settings, relative: str, old: str, new: str) -> None:
    path = settings.dbt_project_dir / relative
    text = path.read_text()
    assert text.count(old) == 1, f"anchor not found once in {path}"
    path.write_text(text.replace(old, new))


def _fails_and_changes_nothing(settings: Settings, *expected: str) -> str:
    before, live = _state(settings), builds.published(settings)
    with pytest.raises(BuildFailed) as failed:
        build(settings)
    message = str(failed.value)
    for text in expected:
        assert text in message, message[-3000:]
    assert f"the published build {live.build_id} from" in message and "is unchanged" in message, message[-600:]
    assert _state(settings) == before
    marts = settings.published_dir / "marts"
    frame = warehouse.query(None, f"select count(*) as n, count(watermark_at) as known from "
                                  f"read_parquet('{marts}/{MART}.parquet')", folder=settings.published_dir)
    assert int(frame["n"].iloc[0]) == int(frame["known"].iloc[0]) > 0  # the published file: no NULL
    return message


def test_a_null_in_a_not_null_mart_column_fails_naming_model_and_column(published: Settings) -> None:
    _edit(published, f"models/marts/{MART}.sql", "        watermark_at,\n", NULL_FOR_BOLT)
    # 1. the contract's constraint: the COPY itself refuses the row
    _fails_and_changes_nothing(published, f"{MART}.watermark_at: NULL in a not_null column")
    # 2. the data test alone (no constraint): the mart is written in the new build folder, the
    #    test fails and names its model and column; nothing is published either
    yml = published.dbt_project_dir / "models/marts/_marts__models.yml"
    text = yml.read_text()
    start = text.index("      - name: watermark_at\n")
    end = text.index("      - name: first_snapshot_at", start)
    block = text[start:end]
    assert "        constraints: [{type: not_null}]\n" in block and "data_tests: [not_null]" in block
    yml.write_text(text[:start] + block.replace("        constraints: [{type: not_null}]\n", "") + text[end:])
    message = _fails_and_changes_nothing(published, f"not_null_{MART}_watermark_at")
    assert "NULL in a not_null column" not in message
    failed = sorted(published.builds_dir.iterdir())[-1]
    assert builds.read_info(failed).status != "published"
    written = warehouse.query(None, f"select count(*) - count(watermark_at) as nulls from "
                                    f"read_parquet('{failed}/marts/{MART}.parquet')", folder=failed)
    assert int(written["nulls"].iloc[0]) == 1  # the test, not the COPY, stopped this one
