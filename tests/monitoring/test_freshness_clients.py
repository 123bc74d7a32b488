"""Raw-file freshness follows the clients' dbt sources (the one list), wherever their drops are."""

from __future__ import annotations

import json
import os

from monitoring.freshness import declared_raw_files, raw_files


def _manifest(tmp_path, files: dict[str, str]) -> object:
    sources = {
        f"source.parity.{client}.purchases": {
            "source_name": client, "name": "purchases",
            "source_meta": {"client_id": client},
            "meta": {"file": pattern, "external_location": f"read_csv('{pattern}')"},
        }
        for client, pattern in files.items()
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"sources": sources}))
    return path


def test_declared_files_outside_raw_dir_are_found_and_the_newest_wins(tmp_path):
    drops = tmp_path / "sftp" / "dune"
    drops.mkdir(parents=True)
    for i, name in enumerate(["2026-04.txt", "2026-05.txt"]):
        (drops / name).write_text("x\n")
        os.utime(drops / name, (1_700_000_000 + i * 86400,) * 2)
    declared = declared_raw_files(_manifest(tmp_path, {"dune": str(drops / "*.txt")}))
    assert [p.name for p in declared["dune"]] == ["2026-04.txt", "2026-05.txt"]
    messages: list[str] = []
    table = raw_files(tmp_path / "raw", ["dune", "acme"], messages, declared)
    assert table.set_index("client_id").loc["dune", "newest_raw_file"] == "2026-05.txt"
    # a listed client with neither declared nor conventional files is named
    assert messages == [f"client 'acme': no raw files declared by its dbt sources or under {tmp_path / 'raw' / 'acme'}"]


def test_no_manifest_falls_back_to_the_raw_folder(tmp_path):
    (tmp_path / "raw" / "acme").mkdir(parents=True)
    (tmp_path / "raw" / "acme" / "customers.csv").write_text("id\n")
    assert declared_raw_files(tmp_path / "missing.json") == {}
    table = raw_files(tmp_path / "raw", ["acme"], [], declared_raw_files(tmp_path / "missing.json"))
    assert table["newest_raw_file"].tolist() == ["customers.csv"]
