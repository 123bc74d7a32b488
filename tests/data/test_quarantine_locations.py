"""Every record rejected in staging can be found again in its raw file (README "Row-level parsing
outcomes": `source_file`, `line_number` and `raw_line_sha256`), for every client of the session's
built data — dune's fixed-width log included (its audited reader, macros/shapes.sql
fixed_width_records): the named line of the named file hashes to raw_line_sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from parity.config import Settings
from parity.ingest.warehouse import query

pytestmark = pytest.mark.data


@pytest.mark.parametrize("client", ["acme", "bolt", "cora", "dune"])
def test_rejected_records_name_their_file_and_line(built_data: Settings, client: str) -> None:
    rows = query(built_data, f"select quarantine_reason, source_file, line_number, raw_line_sha256 "
                             f"from staging.stg_{client}__transactions where quarantine_reason is not null")
    assert len(rows) > 0  # the generator plants rejected records for every client
    lost = rows[rows["source_file"].isna() | rows["line_number"].isna() | rows["raw_line_sha256"].isna()]
    assert lost.empty, lost.groupby("quarantine_reason").size().to_dict()


def test_dune_s_rejected_lines_are_the_lines_of_its_file(built_data: Settings) -> None:
    """Each rejected dune line, read from purchases.txt by its line number, hashes to its
    raw_line_sha256 (the file's line numbering: blank lines counted), for every reason."""
    rows = query(built_data, "select quarantine_reason, source_file, line_number, raw_line_sha256 "
                             "from staging.stg_dune__transactions where quarantine_reason is not null")
    [source] = rows["source_file"].unique()
    lines = Path(source).read_bytes().decode("utf-8").split("\n")
    wrong = [(r.quarantine_reason, r.line_number) for r in rows.itertuples()
             if hashlib.sha256(lines[r.line_number - 1].encode()).hexdigest() != r.raw_line_sha256]
    assert not wrong, wrong[:10]
    assert rows["quarantine_reason"].nunique() >= 5  # cut lines, ids, dates and amounts alike
