"""Which clients a training set covers, reported on every run (never silent).

Per client: rows and positive labels; listed clients (`vars.clients`) that contribute no label
(the model then never saw them: their scores come from the other clients' patterns); clients in
the labels that are not listed; and features that are null for every row, or for every row of
one client (a client that does not send that field). Such features do not stop training: a
column with no value becomes a constant (imputed) column that carries no information
(`parity.models.prepare.fit_spec`), and this report says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from parity.features.retrieval import ENTITY_KEY
from training.dataset import LABEL

CLIENT = "client_id"


def client_of(frame: pd.DataFrame) -> pd.Series:
    """Each row's client: the `client_id` feature, else the platform key's '<client>:' prefix."""
    from_key = frame[ENTITY_KEY].astype(str).str.split(":", n=1).str[0]
    if CLIENT not in frame.columns:
        return from_key
    return frame[CLIENT].astype(object).where(frame[CLIENT].notna(), from_key).astype(str)


def composition(frame: pd.DataFrame, listed: Sequence[str], features: Sequence[str]) -> dict[str, Any]:
    """Rows/labels per client, listed clients without labels, unlisted ones, all-null features."""
    clients = client_of(frame)
    trained_on = {
        str(client): {"rows": int(len(rows)), "positives": int(rows[LABEL].sum())}
        for client, rows in frame.groupby(clients, sort=True)
    }
    present = [name for name in features if name in frame.columns]
    null_everywhere = [name for name in present if frame[name].isna().all()]
    null_for_client = {}
    for client, rows in frame.groupby(clients, sort=True):
        names = [name for name in present if name not in null_everywhere and rows[name].isna().all()]
        if names:
            null_for_client[str(client)] = names
    return {
        "listed": list(listed),
        "trained_on": trained_on,
        "without_labels": [c for c in listed if c not in trained_on],
        "not_listed": [c for c in trained_on if c not in listed],
        "features_null_on_every_row": null_everywhere,
        "features_null_for_client": null_for_client,
    }


def warnings(summary: dict[str, Any]) -> list[str]:
    """What a person must know about the training set's clients, one sentence each."""
    found = []
    if summary["without_labels"]:
        found.append(
            f"listed client(s) {', '.join(summary['without_labels'])} contribute 0 labels: the model is "
            f"trained on {', '.join(summary['trained_on']) or 'no client'} only and never saw them "
            "(their history is shorter than a label window, or their labels were not built)"
        )
    if summary["not_listed"]:
        found.append(f"the labels include client(s) {', '.join(summary['not_listed'])} that are not in "
                     "vars.clients: rebuild (`make build`) after changing the client list")
    if summary["features_null_on_every_row"]:
        found.append(f"feature(s) {', '.join(summary['features_null_on_every_row'])} are null on every "
                     "training row: they carry no information (constant imputed columns)")
    for client, names in summary["features_null_for_client"].items():
        found.append(f"feature(s) {', '.join(names)} are null on every row of client {client}")
    return found


def describe(summary: dict[str, Any]) -> str:
    """One line: the clients in the training set with their rows and labels."""
    parts = [f"{c} {v['rows']} rows / {v['positives']} churned" for c, v in summary["trained_on"].items()]
    return "clients in the training set: " + ("; ".join(parts) or "none")
