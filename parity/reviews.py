"""Human review records: decisions on the customers a model flags, and the console's action log.

The console (serving/console) writes them; batch exports and monitoring may read them (this is a
`parity` utility so they can, without importing serving). One SQLite file,
`<Settings.console_dir>/console.sqlite`, append-only by construction: this module only ever INSERTs, so a
changed mind is a new decision (the newest per customer and batch counts) and the history of who
decided what, when, on which model version, is kept whole. Rows leave only through governance:
retention (`make retention`, older than the configured period) and erasure on request
(`make forget`), both in parity.governance. WAL journal, synchronous=FULL: a
decision the reviewer saw confirmed survives a crash.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

log = logging.getLogger("parity.reviews")
FILE = "console.sqlite"
ACTIONS = ("approve", "override", "model_wrong")
# why a reviewer does not act on a flag; "other" needs the free text
OVERRIDE_REASONS = {
    "already_contacted": "customer already contacted",
    "account_situation": "known account situation (e.g. contract, complaint in progress)",
    "data_wrong": "the data shown looks wrong",
    "not_worth_it": "offer not worth it for this customer",
    "other": "other (explain in the note)",
}
SCHEMA = """
create table if not exists review_decisions (
    id integer primary key autoincrement,
    decided_at text not null,
    who text not null,
    key_name text not null,
    customer_id text not null,
    client_id text not null,
    batch_as_of text not null,
    model_version text not null,
    score real,
    action text not null check (action in ('approve', 'override', 'model_wrong')),
    reason text,
    note text
);
create index if not exists review_decisions_batch on review_decisions (batch_as_of, customer_id);
create table if not exists console_actions (
    id integer primary key autoincrement,
    at text not null,
    who text not null,
    action text not null,
    detail text not null
);
"""


class DecisionError(ValueError):
    """A review decision was refused (the message names the field)."""


@dataclass(frozen=True)
class Decision:
    """One reviewer's decision on one flagged customer of one batch."""

    customer_id: str
    client_id: str
    batch_as_of: str
    model_version: str
    score: float | None
    action: str
    reason: str | None
    note: str | None


def validate(decision: Decision) -> Decision:
    """The decision with a clean note, or DecisionError naming what is wrong."""
    if decision.action not in ACTIONS:
        raise DecisionError(f"action must be one of {', '.join(ACTIONS)}; got {decision.action!r}")
    note = " ".join((decision.note or "").split())[:500] or None
    reason = decision.reason or None
    if decision.action == "override":
        if reason not in OVERRIDE_REASONS:
            raise DecisionError(f"an override needs a reason from the list; got {reason!r}")
        if reason == "other" and not note:
            raise DecisionError("reason 'other' needs a note saying why")
    elif reason is not None and reason not in OVERRIDE_REASONS:
        raise DecisionError(f"unknown reason {reason!r}")
    if decision.action == "model_wrong" and not note:
        raise DecisionError("'model wrong' needs a note saying what the model missed")
    return Decision(**{**asdict(decision), "note": note, "reason": reason})


@contextmanager
def connect(folder: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the console's database (created on first use), committed on success."""
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / FILE, timeout=10)
    try:
        con.execute("pragma journal_mode=wal")
        con.execute("pragma synchronous=full")
        con.executescript(SCHEMA)
        yield con
        con.commit()
    finally:
        con.close()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_decision(folder: Path, who: str, key_name: str, decision: Decision) -> None:
    """Append a (validated) decision."""
    d = validate(decision)
    with connect(folder) as con:
        con.execute(
            "insert into review_decisions (decided_at, who, key_name, customer_id, client_id, batch_as_of, "
            "model_version, score, action, reason, note) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_now(), who, key_name, d.customer_id, d.client_id, d.batch_as_of, d.model_version, d.score,
             d.action, d.reason, d.note))


def decisions(folder: Path, batch_as_of: str | None = None) -> pd.DataFrame:
    """Every decision (optionally of one batch), oldest first; `is_latest` marks the one that counts."""
    if not (folder / FILE).exists():
        return pd.DataFrame(columns=["id", "decided_at", "who", "key_name", "customer_id", "client_id",
                                     "batch_as_of", "model_version", "score", "action", "reason", "note",
                                     "is_latest"])
    where, params = ("where batch_as_of = ?", [batch_as_of]) if batch_as_of else ("", [])
    with connect(folder) as con:
        frame = pd.read_sql_query(f"select * from review_decisions {where} order by id", con, params=params)
    newest = frame.groupby(["batch_as_of", "customer_id"])["id"].transform("max")
    frame["is_latest"] = frame["id"] == newest
    return frame


def record_action(folder: Path, who: str, action: str, /, **detail: object) -> None:
    """Log a console action (who, what, with which parameters; never a key) to the log and the table."""
    text = json.dumps(detail, default=str, sort_keys=True)
    log.info("console %s by %s: %s", action, who, text)
    try:
        with connect(folder) as con:
            con.execute("insert into console_actions (at, who, action, detail) values (?, ?, ?, ?)",
                        (_now(), who, action, text))
    except (OSError, sqlite3.Error) as err:  # the action itself already happened: say so loudly
        log.error("console action %s by %s not recorded in %s: %s", action, who, folder, err)


def actions(folder: Path, limit: int = 100) -> pd.DataFrame:
    """The newest console actions first."""
    if not (folder / FILE).exists():
        return pd.DataFrame(columns=["id", "at", "who", "action", "detail"])
    with connect(folder) as con:
        return pd.read_sql_query("select * from console_actions order by id desc limit ?", con, params=[limit])


def override_rates(decided: pd.DataFrame, by: str = "client_id") -> pd.DataFrame:
    """Per group (and overall, `all`): decisions that count (the newest per customer and batch),
    approvals, overrides, 'model wrong', the override rate (overrides and 'model wrong' over decisions)."""
    columns = [by, "decisions", "approved", "overridden", "model_wrong", "override_rate"]
    latest = decided[decided["is_latest"]] if len(decided) else decided
    if not len(latest):
        return pd.DataFrame(columns=columns)
    counts = pd.crosstab(latest[by].fillna("none"), latest["action"])
    for action in ACTIONS:
        if action not in counts.columns:
            counts[action] = 0
    counts.loc["all"] = counts.sum()
    out = pd.DataFrame({
        by: counts.index, "decisions": counts[list(ACTIONS)].sum(axis=1).to_numpy(),
        "approved": counts["approve"].to_numpy(), "overridden": counts["override"].to_numpy(),
        "model_wrong": counts["model_wrong"].to_numpy()})
    out["override_rate"] = (out["overridden"] + out["model_wrong"]) / out["decisions"]
    return out[columns].reset_index(drop=True)


def latest_per_customer(decided: pd.DataFrame, until_batch: str) -> pd.DataFrame:
    """Each customer's decision that counts as of a batch: the newest decision on the newest
    batch at or before `until_batch` (batch stamps, e.g. 20261129T000001Z, sort as times).

    A decision on a later batch is not applied to an earlier one: an export never shows a
    decision that was taken on scores it does not contain."""
    columns = ["customer_id", "action", "reason", "decided_at", "batch_as_of", "model_version"]
    latest = decided[decided["is_latest"] & (decided["batch_as_of"] <= until_batch)] if len(decided) else decided
    if not len(latest):
        return pd.DataFrame(columns=columns)
    newest = latest.sort_values(["batch_as_of", "id"], kind="stable").groupby("customer_id").tail(1)
    return newest[columns].reset_index(drop=True)
