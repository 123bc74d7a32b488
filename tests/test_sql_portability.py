"""The dbt project's SQL runs the same on every engine: no double-quoted identifiers.

dbt-spark runs with `spark.sql.ansi.enabled=false` (forced by the adapter), where `"Client ID"` is
a string literal, not a column: every row then carries the text 'Client ID' and nothing fails
(issue 16: all of one client's customers quarantined as malformed ids, every test passing).
Identifiers that need quoting go through `adapter.quote(...)`. The scan reads the project's SQL as
written — SQL text, Jinja string literals (SQL fragments passed to macros) and the SQL held in
YAML (test expressions, unit-test inputs) — and names file:line of every offender.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SQL_ROOTS = (ROOT / "dbt_project", ROOT / "tests" / "data" / "shapes")
# an identifier in double quotes inside a Jinja string (a SQL fragment): regex pieces such as
# '"(?:[^"]|"")*"' or '"\\s*:' are not identifiers
FRAGMENT_IDENTIFIER = re.compile(r'"[A-Za-z_][A-Za-z0-9_ .-]*"')
# YAML keys whose string values are SQL run by the engine
SQL_KEYS = {"expression", "reference", "rows", "sql", "where", "condition"}


def _jinja_strings(text: str, start: int) -> Iterator[tuple[int, str]]:
    """(offset, content) of each string literal in the Jinja tag starting at `start`; stops at its end."""
    i, end_tags = start + 2, ("}}", "%}")
    while i < len(text) and text[i:i + 2] not in end_tags:
        if text[i] in "'\"":
            quote, j = text[i], i + 1
            while j < len(text) and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            yield i + 1, text[i + 1:j]
            i = j + 1
        else:
            i += 1


def double_quoted_identifiers(text: str) -> list[tuple[int, str]]:
    """(offset, snippet) of every double-quoted identifier in SQL-with-Jinja `text`."""
    found: list[tuple[int, str]] = []
    i, in_string = 0, False
    while i < len(text):
        two = text[i:i + 2]
        if two == "{#":
            i = text.find("#}", i) % (len(text) + 1) + 2
        elif two in ("{{", "{%"):
            for offset, content in _jinja_strings(text, i):
                found += [(offset + m.start(), m.group()) for m in FRAGMENT_IDENTIFIER.finditer(content)]
            close = "}}" if two == "{{" else "%}"
            # skip the tag, strings included (a '}}' inside a Jinja string does not close it)
            j, quote = i + 2, None
            while j < len(text) and (quote or text[j:j + 2] != close):
                if quote and text[j] == "\\":
                    j += 1
                elif text[j] in "'\"":
                    quote = None if quote == text[j] else (quote or text[j])
                j += 1
            i = j + 2
        elif in_string:
            in_string = text[i] != "'"
            i += 1
        elif text[i] == "'":
            in_string, i = True, i + 1
        elif two == "--":
            i = text.find("\n", i) % (len(text) + 1)
        elif two == "/*":
            i = text.find("*/", i) % (len(text) + 1) + 2
        elif text[i] == '"':
            close = text.find('"', i + 1)
            found.append((i, text[i:close + 1 if close > 0 else i + 20]))
            i = close + 1 if close > 0 else len(text)
        else:
            i += 1
    return found


def _yaml_sql(node: object, key: str = "") -> Iterator[str]:
    """Every string under a SQL-bearing key of a parsed YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _yaml_sql(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _yaml_sql(v, key)
    elif isinstance(node, str) and key in SQL_KEYS:
        yield node


def offenders(root: Path, base: Path = ROOT) -> list[str]:
    """'file:line: snippet' for every double-quoted identifier in the SQL and YAML under `root`."""
    found = []
    for path in sorted(root.rglob("*.sql")):
        text = path.read_text()
        for offset, snippet in double_quoted_identifiers(text):
            found.append(f"{path.relative_to(base)}:{text.count(chr(10), 0, offset) + 1}: {snippet}")
    for path in sorted(list(root.rglob("*.yml")) + list(root.rglob("*.yaml"))):
        text = path.read_text()
        # YAML re-flows block text, so the n-th offender with a snippet is on the n-th file line
        # holding it
        seen: dict[str, int] = {}
        for sql in _yaml_sql(yaml.safe_load(text)):
            for _, snippet in double_quoted_identifiers(sql):
                lines = [n for n, row in enumerate(text.splitlines(), 1) if snippet in row] or [0]
                line = lines[min(seen.get(snippet, 0), len(lines) - 1)]
                seen[snippet] = seen.get(snippet, 0) + 1
                found.append(f"{path.relative_to(base)}:{line}: {snippet}")
    return found


WINDOW = re.compile(r"\b(?:over|window\s+\w+\s+as)\s*\(", re.I)


def _strip_comments(text: str) -> str:
    """SQL and Jinja comments blanked (newlines kept, so offsets keep their line)."""
    blank = lambda m: re.sub(r"[^\n]", " ", m.group())  # noqa: E731
    return re.sub(r"\{#.*?#\}|--[^\n]*|/\*.*?\*/", blank, text, flags=re.S)


def _order_keys(clause: str) -> list[str]:
    """The keys after `order by` in a window clause, split at top-level commas."""
    match = re.search(r"\border\s+by\b", clause, re.I)
    if not match:
        return []
    keys, depth, current = [], 0, ""
    for ch in clause[match.end():]:
        depth += ch in "({[" and 1 or (-1 if ch in ")}]" else 0)
        if ch == "," and depth == 0:
            keys.append(current)
            current = ""
        else:
            current += ch
    return [k.strip() for k in keys + [current] if k.strip()]


def unordered_nulls(text: str) -> list[tuple[int, str]]:
    """(offset, key) of every window ORDER BY key without an explicit NULLS FIRST/LAST."""
    text = _strip_comments(text)
    found = []
    for match in WINDOW.finditer(text):
        depth, end = 1, match.end()
        while end < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        for key in _order_keys(text[match.end():end - 1]):
            if not re.search(r"\bnulls\s+(first|last)\s*$", key, re.I):
                found.append((match.start(), " ".join(key.split())))
    return found


@pytest.mark.parametrize("root", SQL_ROOTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_window_order_keys_say_where_nulls_go(root: Path) -> None:
    """DuckDB sorts NULLs last, Spark first (ascending): a dedup ranking over a nullable key picks
    another row on Spark, silently. Every window ORDER BY key says NULLS FIRST or NULLS LAST."""
    found = []
    for path in sorted(root.rglob("*.sql")):
        text = path.read_text()
        for offset, key in unordered_nulls(text):
            found.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, offset) + 1}: order by {key}")
    assert not found, "window ORDER BY keys without NULLS FIRST/LAST:\n  " + "\n  ".join(found)


