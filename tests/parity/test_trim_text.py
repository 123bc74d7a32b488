"""The blanks a staged value loses at either end are the same on every engine and in Python:
DuckDB's trim() (the embedded default), the `trim_text` macro's Spark version
(dbt_project/macros/engine.sql; Spark's own trim() strips U+0020 only) and
parity.customer_keys. Checked here against DuckDB over every code point; on Spark by
tests/scale/test_trim_on_spark.py. And no staging SQL calls the engine's trim() directly."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from parity.config import PROJECT_ROOT
from parity.customer_keys import strip_blanks

ENGINE_MACROS = PROJECT_ROOT / "dbt_project" / "macros" / "engine.sql"


def spark_blank_set() -> str:
    """The characters the Spark version of trim_text strips (its literal, \\uXXXX unescaped)."""
    found = re.search(r"{% macro unicode_space_separators\(\) %}(.*?){% endmacro %}", ENGINE_MACROS.read_text())
    assert found, "unicode_space_separators() not found in macros/engine.sql"
    literal = found.group(1)
    assert re.fullmatch(r"(\\u[0-9a-f]{4})+", literal), literal  # escapes only: Spark unescapes them
    return literal.encode().decode("unicode_escape")


def duckdb_blank_set() -> str:
    """Every code point DuckDB's trim(), ltrim() and rtrim() strip, in order."""
    con = duckdb.connect()
    stripped = {}
    for side, text in (("trim", "chr(c) || 'x' || chr(c)"), ("ltrim", "chr(c) || 'x'"), ("rtrim", "'x' || chr(c)")):
        stripped[side] = [c for (c,) in con.execute(
            f"select c from (select cast(range as integer) as c from range(1, 1114112)) "
            f"where (c < 55296 or c > 57343) and length({side}({text})) = 1 order by c").fetchall()]
    assert stripped["trim"] == stripped["ltrim"] == stripped["rtrim"], stripped
    return "".join(chr(c) for c in stripped["trim"])


def test_spark_s_trim_set_and_python_s_are_exactly_what_duckdb_strips():
    duck = duckdb_blank_set()
    assert len(duck) == 17 and " " in duck and "\u00a0" in duck and "\t" not in duck  # the Zs category
    assert spark_blank_set() == duck
    assert strip_blanks(duck + "x" + duck[::-1]) == "x"
    assert all(strip_blanks(f"{chr(c)}x") != "x" for c in range(0x3001) if chr(c) not in duck)


# the engine's own trim(), ltrim() or rtrim() of one argument (trim(x, chars) names its set)
_BARE_TRIM = re.compile(r"(?<![A-Za-z_.])[lr]?trim\((?:[^()]|\([^()]*\))*\)", re.IGNORECASE)


def test_every_trim_in_the_dbt_project_goes_through_trim_text():
    """A bare trim() would strip only U+0020 on Spark: every call site uses trim_text."""
    roots = [PROJECT_ROOT / "dbt_project", PROJECT_ROOT / "tests" / "data" / "shapes"]
    bare = []
    for path in sorted(p for root in roots for p in root.rglob("*.sql") if "target" not in p.parts):
        # Jinja comments blanked (their line breaks kept, so numbers stay right)
        text = re.sub(r"{#.*?#}", lambda m: "\n" * m.group(0).count("\n"), path.read_text(), flags=re.DOTALL)
        for number, line in enumerate(text.splitlines(), 1):
            if path == ENGINE_MACROS and "trim_text" in line:
                continue  # the macro itself
            if "spark__whitespace_field" in line:
                continue  # Spark's stand-in for DuckDB's trim(line, ' \t'): a field splitter, not a blank trim
            for call in _BARE_TRIM.findall(line):
                if not re.search(r",\s*'[^']*'\s*\)$", call):  # two arguments: an explicit set
                    bare.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {call}")
    assert not bare, "use {{ trim_text(...) }} (macros/engine.sql):\n" + "\n".join(bare)


def test_the_duckdb_version_is_duckdb_s_own_trim():
    """trim_text on DuckDB compiles to trim/ltrim/rtrim: DuckDB builds run the very SQL they ran."""
    text = Path(ENGINE_MACROS).read_text()
    assert ("{% macro default__trim_text(expr, side='both') %}{{ {'both': 'trim', 'leading': 'ltrim', "
            "'trailing': 'rtrim'}[side] }}({{ expr }}){% endmacro %}") in text
