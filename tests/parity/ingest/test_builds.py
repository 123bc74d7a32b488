"""Build folders, the publish swap, rollback, pruning and the build lock (no dbt: folders only),
plus the CLI's messages for a running build and a bad environment (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from parity.config import PROJECT_ROOT, load_settings
from parity.ingest import builds


def _built(settings, marker: str) -> Path:
    folder = builds.new_build(settings)
    (folder / "marts").mkdir()
    (folder / "marts" / "m.parquet").write_text(marker)
    return folder


def test_publish_swaps_the_link_and_keeps_the_previous_build(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert builds.published(settings) is None
    first = _built(settings, "one")
    assert builds.publish(settings, first) is None
    assert (settings.marts_dir / "m.parquet").read_text() == "one"
    assert os.readlink(settings.published_dir) == f"builds/{first.name}"  # relative: folder movable
    second = _built(settings, "two")
    replaced = builds.publish(settings, second)
    assert replaced is not None and replaced.build_id == first.name
    assert (settings.marts_dir / "m.parquet").read_text() == "two"
    assert builds.previous(settings).build_id == first.name
    assert builds.read_info(second).status == "published"


def test_rollback_swaps_published_and_previous(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    with pytest.raises(builds.BuildError, match="nothing is published"):
        builds.rollback(settings)
    first = _built(settings, "one")
    builds.publish(settings, first)
    with pytest.raises(builds.BuildError, match="no previous build"):
        builds.rollback(settings)
    second = _built(settings, "two")
    builds.publish(settings, second)
    now, before = builds.rollback(settings)
    assert (now.build_id, before.build_id) == (first.name, second.name)
    assert (settings.marts_dir / "m.parquet").read_text() == "one"
    builds.rollback(settings)  # and forward again
    assert (settings.marts_dir / "m.parquet").read_text() == "two"


def test_prune_keeps_published_previous_and_the_newest(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    folders = [_built(settings, str(n)) for n in range(6)]
    builds.publish(settings, folders[1])
    builds.publish(settings, folders[2])  # previous = 1
    removed = builds.prune(settings, keep=3)
    kept = sorted(p.name for p in settings.builds_dir.iterdir())
    assert kept == sorted([folders[1].name, folders[2].name, folders[5].name])
    assert sorted(p.name for p in removed) == sorted(f.name for f in (folders[0], folders[3], folders[4]))


def test_a_real_folder_where_the_link_belongs_is_refused(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    settings.published_dir.mkdir(parents=True)
    with pytest.raises(builds.BuildError, match="should be a symlink"):
        builds.published(settings)


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PARITY_DATA_DIR": str(data_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run([sys.executable, "-m", "parity", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_a_second_build_is_refused_naming_the_running_one(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    with builds.build_lock(settings, "build everything"):
        proc = _cli(tmp_path, "build")
        rolled = _cli(tmp_path, "rollback-build")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr and "another build is running" in proc.stderr
    assert "started 20" in proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert rolled.returncode == 2 and "another build is running" in rolled.stderr
    assert not list(settings.builds_dir.glob("*"))  # nothing was started


def test_rollback_build_cli_without_a_previous_build(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "rollback-build")
    assert proc.returncode == 2 and "nothing is published yet" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_data_folder_is_a_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)
    try:
        proc = _cli(data, "build")
    finally:
        data.chmod(0o755)
    assert proc.returncode == 2 and "cannot write to the data folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_data_folder_that_cannot_be_created_is_a_message(tmp_path: Path) -> None:
    # runs as root too (chmod does not stop root): the folder's parent is a file
    (tmp_path / "file").write_text("")
    proc = _cli(tmp_path / "file" / "data", "build")
    assert proc.returncode == 2, proc.stderr
    assert "cannot write to the data folder" in proc.stderr and "Not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr
