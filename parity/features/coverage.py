"""Which entities the online store holds against which it should hold, per client, with the fix.

Should hold: per feature view, every entity with a row in its client's materialization window
(`parity.features.materialization.expected_keys`, from the current mart). Missing online: a client
added, back-filled or corrected and not materialized since. Online only: entities the mart no
longer has (a removed client, an erased customer) still served. Both name their clients, with
counts, and the command that fixes them: `make materialize` loads what changed and deletes what
is gone. Entities not in the mart are attributed by the platform key's '<client>:' prefix.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parity.features.materialization import (
    client_expr,
    connect,
    expected_keys,
    online_keys,
    quote,
    read_marker,
    source_parts,
    source_sql,
)

FIX_COMMAND = "make materialize"  # python -m parity materialize


@dataclass
class ViewCoverage:
    """Online coverage of one feature view, by client."""

    view: str
    missing: dict[str, int] = field(default_factory=dict)  # client -> entities not online
    extra: dict[str, int] = field(default_factory=dict)  # client -> entities online, not in the mart
    changed: list[str] = field(default_factory=list)  # clients whose rows changed since materialized
    listed: bool = True  # False: the online store cannot list its entities (only SQLite can)

    def problems(self) -> list[str]:
        """One line per problem, naming the clients, their counts and the command that fixes it."""
        lines = []
        hint = f" (rows new or changed since the last materialization: {', '.join(self.changed)})" if self.changed else ""
        if self.missing:
            lines.append(f"{self.view}: {sum(self.missing.values())} entities in the mart are missing online — "
                         f"{_counts(self.missing)}{hint}: run `{FIX_COMMAND}`")
        if self.extra:
            lines.append(f"{self.view}: {sum(self.extra.values())} entities online are in no current mart row — "
                         f"{_counts(self.extra)} (removed from the mart, still served): run `{FIX_COMMAND}` "
                         "(it deletes them)")
        if self.changed and not self.missing and not self.extra:
            lines.append(f"{self.view}: rows of {', '.join(self.changed)} changed since the last materialization: "
                         f"run `{FIX_COMMAND}`")
        return lines


def _counts(by_client: dict[str, int]) -> str:
    return ", ".join(f"{client}: {n}" for client, n in sorted(by_client.items(), key=lambda kv: (-kv[1], kv[0])))


def client_of_key(key: Any) -> str:
    """The client of a platform key '<client>:<id>' that is no longer in the mart ('?' if not that shape)."""
    text = str(key)
    return text.split(":", 1)[0] if ":" in text else "?"


def entity_clients(view: Any) -> dict[tuple[Any, ...], str]:
    """Every entity key of the view's source with its client (part name)."""
    con = connect()
    keys = ", ".join(quote(k) for k in view.join_keys)
    rows = con.execute(f"select distinct {keys}, {client_expr(view, con)} from {source_sql(view)} src").fetchall()
    return {tuple(row[:-1]): row[-1] for row in rows}


def view_coverage(store: Any, view: Any, feast_dir: Path) -> ViewCoverage:
    """Coverage of one view: entities missing online / online only, by client."""
    parts = source_parts(view)
    recorded = read_marker(feast_dir).get("views", {}).get(view.name, {}).get("parts", {})
    changed = sorted(name for name, part in parts.items() if recorded.get(name) != asdict(part))
    changed += sorted(f"{name} (removed)" for name in set(recorded) - set(parts))
    result = ViewCoverage(view.name, changed=changed if recorded else [])
    online = online_keys(store, view)
    if online is None:
        result.listed = False
        return result
    expected = expected_keys(view, parts)
    owners = entity_clients(view)
    result.missing = dict(Counter(owners.get(key, "?") for key in expected if key not in online))
    result.extra = dict(Counter(owners.get(key) or client_of_key(key[0]) for key in online if key not in expected))
    return result


def check_coverage(store: Any, feast_dir: Path) -> list[ViewCoverage]:
    """Coverage of every batch feature view."""
    return [view_coverage(store, view, feast_dir) for view in store.list_feature_views()]
