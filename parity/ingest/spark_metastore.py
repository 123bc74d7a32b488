"""A Spark build copied into a new build folder: the start of a partial build (`make score`).

Part of the one warehouse interface (parity.ingest.warehouse; tests/test_structure.py).

A DuckDB build is one file whose views name the marts' paths (parity.ingest.warehouse.copy_duckdb
re-points them). A Spark build is a Derby metastore plus Parquet folders, and the metastore names
every database, table and external mart by its absolute path under the build folder it was
written in. A copy that kept those paths would make the partial build drop and write the tables
of the build it started from — the published one. So the copy (`copy_spark`) hard-links the
Parquet files (dbt replaces a table's files, never writes into them) and copies the metastore,
then rewrites every path under the old folder to the new one with Derby's own `ij` tool (the
jars pyspark ships; one short JVM, before dbt starts its own): `SDS.LOCATION` (tables, external
marts), `DBS.DB_LOCATION_URI` (where new tables of a schema go) and the data source tables'
`path` in `SERDE_PARAMS`. It then checks that no path under the old folder is left anywhere it
looked and refuses the copy otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from parity.ingest.warehouse import SPARK_WAREHOUSE

METASTORE = SPARK_WAREHOUSE.parent / "metastore_db"
# (table, column, row filter) of the Hive metastore schema holding paths; the filter keeps LOCATE
# off columns that are not text paths
_PATH_COLUMNS = (("SDS", "LOCATION", ""), ("DBS", "DB_LOCATION_URI", ""),
                 ("SERDE_PARAMS", "PARAM_VALUE", "PARAM_KEY = 'path'"))
_CHECK_COLUMNS = (*_PATH_COLUMNS, ("TABLE_PARAMS", "PARAM_VALUE", ""))
_LEFT = "PARITY_PATHS_LEFT"


class MetastoreCopyError(RuntimeError):
    """The metastore could not be copied with its paths rewritten; the message says why."""


def link_tree(source: Path, target: Path) -> None:
    """`target` as a copy of `source` whose files are hard links (copies across file systems)."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def derby_classpath() -> str:
    """The Derby jars pyspark ships (engine, tools, shared)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise MetastoreCopyError("pyspark is not installed: a Spark build's metastore cannot be copied")
    jars = Path(next(iter(spec.submodule_search_locations))) / "jars"
    found = [sorted(jars.glob(f"{name}-[0-9]*.jar")) for name in ("derby", "derbytools", "derbyshared")]
    if not all(found):
        raise MetastoreCopyError(f"the Derby jars (derby, derbytools, derbyshared) are not all in {jars}")
    return os.pathsep.join(str(group[-1]) for group in found)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def rewrite_script(database: Path, old: str, new: str) -> str:
    """The ij script: replace `old` by `new` in every path column, then count what is left."""
    o, n = _quote(old), _quote(new)
    lines = [f"connect 'jdbc:derby:{_quote(str(database))}';", "autocommit off;"]
    for table, column, only in _PATH_COLUMNS:
        where = f"LOCATE('{o}', {column}) > 0" + (f" AND {only}" if only else "")
        lines.append(f"UPDATE APP.{table} SET {column} = SUBSTR({column}, 1, LOCATE('{o}', {column}) - 1) || '{n}' "
                     f"|| SUBSTR({column}, LOCATE('{o}', {column}) + {len(old)}) WHERE {where};")
    lines.append("commit;")
    counts = " + ".join(f"(SELECT COUNT(*) FROM APP.{table} WHERE LOCATE('{o}', {column}) > 0)"
                        for table, column, _ in _CHECK_COLUMNS)
    lines.append(f"VALUES ('{_LEFT}', {counts});")
    lines.append("connect 'jdbc:derby:;shutdown=true';")
    return "\n".join(lines) + "\n"


def copy_spark(base: Path, folder: Path, old_dir: str) -> None:
    """Copy the Spark build `base` (written at `old_dir`) into `folder`: warehouse files hard-linked,
    metastore copied with every path under `old_dir` rewritten to `folder`."""
    if (folder / SPARK_WAREHOUSE).exists() or (folder / METASTORE).exists():
        raise MetastoreCopyError(f"{folder} already holds a Spark warehouse")
    link_tree(base / SPARK_WAREHOUSE, folder / SPARK_WAREHOUSE)
    # Derby's lock files name the process that held the database: not part of its data
    shutil.copytree(base / METASTORE, folder / METASTORE, ignore=shutil.ignore_patterns("*.lck"))
    script = folder / "spark" / "relocate.sql"
    script.write_text(rewrite_script(folder / METASTORE, old_dir.rstrip("/") + "/", str(folder).rstrip("/") + "/"))
    java = shutil.which("java")
    if java is None:
        raise MetastoreCopyError("java is not on PATH: the Spark profile needs Java 17")
    proc = subprocess.run([java, "-cp", derby_classpath(), f"-Dderby.system.home={folder / 'spark'}",
                           "org.apache.derby.tools.ij", str(script)], capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    # the result row "PARITY_PATHS_LEFT|<n>" (ij also echoes the statement, which names it too)
    left = next((line.split("|", 1)[1].strip() for line in output.splitlines() if line.startswith(_LEFT + "|")), None)
    # ij reports the final shutdown as ERROR XJ015 (Derby's normal "system shut down")
    errors = [line for line in output.splitlines() if line.startswith("ERROR") and "XJ015" not in line]
    if proc.returncode != 0 or errors or left != "0":
        raise MetastoreCopyError(f"the copied metastore {folder / METASTORE} still names {old_dir} or could not "
                                 f"be rewritten (Derby ij, exit {proc.returncode}):\n" + "\n".join(output.splitlines()[-15:]))
