"""Review decisions taken in the browser reach the next batch export and monitoring."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.serving.console.conftest import errors, shot, signed_in, wait_for, wait_text
from tests.training.conftest import keep_data_dir_env

pytestmark = [pytest.mark.data, pytest.mark.server]


def _row(browser, customer: str):
    return browser.find_element(By.CSS_SELECTOR, f'#queue tr[data-customer="{customer}"]')


def test_approve_and_override_show_in_the_next_batch_export_and_in_monitoring(console, browser, scored_data):
    from batch.config import load_config as batch_config
    from batch.pipeline import run_score
    from monitoring.config import load_config as monitoring_config
    from monitoring.pipeline import collect, write

    signed_in(browser, console.base)
    browser.get(f"{console.base}/console/review")
    queued = [r.get_attribute("data-customer") for r in wait_for(browser, "queue").find_elements(
        By.CSS_SELECTOR, "tbody tr")]
    approved, overridden = queued[0], next(c for c in queued[1:] if c.split(":")[0] == queued[0].split(":")[0])
    _row(browser, approved).find_element(By.CSS_SELECTOR, "button.approve").click()
    wait_text(browser, "review-done", f"Decision on {approved} recorded.")
    row = _row(browser, overridden)
    row.find_element(By.XPATH, ".//summary[text()='Override…']").click()
    Select(row.find_element(By.CSS_SELECTOR, "select.reason")).select_by_value("not_worth_it")
    row.find_element(By.CSS_SELECTOR, "input.note").send_keys("small account")
    row.find_element(By.CSS_SELECTOR, "button.override").click()
    wait_text(browser, "review-done", f"Decision on {overridden} recorded.")

    # the next batch run (same as-of: the online store has not moved) exports both decisions
    with keep_data_dir_env():
        run = run_score(scored_data, batch_config())
    client = approved.split(":")[0]
    csv = next(p for p in run.exports[client] if p.suffix == ".csv")
    exported = pd.read_csv(csv, dtype=str, keep_default_na=False).set_index("customer_id")
    assert exported.loc[approved, ["review_action", "review_reason"]].tolist() == ["approve", ""]
    assert exported.loc[overridden, ["review_action", "review_reason"]].tolist() == ["override", "not_worth_it"]
    assert exported.loc[overridden, "review_batch_as_of"] == csv.stem.removeprefix("scores_")
    assert "small account" not in csv.read_text()  # the free-text note stays in the console
    unreviewed = exported.drop(index=[approved, overridden])
    assert (unreviewed["review_action"].isin(["", "approve", "override", "model_wrong"])).all()
    parquet = pd.read_parquet(next(p for p in run.exports[client] if p.suffix == ".parquet"))
    assert str(parquet["review_action"].dtype) in ("object", "string") and parquet["reviewed_at"].notna().sum() >= 2

    # monitoring: override rate per client and segment, and (no label has matured) who was right
    with keep_data_dir_env():
        findings = collect(scored_data, monitoring_config())
        write(findings)
    summary = json.loads((scored_data.reports_dir / "monitoring" / "summary.json").read_text())
    by_client = {r["client_id"]: r for r in summary["reviews"]["by_client"]}
    assert by_client[client]["overridden"] >= 1 and by_client[client]["approved"] >= 1
    browser.get(f"{console.base}/console/review")
    monitored = wait_for(browser, "monitored-rates")
    rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r.text for r in monitored.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert client in rows and "all" in rows
    assert browser.find_element(By.ID, "monitored-segment-rates").find_elements(By.CSS_SELECTOR, "tbody tr")
    outcomes = browser.find_element(By.ID, "monitored-outcomes").text
    assert "override" in outcomes and "approve" in outcomes
    assert errors(browser) == []
    shot(browser, "review")
