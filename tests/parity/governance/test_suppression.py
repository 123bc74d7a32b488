"""The suppression list: hashed keys only, added atomically once, its path handed to every dbt run."""

from __future__ import annotations

import json

import pytest

from parity import suppression
from parity.config import load_settings
from parity.governance.customer import key_sha256


def test_keys_are_hashed_added_once_and_reach_dbt(tmp_path, monkeypatch):
    key = key_sha256("acme:AC-000123")
    assert suppression.add(tmp_path, key) and not suppression.add(tmp_path, key)
    text = suppression.path(tmp_path).read_text()
    assert "AC-000123" not in text and suppression.keys(tmp_path) == [key]
    assert text.splitlines()[0] == "key_sha256,added_at" and text.splitlines()[1].startswith(key + ",")
    assert load_settings(tmp_path).env()[suppression.ENV] == str(suppression.path(tmp_path).resolve())
    # a folder with nothing erased: no list, even when the caller's environment names another's
    monkeypatch.setenv(suppression.ENV, str(suppression.path(tmp_path)))
    assert suppression.ENV not in load_settings(tmp_path / "fresh").env()


def test_the_list_has_no_size_limit(tmp_path):
    """The list is a file the engine reads (once capped at ~1,800 keys by an environment variable)."""
    many = [key_sha256(f"acme:AC-{n:06d}") for n in range(5000)]
    suppression.path(tmp_path).parent.mkdir(parents=True)
    suppression.path(tmp_path).write_text("key_sha256,added_at\n" + "".join(f"{k},x\n" for k in many))
    assert suppression.add(tmp_path, key_sha256("acme:new")) and len(suppression.keys(tmp_path)) == 5001
    assert len(load_settings(tmp_path).env()[suppression.ENV]) < 4096


def test_a_list_of_the_first_format_is_converted_once(tmp_path):
    key = key_sha256("acme:AC-000001")
    legacy = tmp_path / suppression.LEGACY_FILE
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"keys": [{"sha256": key, "added_at": "2026-12-01T00:00:00+00:00"}]}))
    assert suppression.entries(tmp_path) == [{"sha256": key, "added_at": "2026-12-01T00:00:00+00:00"}]
    assert not legacy.exists() and suppression.keys(tmp_path) == [key]


def test_a_malformed_list_or_key_is_refused_naming_the_file(tmp_path):
    with pytest.raises(suppression.SuppressionError, match="not a lowercase sha256"):
        suppression.add(tmp_path, "acme:AC-000123")
    suppression.path(tmp_path).parent.mkdir(parents=True)
    suppression.path(tmp_path).write_text("{not csv")
    with pytest.raises(suppression.SuppressionError, match="suppression.csv: the first line must be the header"):
        suppression.keys(tmp_path)
    suppression.path(tmp_path).write_text("key_sha256,added_at\n" + key_sha256("a").upper() + ",x\n")
    with pytest.raises(suppression.SuppressionError, match="line 2: not"):
        load_settings(tmp_path).env()  # a build stops before dbt runs
