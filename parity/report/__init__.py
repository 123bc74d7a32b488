"""HTML reports: one look and one way to draw plots, format tables and render pages.

Pages are Jinja2 templates shipped as package files: the shared ``base.html`` (with the one
stylesheet, ``report.css``) and macros live in ``parity/report/templates``; each package keeps its
own page in its ``templates`` folder (training/templates, monitoring/templates) and extends the
base. Used by the training report and the monitoring report.

May import: nothing else of ``parity`` (a utility); matplotlib is imported on first plot.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup, escape

MISSING = "–"
# row status -> CSS class (report.css colours them); other values leave the row plain
STATUS_CLASSES = {"drift": "bad", "alert": "bad", "stale": "bad", "warn": "warn", "ok": "good",
                  "skipped": "muted"}


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png_bytes(fig: Any, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    # no Software tag: the same figure gives the same bytes whatever the matplotlib build
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    pyplot().close(fig)
    return buffer.getvalue()


def save_png(fig: Any, path: Path, dpi: int = 110) -> str:
    """Write the figure as a PNG file next to the page; returns the file name to link."""
    path.write_bytes(_png_bytes(fig, dpi))
    return path.name


def png_data_uri(fig: Any, dpi: int = 90) -> str:
    """The figure as a data: URI, for a page that must stand alone."""
    return "data:image/png;base64," + base64.b64encode(_png_bytes(fig, dpi)).decode()


def cell(value: Any, digits: int = 3) -> str:
    """One table cell as text: floats to `digits` places (tiny ones in e-notation), times to the
    minute, missing values as a dash."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return MISSING
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def table(
    frame: pd.DataFrame | None,
    *,
    index: bool = False,
    status_column: str | None = None,
    digits: int = 3,
    empty: str = "nothing to show",
) -> Markup:
    """An HTML table of `frame` (escaped); rows coloured by `status_column` when given."""
    if frame is None or frame.empty:
        return Markup("<p><em>{}</em></p>").format(empty)
    shown = frame.reset_index() if index else frame
    if index and frame.index.name is None:
        shown = shown.rename(columns={shown.columns[0]: ""})
    head = "".join(f"<th>{escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for values in shown.itertuples(index=False):
        status = dict(zip(shown.columns, values)).get(status_column) if status_column else None
        css = STATUS_CLASSES.get(str(status))
        opening = f"<tr class='{css}'>" if css else "<tr>"
        rows.append(opening + "".join(f"<td>{escape(cell(v, digits))}</td>" for v in values) + "</tr>")
    return Markup(f"<table class='t'><tr>{head}</tr>{''.join(rows)}</table>")


@cache
def _environment(package: str) -> jinja2.Environment:
    loader = jinja2.ChoiceLoader(
        [jinja2.PackageLoader(package, "templates"), jinja2.PackageLoader("parity.report", "templates")]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,  # a missing value is an error, not an empty cell
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = cell
    env.filters["table"] = table
    return env


def render(package: str, template: str, context: Mapping[str, Any]) -> str:
    """Render `template` from `package`'s templates folder (falling back to the shared ones)."""
    return _environment(package).get_template(template).render(**context)
