"""Incremental staging reads only a tail of each raw file (parity.ingest.raw_tails, raw_lines in
macros/raw_records.sql): raw shapes the generator never makes, appended to a copy of the session's
day-N build over three incremental builds, each on top of the one before, then compared with a
full build of the same raw files (EXCEPT ALL both ways on every table). Tails are cut 2 KB before
each old end here, so they really are cut. The shapes: a quoted CSV field holding line feeds that
stays open across a build's end and is closed by the next drop; a JSON line cut without its line
feed (the pre-flight refuses that build) and completed by the next; an append of zero bytes; CRLF
lines appended to a CSV (that file is read whole: its line numbers are not the line feeds'); dune's
fixed-width lines repeating one from the start of its log (its occurrence number counts the kept
rows) and repeating each other."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from parity.config import Settings
from parity.ingest import incremental, raw_tails
from parity.ingest.pipeline import BuildFailed
from parity.ingest.warehouse import query
from tests.conftest import build
from tests.parity.ingest.test_incremental import _build_incremental, _copy_data, _jsonl
from tests.parity.ingest.test_incremental_edge_cases import _append, _end, _line, _refused

pytestmark = [pytest.mark.heavy, pytest.mark.data]


def _read_from_tail(folder: Path, model: str) -> bool:
    """Whether the build's run of a staging model read its raw file's tail."""
    compiled = next((folder / "run" / "compiled").rglob(f"{model}.sql"))
    return "/raw_tails/" in compiled.read_text()


def test_raw_shapes_over_three_incremental_builds_equal_full_build(
        built_data: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(raw_tails, "CONTEXT_BYTES", 2048)
    settings = _copy_data(built_data, tmp_path / "data")
    raw = settings.raw_dir
    day = _end(settings.published_dir.resolve()) + timedelta(days=2)
    stamp, iso = f"{day:%d/%m/%Y}", f"{day:%Y-%m-%dT%H:%M:%SZ}"
    acme, bolt, cora, dune = (raw / "acme" / "transactions.csv", raw / "bolt" / "transactions.jsonl",
                              raw / "cora" / "orders.csv", raw / "dune" / "purchases.txt")
    # 1. acme: a quoted field with line feeds, still open at the end of the drop (its lines end);
    #    bolt: a JSON line cut before its line feed -> the pre-flight refuses the build
    _append(acme, f'AT-9100001;AC-000049;{stamp} 10:00;31,50;EUR;"books\nand\n', "latin-1")
    template = next(r for r in _jsonl(bolt) if r.get("kind") == "purchase" and isinstance(r.get("amount_cents"), int))
    cut = json.dumps({**template, "txn_id": "bt-9100001", "received_at": iso}, separators=(",", ":"))
    _append(bolt, cut[:-9])
    published = settings.published_dir.resolve()
    with pytest.raises(BuildFailed):
        _build_incremental(settings)
    assert settings.published_dir.resolve() == published
    # 2. the JSON line completed: an incremental build with acme's quote still open
    _append(bolt, cut[-9:] + "\n")
    first = _build_incremental(settings)
    assert first.mode == "incremental", _refused(first)
    assert query(None, "select quarantine_reason from staging.stg_acme__transactions order by line_number desc limit 1",
                 folder=first.build)["quarantine_reason"].iloc[0] == "unclosed_quote"
    # 3. nothing appended, on top of it
    empty = _build_incremental(settings)
    assert empty.mode == "incremental", _refused(empty)
    # 4. acme's quote closed; CRLF lines for cora; dune repeats; more JSON lines
    _append(acme, f' more";K;{stamp} 18:00:00\nAT-9100002;AC-000049;{stamp} 11:00;5,00;EUR;home;K;{stamp} 18:00:01\n',
            "latin-1")
    when = f"{day:%Y-%m-%d} 12:00:00"
    _append(cora, f"OR-X910001,CR-00025,{when},12.00,GBP,books,completed,{when}\r\n"
                  f"OR-X910002,CR-00026,{when},13.00,GBP,toys,completed,{when}\r\n")
    lines = dune.read_text(encoding="utf-8").splitlines()
    repeat = f"{lines[0][:14]}{day:%d.%m.%Y} 09:30{lines[0][30:]}"
    _append(dune, f"{lines[0]}\n{repeat}\n{repeat}\n{lines[-1]}\n")
    _append(bolt, _line({**template, "txn_id": "bt-9100002", "received_at": iso}))
    last = _build_incremental(settings)
    assert last.mode == "incremental", _refused(last)
    # not vacuous: tails were cut and read, except for the file holding carriage returns
    for model in ("stg_acme__transactions", "stg_bolt__transactions", "stg_dune__transactions", "stg_bolt__customers"):
        assert _read_from_tail(last.build, model), model
    assert not _read_from_tail(last.build, "stg_cora__transactions")
    ids = query(None, "select line_number, transaction_id from staging.stg_dune__transactions "
                "order by line_number desc limit 4", folder=last.build)["transaction_id"].tolist()
    # newest first: the log's last line again, the new line twice (-2, -1), the log's first line again
    assert ids[1].endswith("-2") and ids[2].endswith("-1") and ids[1].split("-")[0] == ids[2].split("-")[0]
    assert not ids[0].endswith("-1") and not ids[3].endswith("-1")
    rebuilt = build(settings)
    assert rebuilt.mode == "full"
    diffs = incremental.differences(last.build, rebuilt.build)
    assert "staging.stg_dune__transactions" in diffs and "quarantine.quarantine_acme" in diffs
    assert {name: d for name, d in diffs.items() if d != (0, 0)} == {}
