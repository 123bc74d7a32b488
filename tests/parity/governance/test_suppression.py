"""The suppression list: hashed keys only, added atomically once, handed to every dbt run."""

from __future__ import annotations

import json

import pytest

from parity import suppression
from parity.config import load_settings
from parity.governance.customer import key_sha256


def test_keys_are_hashed_added_once_and_reach_dbt(tmp_path):
    key = key_sha256("acme:AC-000123")
    assert suppression.add(tmp_path, key) and not suppression.add(tmp_path, key)
    text = suppression.path(tmp_path).read_text()
    assert "AC-000123" not in text and suppression.keys(tmp_path) == [key]
    env = load_settings(tmp_path).env()
    assert json.loads(env[suppression.ENV]) == [key]
    assert json.loads(load_settings(tmp_path / "fresh").env()[suppression.ENV]) == []


def test_a_malformed_list_or_key_is_refused_naming_the_file(tmp_path):
    with pytest.raises(suppression.SuppressionError, match="not a lowercase sha256"):
        suppression.add(tmp_path, "acme:AC-000123")
    suppression.path(tmp_path).parent.mkdir(parents=True)
    suppression.path(tmp_path).write_text("{not json")
    with pytest.raises(suppression.SuppressionError, match="suppression.json: unreadable"):
        suppression.keys(tmp_path)
