"""The import direction documented in the package docstrings and the README holds (read with ast).

Every import counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("parity", "training", "serving", "batch", "monitoring", "bench", "feature_repo")
SUBPACKAGES = ("parity.ingest", "parity.features", "parity.models", "parity.governance")
# parity's entry points (python -m parity, make docs) wire the sub-packages together
PARITY_ENTRY_POINTS = ("parity.__main__", "parity.docs")

# Which top-level packages each one may import (besides itself). Data flows one way: training and
# serving never import each other; serving is imported by nobody; parity imports nothing above it.
ALLOWED_TOP = {
    "parity": set(),
    "feature_repo": {"parity"},
    "training": {"parity"},
    "serving": {"parity"},
    "batch": {"parity"},
    "monitoring": {"parity", "training"},  # retrain runs the training pipeline
    "bench": {"parity", "training"},
}
# Inside parity: which sub-packages each one may import (the parity utilities are always allowed).
ALLOWED_SUB = {
    "parity.ingest": set(),
    "parity.features": {"parity.ingest"},
    "parity.models": {"parity.features"},
    # trace/forget/retention read and rewrite every store, so they sit above all three
    "parity.governance": {"parity.ingest", "parity.features", "parity.models"},
    "utilities": set(),  # config, cli, jsonable, yaml_config, reports: import no sub-package
}


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of a file under `root` (a package's __init__ is the package)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import in a file, relative imports resolved."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from parity import models` imports parity.models
                yield node.lineno, f"{base}.{alias.name}"


def _area(module: str) -> str:
    """The layer a parity module belongs to: a sub-package, an entry point or the utilities."""
    for sub in SUBPACKAGES:
        if module == sub or module.startswith(sub + "."):
            return sub
    return module if module in PARITY_ENTRY_POINTS else "utilities"


def violations(root: Path, packages: tuple[str, ...] = TOP) -> list[str]:
    """Every import that breaks ALLOWED_TOP or ALLOWED_SUB, as 'file:line: a imports b'."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            source = module_name(path, root)
            for line, target in imported_modules(path, root):
                top = target.split(".")[0]
                where = f"{path.relative_to(root)}:{line}: {source} imports {target}"
                if top in ALLOWED_TOP and top != package and top not in ALLOWED_TOP[package]:
                    found.append(where)
                elif top == "parity" and package == "parity" and target != "parity":
                    src, dst = _area(source), _area(target)
                    if src in PARITY_ENTRY_POINTS or src == dst or dst == "utilities":
                        continue
                    if dst in PARITY_ENTRY_POINTS or dst not in ALLOWED_SUB[src]:
                        found.append(where)
    return found


def test_the_import_direction_holds():
    assert violations(ROOT) == []


def test_every_package_says_what_it_owns_and_may_import():
    for sub in SUBPACKAGES:
        doc = ast.get_docstring(ast.parse((ROOT / sub.replace(".", "/") / "__init__.py").read_text()))
        assert doc and "May import" in doc, f"{sub}/__init__.py needs a docstring with 'May import'"


@pytest.mark.parametrize(
    ("file", "code", "expected"),
    [
        ("training/x.py", "from serving.app import create_app\n", "training.x imports serving.app.create_app"),
        ("serving/x.py", "def f():\n    import training.pipeline\n", "serving.x imports training.pipeline"),
        ("parity/config.py", "from parity.features import online\n", "parity.config imports parity.features.online"),
        ("parity/ingest/x.py", "from ..models import registry\n", "parity.ingest.x imports parity.models.registry"),
        ("parity/features/x.py", "from parity.models.loaded import load_version\n", "imports parity.models.loaded"),
        ("parity/models/x.py", "import parity.ingest.warehouse\n", "parity.models.x imports parity.ingest.warehouse"),
        ("parity/models/x.py", "from batch import score\n", "parity.models.x imports batch.score"),
    ],
)
def test_a_back_edge_is_reported_with_file_and_line(tmp_path, file, code, expected):
    for package in TOP:
        (tmp_path / package).mkdir()
    for sub in SUBPACKAGES:
        (tmp_path / sub.replace(".", "/")).mkdir()
    (tmp_path / file).write_text(code)
    allowed = "from parity.features import retrieval\nfrom parity.config import Settings\n"
    (tmp_path / "parity/models/ok.py").write_text(allowed)
    (tmp_path / "monitoring/ok.py").write_text("from training.pipeline import run\n")
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(file) and expected in found[0], found


# The one warehouse interface (issue 16): only parity.ingest.warehouse opens a build's warehouse
# (DuckDB file or Spark Parquet); parity.config only names the published file's path.
# parity/ingest/spark_metastore.py is the interface's copy of a Spark build (a partial build's start)
WAREHOUSE_OWNERS = {"parity/ingest/warehouse.py", "parity/config.py", "parity/ingest/spark_metastore.py"}
WAREHOUSE_MARKERS = ("warehouse.duckdb", "warehouse_path", "WAREHOUSE_FILE", "spark/warehouse",
                     "SPARK_WAREHOUSE")


def warehouse_openers(root: Path) -> list[str]:
    """'file:line: text' of every line outside the warehouse interface that names a warehouse."""
    found = []
    for package in TOP:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in WAREHOUSE_OWNERS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if any(marker in line for marker in WAREHOUSE_MARKERS):
                    found.append(f"{rel}:{number}: {line.strip()}")
    return found


def test_only_the_warehouse_interface_opens_the_warehouse():
    found = warehouse_openers(ROOT)
    assert not found, ("read the warehouse through parity.ingest.warehouse (connect/query/exists), "
                       "which both profiles implement:\n  " + "\n  ".join(found))


def test_a_direct_warehouse_read_is_reported(tmp_path):
    for package in TOP:
        (tmp_path / package).mkdir()
    (tmp_path / "batch" / "x.py").write_text(
        "import duckdb\n\ncon = duckdb.connect(str(settings.warehouse_path), read_only=True)\n")
    assert warehouse_openers(tmp_path) == [
        "batch/x.py:3: con = duckdb.connect(str(settings.warehouse_path), read_only=True)"]
