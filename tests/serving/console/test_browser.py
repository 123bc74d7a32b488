"""The console in a real browser (headless Chromium) against the real service on loopback."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.serving.console.conftest import (
    KEY,
    errors,
    flagged,
    login,
    shot,
    signed_in,
    wait_for,
    wait_text,
    wait_until,
)

pytestmark = [pytest.mark.data, pytest.mark.server]


def test_login_refuses_a_wrong_key_then_lets_the_right_one_in(console, browser):
    login(browser, console.base, "not-a-key")
    assert browser.find_element(By.ID, "login-error").text == "unknown API key"
    assert not browser.get_cookies()
    refused = errors(browser)  # the refused login is answered 401, which the browser reports
    assert len(refused) == 1 and "status of 401" in refused[0]["message"], refused
    login(browser, console.base, KEY)
    assert browser.current_url.endswith("/console/customer")
    assert browser.find_element(By.ID, "who").text.startswith("Ann Reviewer (key ")
    cookie = browser.get_cookie("parity_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert KEY not in cookie["value"] and KEY not in browser.page_source
    assert errors(browser) == []


def test_customer_page_shows_the_apis_score_reasons_features_and_history(console, browser, scored_data):
    signed_in(browser, console.base)
    customer = flagged(scored_data)[0]
    client, source_id = customer.split(":", 1)
    browser.get(f"{console.base}/console/customer")
    Select(browser.find_element(By.ID, "client")).select_by_value(client)
    browser.find_element(By.ID, "customer-id").send_keys(source_id)
    browser.find_element(By.ID, "as-of").send_keys(console.at)
    browser.find_element(By.ID, "lookup").click()
    wait_for(browser, "result")  # the form's GET has loaded the answer
    assert "id=" in browser.current_url and KEY not in browser.current_url

    # what the page says is what the API answers for the same customer and time
    api = httpx.post(f"{console.base}/v1/predict", headers={"Authorization": f"Bearer {KEY}"}, json={
        "customers": [{"customer_id": customer, "request_at": console.at}]}).json()["predictions"][0]
    assert api["status"] == "ok" and api["decision"] is True
    assert browser.find_element(By.ID, "status").text == "scored"
    assert browser.find_element(By.ID, "score").text == f"{api['score'] * 100:.1f}%"
    assert browser.find_element(By.ID, "decision").text == "act: contact"
    assert browser.find_element(By.ID, "segment").text == api["segment_name"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#reasons tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == [c["feature"] for c in api["contributions"]]
    assert all(r.find_elements(By.TAG_NAME, "td")[0].text.endswith(("(raises risk)", "(lowers risk)")) for r in rows)
    assert "days_since_last_purchase" in browser.find_element(By.ID, "features").text
    # history: the batch run's score of this customer is listed and charted
    history = browser.find_element(By.ID, "history").text
    assert "batch" in history
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")  # batch points are squares
    assert errors(browser) == []
    # time to fully rendered, as the browser measured it (reported, never asserted)
    loaded = browser.execute_script(
        "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime")
    print(f"customer page: request to fully rendered {loaded:.0f} ms")
    shot(browser, "customer")


def test_unknown_customer_is_said_plainly_and_partial_ids_are_searched(console, browser, scored_data):
    signed_in(browser, console.base)
    browser.get(f"{console.base}/console/customer?" + urlencode({"client": "acme", "id": "NOT-A-CUSTOMER", "at": console.at}))
    assert "customer unknown" in browser.find_element(By.ID, "status").text
    assert not browser.find_elements(By.ID, "score")
    assert browser.find_element(By.ID, "no-matches")
    # a partial id lists the client's customers containing it, each a link to its page
    customer = flagged(scored_data)[0]
    client, source_id = customer.split(":", 1)
    browser.get(f"{console.base}/console/customer?" + urlencode({"client": client, "id": source_id[:-1].lower()}))
    links = browser.find_elements(By.CSS_SELECTOR, "#matches a")
    assert customer in [a.text for a in links]
    assert all(a.text.startswith(f"{client}:") and source_id[:-1].lower() in a.text.lower() for a in links)


def _queue_row(browser, customer: str):
    return browser.find_element(By.CSS_SELECTOR, f'#queue tr[data-customer="{customer}"]')


def test_review_queue_approve_and_override_are_stored_with_who_and_shown(console, browser, scored_data):
    signed_in(browser, console.base)
    from parity import reviews

    browser.get(f"{console.base}/console/review")
    rows = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    queued = [r.get_attribute("data-customer") for r in rows]
    assert queued == flagged(scored_data, len(queued))  # one model, one cost: value follows the score
    first, second = queued[:2]

    _queue_row(browser, first).find_element(By.CSS_SELECTOR, "button.approve").click()
    wait_text(browser, "review-done", f"Decision on {first} recorded.")
    row = _queue_row(browser, second)
    row.find_element(By.XPATH, ".//summary[text()='Override…']").click()
    Select(row.find_element(By.CSS_SELECTOR, "select.reason")).select_by_value("other")
    row.find_element(By.CSS_SELECTOR, "button.override").click()  # 'other' without a note: refused
    wait_text(browser, "review-error", "needs a note")
    row = _queue_row(browser, second)
    row.find_element(By.XPATH, ".//summary[text()='Override…']").click()
    Select(row.find_element(By.CSS_SELECTOR, "select.reason")).select_by_value("already_contacted")
    row.find_element(By.CSS_SELECTOR, "input.note").send_keys("called on Monday")
    row.find_element(By.CSS_SELECTOR, "button.override").click()
    wait_text(browser, "review-done", f"Decision on {second} recorded.")

    # decided customers leave the queue and are listed with their decision and reviewer
    remaining = [r.get_attribute("data-customer") for r in browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")]
    assert first not in remaining and second not in remaining
    decided = {r.get_attribute("data-customer"): r.text for r in browser.find_elements(By.CSS_SELECTOR, "#reviewed tbody tr")}
    assert "approve" in decided[first] and "Ann Reviewer" in decided[first]
    assert "override" in decided[second] and "called on Monday" in decided[second]
    assert "50%" in browser.find_element(By.ID, "all-rates").text  # 1 override of 2 decisions

    # durable: in the console's database with who, when and the batch's model version
    stored = reviews.decisions(scored_data.console_dir).set_index("customer_id")
    assert stored.loc[second, "action"] == "override" and stored.loc[second, "reason"] == "already_contacted"
    assert stored.loc[first, "who"].startswith("Ann Reviewer (key ") and stored.loc[first, "model_version"] == "v0001"
    logged = reviews.actions(scored_data.console_dir)
    assert {"login", "customer_lookup", "review_decision", "view_review_queue"} <= set(logged["action"])
    assert not logged["detail"].str.contains(KEY).any()
    assert errors(browser) == []
    shot(browser, "review")


def test_models_page_lists_versions_with_metrics_and_the_training_report(console, browser):
    signed_in(browser, console.base)
    browser.get(f"{console.base}/console/models")
    current = browser.find_element(By.CSS_SELECTOR, '#versions tr[data-version="v0001"]')
    assert "current" in current.find_element(By.CLASS_NAME, "roles").text
    assert "xgboost" in current.text and "as is" in current.text
    shot(browser, "models")
    current.find_element(By.CLASS_NAME, "report").click()
    wait_until(browser, lambda b: b.current_url.endswith("/console/models/v0001/report/report.html")
               and b.find_elements(By.TAG_NAME, "img"))
    images = browser.find_elements(By.TAG_NAME, "img")
    assert images and all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
    for refused in ("v0001/report/metadata.json", "v0001/report/..%2F..%2Fregistry", "x/report/report.html"):
        browser.get(f"{console.base}/console/models/{refused}")
        page = wait_until(browser, lambda b: b.page_source if ("No training report file" in b.page_source
                                                                or "Not Found" in b.page_source) else None)
        assert "prepare_spec" not in page
    errors(browser)  # the refused paths above are 404s on purpose


def test_data_health_page_shows_each_clients_reconciliation_quarantine_and_watermark(console, browser, scored_data):
    signed_in(browser, console.base)
    from parity.ingest.warehouse import reconciliation

    browser.get(f"{console.base}/console/health")
    expected = reconciliation(scored_data)
    for client in scored_data.clients:
        section = browser.find_element(By.ID, f"client-{client}")
        assert "every raw row accounted for" in section.text
        raw = expected[(expected["client_id"] == client) & (expected["source_table"] == "transactions")]["raw_rows"]
        assert str(int(raw.iloc[0])) in section.find_element(By.CLASS_NAME, "reconciliation").text
        assert section.find_elements(By.CSS_SELECTOR, ".quarantine tbody tr")
    # the last builds: this data folder's one build, published, reconciled, no guard fired
    for client in scored_data.clients:
        builds = browser.find_elements(By.CSS_SELECTOR, f"#client-{client} .builds tbody tr")
        assert builds and "published" in builds[0].text and "none fired" in builds[0].text
    assert errors(browser) == []
    monitoring = browser.find_element(By.ID, "monitoring").text
    if (scored_data.reports_dir / "monitoring" / "summary.json").exists():  # test_overrides ran it first
        assert "make monitor" not in monitoring
    else:
        assert "make monitor" in monitoring
    assert errors(browser) == []
    shot(browser, "health")


def test_quarantine_sample_is_browsable_by_reason_and_redacted(console, browser, scored_data):
    signed_in(browser, console.base)
    import re

    from parity.ingest.warehouse import quarantine_summary

    counts = quarantine_summary(scored_data)
    client = counts.groupby("client_id")["n_rows"].sum().idxmax()
    browser.get(f"{console.base}/console/health")
    browser.find_element(By.CSS_SELECTOR, f"#client-{client} a.browse").click()
    rows = wait_for(browser, "quarantine-sample").find_elements(By.CSS_SELECTOR, "tbody tr")
    total = int(counts[counts["client_id"] == client]["n_rows"].sum())
    wait_until(browser, lambda b: f"{total} record(s)" in b.page_source)
    assert len(rows) == min(total, 25)
    email = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
    assert not any(email.search(r.text) for r in rows)  # dbt redacted the record text
    reason = rows[0].find_elements(By.TAG_NAME, "td")[1].text
    rows[0].find_element(By.LINK_TEXT, reason).click()
    wait_until(browser, lambda b: "reason=" in b.current_url and b.find_elements(By.ID, "quarantine-sample"))
    n = int(counts[(counts["client_id"] == client) & (counts["quarantine_reason"] == reason)]["n_rows"].sum())
    wait_until(browser, lambda b: f"{n} record(s)" in b.page_source)
    assert {r.find_elements(By.TAG_NAME, "td")[1].text
            for r in browser.find_elements(By.CSS_SELECTOR, "#quarantine-sample tbody tr")} == {reason}
    assert errors(browser) == []
    shot(browser, "quarantine")


def test_operations_page_shows_volume_latency_and_the_heatmap(console, browser, scored_data):
    signed_in(browser, console.base)
    # this module's lookups went through /v1/predict and are in the prediction log
    # the service writes its log in the background (every flush_seconds): reload until it has
    def summary_shown(b):
        b.get(f"{console.base}/console/operations")
        return (b.find_elements(By.ID, "ops-summary") or [None])[0]

    try:
        summary = WebDriverWait(browser, 20, poll_frequency=1).until(summary_shown).text
    except TimeoutException:
        pytest.fail("no ops-summary on the operations page: " + browser.find_element(By.TAG_NAME, "main").text[:800])
    assert "Requests" in summary and "p50 / p95 / p99" in summary
    assert browser.find_elements(By.CSS_SELECTOR, "svg.heatmap rect title")
    assert browser.find_element(By.ID, "ops-watermarks").find_elements(By.CSS_SELECTOR, "tbody tr")
    answers = browser.find_element(By.ID, "ops-errors").text  # the lookups above were answered
    assert "answers" in answers and "Server errors (5xx)" in answers
    consistency = browser.find_element(By.ID, "ops-consistency").text
    assert ("not run" in consistency) != (scored_data.reports_dir / "consistency" / "summary.json").exists()
    assert errors(browser) == []
    shot(browser, "operations")


def test_a_client_scoped_key_without_read_model_sees_only_its_client_and_no_models(scored_data, browser, keyed_console):
    svc = keyed_console
    try:
        browser.delete_all_cookies()
        login(browser, svc.base, "acme-only", name="Cleo Desk")
        assert browser.find_element(By.ID, "who").text == "Cleo Desk (key acme-desk)"
        nav = browser.find_element(By.TAG_NAME, "nav").text
        assert "Customer" in nav and "Review queue" in nav and "Models" not in nav and "Operations" not in nav
        assert [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#client option")] == ["acme"]
        browser.get(f"{svc.base}/console/models")
        assert "lacks the role 'read_model'" in browser.find_element(By.ID, "denied").text
        bolt = next(c for c in flagged(scored_data, 500) if c.startswith("bolt:"))
        browser.get(f"{svc.base}/console/customer?" + urlencode({"client": "bolt", "id": bolt.split(":", 1)[1]}))
        wait_until(browser, lambda b: "choose a client" in b.page_source)
        assert not browser.find_elements(By.ID, "result")
        browser.get(f"{svc.base}/console/review")
        queued = {r.get_attribute("data-customer").split(":")[0]
                  for r in browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")}
        assert queued == {"acme"}
        browser.get(f"{svc.base}/console/health")
        assert browser.find_elements(By.ID, "client-acme") and not browser.find_elements(By.ID, "client-bolt")
        browser.get(f"{svc.base}/console/health/quarantine?client=bolt")
        assert "does not see client 'bolt'" in browser.find_element(By.ID, "denied").text
        errors(browser)  # the refused models page is a 403 on purpose
    finally:
        browser.delete_all_cookies()
