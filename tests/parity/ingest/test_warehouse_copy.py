"""The background copy of a build's warehouse (parity.ingest.warehouse.FileCopy): byte-identical
when waited for, removed when cancelled, its error raised to the waiting build, the source only
read. A real DuckDB file, no dbt."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from parity.ingest import warehouse
from parity.ingest.warehouse import WAREHOUSE_FILE, FileCopy


def _base(tmp_path: Path) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    with duckdb.connect(str(base / WAREHOUSE_FILE)) as con:
        con.execute("create table t as select range as i, md5(range::varchar) as s from range(50000)")
    return base


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_waited_copy_is_identical_and_readable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(FileCopy, "STEP", 1 << 14)  # many steps: the loop, not one call
    base, folder = _base(tmp_path), tmp_path / "new"
    folder.mkdir()
    before = _digest(base / WAREHOUSE_FILE)
    FileCopy(base, folder).wait()
    assert _digest(folder / WAREHOUSE_FILE) == before == _digest(base / WAREHOUSE_FILE)
    with warehouse.connect(folder) as con:
        assert con.execute("select count(*) from t").fetchone() == (50000,)


def test_cancelled_copy_leaves_no_file_and_the_base_as_it_was(tmp_path: Path) -> None:
    base, folder = _base(tmp_path), tmp_path / "new"
    folder.mkdir()
    before = _digest(base / WAREHOUSE_FILE)
    FileCopy(base, folder).cancel()
    assert not (folder / WAREHOUSE_FILE).exists()
    assert _digest(base / WAREHOUSE_FILE) == before


def test_copy_error_reaches_the_waiting_build(tmp_path: Path) -> None:
    base = _base(tmp_path)
    copy = FileCopy(base, tmp_path / "no-such-folder")  # the target cannot be created
    with pytest.raises(FileNotFoundError):
        copy.wait()