def test_null_order_scanner() -> None:
    sql = ("select row_number() over (partition by a order by b, c desc nulls last) as r, "
           "sum(x) over w -- over (order by z)\nfrom t window w as (order by f(d, e) nulls first)")
    assert [key for _, key in unordered_nulls(sql)] == ["b"]


@pytest.mark.parametrize("root", SQL_ROOTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_double_quoted_identifiers(root: Path) -> None:
    """Every identifier that needs quoting goes through adapter.quote (Spark: a string literal)."""
    found = offenders(root)
    assert not found, (
        "double-quoted identifiers (a string literal on Spark with ANSI off; use "
        "{{ adapter.quote('...') }}):\n  " + "\n  ".join(found)
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ('select trim("Client ID") from t', ['"Client ID"']),
        ("select {{ matches('upper(trim(\"Client ID\"))', 'CR-[0-9]{5}') }}", ['"Client ID"']),
        ('select * from (values (1)) as t("raw_line")', ['"raw_line"']),
        # not identifiers: strings, comments, Jinja strings that are regexes or Jinja delimiters
        ("select '\"a\"' as x -- \"comment\"\n/* \"block\" */", []),
        ("{# \"doc\" #}select {{ matches(\"lower(trim(id))\", '\"(?:[^\"]|\"\")*\"') }}", []),
        ("select '{{ options.get('file', '') }}' as f, {{ adapter.quote('Client ID') }}", []),
    ],
)
def test_scanner(sql: str, expected: list[str]) -> None:
    """The scanner finds quoted identifiers in SQL and in Jinja SQL fragments, nothing else."""
    assert [snippet for _, snippet in double_quoted_identifiers(sql)] == expected


def test_scanner_names_file_and_line(tmp_path: Path) -> None:
    """An offender is reported as path:line, for .sql files and SQL inside YAML."""
    (tmp_path / "m.sql").write_text("select\n  1,\n  \"Order Ref\" as id\n")
    (tmp_path / "m.yml").write_text(
        "unit_tests:\n- given:\n  - rows: |\n      select 1 as x\n      from t(\"y\")\n")
    assert offenders(tmp_path, tmp_path) == ['m.sql:3: "Order Ref"', 'm.yml:5: "y"']
