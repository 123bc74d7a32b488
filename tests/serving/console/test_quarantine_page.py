"""The data page's quarantine sample after retention blanked old record texts."""

from __future__ import annotations

import duckdb

from parity.config import load_settings


def test_a_blanked_quarantine_sample_is_shown_as_not_kept(tmp_path):
    """Retention blanks old samples (README "Privacy and governance"): the quarantine page says
    "no sample kept" for them, not the text "None"; kept samples are shown as before."""
    import os

    from serving.console import builds as console_builds
    from serving.console.routes import templates

    settings = load_settings(tmp_path)
    folder = settings.builds_dir / "b1"
    folder.mkdir(parents=True)
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        con.execute("create schema quarantine")
        con.execute("create table quarantine.quarantine_acme as select * from (values "
                    "('transactions', 'zero_amount', '/raw/acme/t.csv', 3, null), "
                    "('transactions', 'zero_amount', '/raw/acme/t.csv', 4, 'AC-1;0,00')) "
                    "as t(source_table, quarantine_reason, source_file, line_number, raw_record)")
    os.symlink("builds/b1", settings.published_dir)
    page = console_builds.quarantine_page(settings, "acme", "", 0, 10)
    html = templates.env.get_template("quarantine.html").render(
        session=None, client="acme", reason="", page=1, pages=1, total=2, problem=page.problem,
        rows=page.frame.to_dict("records"))
    body = html[html.index("<tbody>"):html.index("</tbody>")]
    assert body.count("no sample kept") == 1 and "<code>AC-1;0,00</code>" in body and "None" not in body
