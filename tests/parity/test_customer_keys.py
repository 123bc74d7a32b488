"""parity.customer_keys: Python keys a customer exactly as staging's SQL does (the blanks DuckDB's
trim() removes, each client's declared case), from the one declaration in dbt_project.yml."""

from __future__ import annotations

import shutil
import unicodedata

import duckdb
import pytest
import yaml

from parity.config import PROJECT_ROOT, ProjectConfigError
from parity.customer_keys import customer_keys, strip_blanks

# every Unicode space separator, and whitespace-like characters that are not one
CANDIDATES = [chr(c) for c in range(0x3001) if unicodedata.category(chr(c)) == "Zs"] + \
    ["\t", "\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\u200b", "\ufeff", "\u180e"]


def test_blanks_are_what_duckdb_trim_removes():
    con = duckdb.connect()
    for ch in CANDIDATES:
        text = f"{ch}AC-1{ch}"
        assert strip_blanks(text) == con.execute("select trim(?)", [text]).fetchone()[0], hex(ord(ch))


def test_keys_follow_each_client_s_declared_rule():
    keys = customer_keys()
    assert keys.canonical("cora:cr-00025") == "cora:CR-00025"
    assert keys.canonical(" CORA:\u00a0cr-00025 ") == "cora:CR-00025"
    assert keys.canonical("BOLT:B-7") == "bolt:b-7"
    assert keys.canonical("\tcora:cr-1") == "\tcora:cr-1"  # a tab is not trimmed: no client, as staging says
    assert keys.canonical("zeta:Z-1") == "zeta:Z-1"  # not onboarded: left as written
    raw = ["cora:CR-00025", "cora:cr-00025", "acme:AC-000001 ", "bolt:b-1", "acme:"]
    assert keys.canonical_many(raw) == [keys.canonical(k) for k in raw]
    assert keys.expected_form("cora") == "CR-[0-9]{5}" and keys.expected_form("zeta") is None


def test_an_undeclared_case_is_refused(tmp_path):
    project = tmp_path / "dbt_project"
    project.mkdir()
    config = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    config["vars"]["parsing"]["cora"]["customer_id"] = {"case": "title"}
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config))
    with pytest.raises(ProjectConfigError, match="vars.parsing.cora.customer_id"):
        customer_keys(tmp_path)
    shutil.rmtree(project)


def test_a_malformed_id_is_explained_by_its_client_s_pattern():
    keys = customer_keys()
    assert keys.malformed("cora:CR-25") == "cora customer ids must match CR-[0-9]{5} " \
                                          "(after trimming and the client's case rule)"
    assert keys.malformed("cora:CR-00025") is None
    assert keys.malformed("zeta:Z-1") is None and keys.malformed("no-client") is None  # not a client's id
    assert keys.malformed("acme:") is not None  # an empty id breaks every pattern
