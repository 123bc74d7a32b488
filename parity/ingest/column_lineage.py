"""Column-level lineage of the dbt project, derived from the SQL dbt compiled (never a second list).

dbt-core 1.11's manifest knows which models a model reads (`depends_on`), not which columns. This
module reads each model's compiled SQL (a run manifest's `compiled_code`, else the build's fresh
plan, which keeps it across partial builds) and asks sqlglot's lineage which upstream columns
an output column is computed from: a model's or seed's column where the SQL reads a relation,
and, in staging, the raw file's own field (a column the source documents) where the import CTE
that reads the raw file names it. A column the SQL computes from constants only has no parents;
a model without compiled SQL, or SQL sqlglot cannot resolve, is reported, never guessed.

Import: stdlib + sqlglot (a dependency of Feast; imported on first use).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DIALECT = "duckdb"
_LITERAL = re.compile(r"'((?:[^']|'')*)'")


@dataclass(frozen=True)
class Column:
    """One column of a dbt node (model, seed or source) by unique id."""

    node: str
    column: str


@dataclass
class _Model:
    expression: Any = None  # the qualified sqlglot expression
    scope: Any = None  # its scope tree (built once: lineage walks it per column)
    columns: tuple[str, ...] = ()
    problem: str | None = None


@dataclass
class ColumnLineage:
    """Lineage over one manifest (`sql` overrides: model name -> compiled SQL, e.g. the fresh plan's)."""

    manifest: Mapping[str, Any]
    sql: Mapping[str, str] = field(default_factory=dict)
    problems: dict[Column, str] = field(default_factory=dict)  # column -> why its lineage stops there

    def __post_init__(self) -> None:
        self._nodes = {**self.manifest.get("sources", {}), **self.manifest.get("nodes", {})}
        self._by_relation = {_relation_key(n.get("relation_name")): uid for uid, n in self._nodes.items()
                             if n.get("relation_name") and not uid.startswith("source.")}
        self._models: dict[str, _Model] = {}
        self._parents: dict[Column, tuple[Column, ...]] = {}
        self._lock = threading.Lock()  # one walk at a time: the caches and sqlglot trees are shared

    def node_id(self, model: str) -> str | None:
        """The unique id of the model named `model`."""
        return next((uid for uid, n in self._nodes.items()
                     if n.get("resource_type") == "model" and n.get("name") == model), None)

    def upstream(self, start: Column) -> dict[Column, tuple[Column, ...]]:
        """Every column `start` is computed from, transitively: column -> its direct parents."""
        out: dict[Column, tuple[Column, ...]] = {}
        todo = [start]
        with self._lock:
            while todo:
                col = todo.pop()
                if col in out:
                    continue
                out[col] = self.parents(col)
                todo.extend(out[col])
        return out

    def parents(self, col: Column) -> tuple[Column, ...]:
        """The columns `col` is directly computed from (sources and seeds have none)."""
        if col not in self._parents:
            self._parents[col] = tuple(self._parents_of(col))
        return self._parents[col]

    def _parents_of(self, col: Column) -> list[Column]:
        node = self._nodes.get(col.node, {})
        if node.get("resource_type") != "model":
            return []
        model = self._model(col.node)
        if model.problem is not None:
            self.problems[col] = model.problem
            return []
        if col.column not in model.columns:
            self.problems[col] = f"no column {col.column!r} in its compiled SQL"
            return []
        from sqlglot.lineage import lineage

        try:
            root = lineage(col.column, model.expression, {}, dialect=DIALECT, scope=model.scope,
                           trim_selects=False, copy=False)  # no copy of the whole model per column
        except Exception as err:  # sqlglot cannot follow this column: say so, never guess
            self.problems[col] = f"sqlglot could not trace {col.column!r}: {err}"
            return []
        return _dedupe(self._walk(root, self._raw_fields(col.node)))

    def _walk(self, root: Any, raw: Mapping[str, tuple[str, dict[str, str]]]) -> Iterable[Column]:
        """Depth first from an output column: stop at a raw field in the import CTE that reads a
        source, or at a leaf that reads a model, seed or source relation."""
        from sqlglot import exp

        stack = [root]
        while stack:
            node = stack.pop()
            name = node.name.rsplit(".", 1)[-1]
            if node is not root and any(_norm(name) in fields for _, fields in raw.values()):
                hit = self._only_from(node, raw)
                if hit and _norm(name) in raw[hit][1]:  # a file's field, read from that file alone
                    yield Column(hit, raw[hit][1][_norm(name)])
                    continue
            if node.downstream:
                stack.extend(reversed(node.downstream))
            elif isinstance(node.source, exp.Table):
                uid = self._relation_of(node.source, raw)
                if uid is not None:
                    yield Column(uid, name)

    def _only_from(self, node: Any, raw: Mapping[str, tuple[str, dict[str, str]]]) -> str | None:
        """The one source that every relation read below this lineage node is (None: several,
        a model or seed among them, or none: a constant)."""
        from sqlglot import exp

        found = {self._relation_of(leaf.source, raw) for leaf in node.walk()
                 if not leaf.downstream and isinstance(leaf.source, exp.Table)}
        return found.pop() if len(found) == 1 and next(iter(found)) in raw else None

    def _relation_of(self, table: Any, raw: Mapping[str, tuple[str, dict[str, str]]]) -> str | None:
        parts = tuple(p.lower() for p in (table.catalog, table.db, table.name))
        uid = self._by_relation.get(parts)
        if uid is None:  # a source read through a table function (read_csv(...)): its path
            text = table.sql(dialect=DIALECT)
            uid = next((s for s, (marker, _) in raw.items() if marker and marker in text), None)
        return uid

    def _raw_fields(self, uid: str) -> dict[str, tuple[str, dict[str, str]]]:
        """Sources a model reads: source id -> (the text that marks its relation, its fields by
        normalised name): the columns it documents and the fields its `meta.required_fields`
        requires of the file (a CSV header's or a JSON record's keys, which the pre-flight checks)."""
        out = {}
        for parent in (self._nodes[uid].get("depends_on") or {}).get("nodes", []):
            if parent.startswith("source."):
                source = self._nodes.get(parent, {})
                relation = str(source.get("relation_name") or "")
                literal = _LITERAL.search(relation)
                meta = source.get("meta") or (source.get("config") or {}).get("meta") or {}
                fields = [*(source.get("columns") or {}), *(meta.get("required_fields") or [])]
                out[parent] = (literal.group(1) if literal else relation, {_norm(f): f for f in fields})
        return out

    def _model(self, uid: str) -> _Model:
        """The model's compiled SQL, qualified against its parents' columns (computed first)."""
        if uid in self._models:
            return self._models[uid]
        self._models[uid] = _Model(problem="circular reference")  # dbt forbids cycles; a guard
        node = self._nodes[uid]
        sql = node.get("compiled_code") or self.sql.get(node.get("name", ""))
        if not sql:
            self._models[uid] = _Model(problem="no compiled SQL in the build's artefacts (run a full `make build`)")
            return self._models[uid]
        schema: dict[str, Any] = {}
        for parent in (node.get("depends_on") or {}).get("nodes", []):
            columns = self._columns_of(parent)
            key = _relation_key(self._nodes.get(parent, {}).get("relation_name"))
            if columns and key and len(key) == 3:
                schema.setdefault(key[0], {}).setdefault(key[1], {})[key[2]] = {c: "VARCHAR" for c in columns}
        try:
            import sqlglot
            from sqlglot.optimizer.qualify import qualify
            from sqlglot.optimizer.scope import build_scope

            expression = qualify(sqlglot.parse_one(sql, dialect=DIALECT), dialect=DIALECT, schema=schema,
                                 validate_qualify_columns=False, identify=False)
            self._models[uid] = _Model(expression, build_scope(expression), tuple(s.alias_or_name for s in expression.selects))
        except Exception as err:
            self._models[uid] = _Model(problem=f"sqlglot could not read its compiled SQL: {err}")
        return self._models[uid]

    def _columns_of(self, uid: str) -> tuple[str, ...]:
        node = self._nodes.get(uid, {})
        if node.get("resource_type") == "model":
            return self._model(uid).columns
        return tuple(node.get("columns") or {})  # seeds and sources: their documented columns


def _relation_key(relation: str | None) -> tuple[str, ...] | None:
    """`"db"."schema"."table"` -> ('db', 'schema', 'table'), lower case (None if not a plain name)."""
    if not relation or "(" in relation:
        return None
    parts = tuple(p.strip().strip('"').lower() for p in relation.split("."))
    return parts if all(parts) else None


def _norm(name: str) -> str:
    """A column name as DuckDB compares it (case-insensitive; sqlglot may keep the quotes)."""
    return name.strip().strip('"').lower()


def _dedupe(columns: Iterable[Column]) -> list[Column]:
    return list(dict.fromkeys(columns))
