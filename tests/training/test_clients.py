"""training.clients: the clients of a training set are reported, never silent."""

from __future__ import annotations

import pandas as pd

from training.clients import composition, describe, warnings


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["acme:1", "acme:2", "bolt:1", "bolt:2", "old:9"],
        "client_id": ["acme", "acme", "bolt", None, None],  # no feature row: client from the key
        "country": ["DE", None, None, None, None],
        "birth_year": pd.array([None] * 5, dtype="Int64"),
        "is_churned": [1, 0, 0, 1, 0],
    })


def test_a_listed_client_without_labels_is_named():
    summary = composition(_frame(), ["acme", "bolt", "dune"], ["client_id", "country", "birth_year"])
    assert summary["trained_on"] == {"acme": {"rows": 2, "positives": 1}, "bolt": {"rows": 2, "positives": 1},
                                     "old": {"rows": 1, "positives": 0}}
    assert summary["without_labels"] == ["dune"] and summary["not_listed"] == ["old"]
    found = " | ".join(warnings(summary))
    assert "dune contribute 0 labels" in found and "trained on acme, bolt, old only" in found
    assert "old that are not in vars.clients" in found
    assert describe(summary).startswith("clients in the training set: acme 2 rows / 1 churned")


def test_features_null_everywhere_or_for_one_client_are_named():
    summary = composition(_frame(), ["acme", "bolt", "old"], ["client_id", "country", "birth_year"])
    assert summary["features_null_on_every_row"] == ["birth_year"]
    assert summary["features_null_for_client"] == {"bolt": ["country"], "old": ["client_id", "country"]}
    assert not summary["without_labels"]
    assert any("birth_year are null on every training row" in w for w in warnings(summary))
