"""parity.report: the shared tables, plot encoding and page templates of the HTML reports."""

from __future__ import annotations

import base64

import jinja2
import numpy as np
import pandas as pd
import pytest

from parity import report


def test_tables_format_cells_escape_text_and_colour_rows_by_status():
    frame = pd.DataFrame(
        {
            "feature": ["<b>spend</b>", "visits"],
            "psi": [0.12345, 0.00001],
            "rows": [10, 20],
            "at": [pd.Timestamp("2026-05-01 12:34:56", tz="UTC"), pd.NaT],
            "p": [np.nan, None],
            "status": ["drift", "ok"],
        }
    )
    html = str(report.table(frame, status_column="status"))
    assert "&lt;b&gt;spend&lt;/b&gt;" in html and "<b>spend" not in html
    assert "<td>0.123</td>" in html and "<td>1.0e-05</td>" in html and "<td>10</td>" in html
    assert "<td>2026-05-01 12:34</td>" in html and html.count(f"<td>{report.MISSING}</td>") == 3
    assert "<tr class='bad'>" in html and "<tr class='good'>" in html
    assert "class=" not in str(report.table(frame[["feature"]])).split("</tr>", 1)[1]
    assert "nothing to show" in report.table(pd.DataFrame())
    indexed = str(report.table(pd.DataFrame({"v": [1.5]}, index=pd.Index(["PR-AUC"], name="metric")), index=True))
    assert "<th>metric</th><th>v</th>" in indexed and "<td>PR-AUC</td><td>1.500</td>" in indexed


def test_plots_are_pngs_saved_or_embedded(tmp_path):
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    assert report.save_png(fig, tmp_path / "line.png") == "line.png"
    assert (tmp_path / "line.png").read_bytes().startswith(b"\x89PNG")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    uri = report.png_data_uri(fig)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]).startswith(b"\x89PNG")


def test_the_shared_base_inlines_the_stylesheet_and_escapes_values():
    html = report.render("training", "base.html", {"title": "<t>", "heading": "H & co"})
    assert "<title>&lt;t&gt;</title>" in html and "<h1>H &amp; co</h1>" in html
    assert "table.t" in html  # the shared stylesheet is inlined


def test_a_missing_template_value_is_an_error_not_an_empty_cell():
    with pytest.raises(jinja2.UndefinedError):
        report.render("training", "base.html", {"title": "t"})
