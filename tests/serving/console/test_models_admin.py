"""Promote and roll back from the models page: admins only, a reason required, the registry's own
functions (feature check, audit log), and the service follows the pointer."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from selenium.webdriver.common.by import By

from parity.models import registry
from tests.serving.console.conftest import errors, login, shot, signed_in, wait_for, wait_text

pytestmark = [pytest.mark.data, pytest.mark.server]
MODEL = "churn"


@pytest.fixture(scope="module")
def second_version(scored_data) -> str:
    """A second registered version of the current model (the same files: a retrain that changed nothing)."""
    current = registry.current_version(scored_data.registry_dir, MODEL)
    files = registry.verified_files(registry.entry_dir(scored_data.registry_dir, MODEL, current))
    files = {n: b for n, b in files.items() if n not in (registry.CHECKSUMS_FILE, registry.CREATED_FILE)}
    return registry.write_version(scored_data.registry_dir, MODEL, files)


def _versions(base: str, key: str) -> str:
    return httpx.get(f"{base}/v1/model", headers={"Authorization": f"Bearer {key}"}).json()


def test_an_admin_promotes_and_rolls_back_with_a_reason_recorded_in_the_audit_log(
        console, browser, scored_data, second_version):
    from parity.models import approvals
    from tests.serving.console.conftest import KEY

    before = registry.current_version(scored_data.registry_dir, MODEL)
    signed_in(browser, console.base)

    def promote(reason: str) -> None:
        browser.get(f"{console.base}/console/models")
        row = wait_for(browser, "versions").find_element(By.CSS_SELECTOR, f'tr[data-version="{second_version}"]')
        row.find_element(By.XPATH, ".//summary[text()='Promote…']").click()
        row.find_element(By.CSS_SELECTOR, "input.reason").send_keys(reason)
        row.find_element(By.CSS_SELECTOR, "button.promote").click()

    # the registry's approval rule applies to the console too: no approval, no promotion
    promote("retrained on March data")
    assert "no recorded approval" in wait_text(browser, "models-error", "promote refused").text
    assert registry.current_version(scored_data.registry_dir, MODEL) == before
    folder = registry.model_dir(scored_data.registry_dir, MODEL)
    metadata = registry.read_metadata(scored_data.registry_dir, MODEL, second_version)
    approvals.record(folder, second_version, metadata, "Mo Owner", list(approvals.flagged_items(metadata)))
    promote("retrained on March data")
    assert second_version in wait_text(browser, "models-done", "(promote:").text
    assert "approved by Mo Owner" in browser.find_element(
        By.CSS_SELECTOR, f'tr[data-version="{second_version}"] .approval').text
    assert registry.current_version(scored_data.registry_dir, MODEL) == second_version
    last = registry.read_audit(scored_data.registry_dir, MODEL)[-1]
    assert (last["action"], last["from"], last["to"], last["reason"]) == (
        "promote", before, second_version, "retrained on March data")
    assert last["actor"].startswith("Ann Reviewer (key ")
    assert "retrained on March data" in browser.find_element(By.ID, "audit").text
    assert _versions(console.base, KEY)["version"] == second_version  # reloaded at once
    shot(browser, "models")

    browser.find_element(By.XPATH, "//details[@id='rollback']/summary").click()
    browser.find_element(By.CSS_SELECTOR, "#rollback input.reason").send_keys("undo the test promotion")
    browser.find_element(By.CSS_SELECTOR, "#rollback button.rollback").click()
    assert before in wait_text(browser, "models-done", "(rollback:").text
    assert registry.current_version(scored_data.registry_dir, MODEL) == before
    assert registry.read_audit(scored_data.registry_dir, MODEL)[-1]["reason"] == "undo the test promotion"
    assert errors(browser) == []


def _session(base: str, key: str, name: str) -> tuple[httpx.Client, str]:
    """A logged-in HTTP client (the console's form, no browser) and its CSRF token."""
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    answer = client.post("/console/login", data={"name": name, "api_key": key, "next": "/console/models"})
    assert answer.status_code == 303, answer.text
    page = client.get("/console/models")
    assert page.status_code == 200
    return client, re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)


def test_a_key_without_admin_cannot_promote_in_the_browser_or_over_http(
        keyed_console, browser, scored_data, second_version):
    pointer = registry.read_pointer(scored_data.registry_dir, MODEL)
    audit = registry.read_audit(scored_data.registry_dir, MODEL)
    browser.delete_all_cookies()
    try:
        login(browser, keyed_console.base, "auditor-key", name="Otto Auditor")
        browser.get(f"{keyed_console.base}/console/models")
        assert "admin" in wait_for(browser, "no-admin").text
        assert not browser.find_elements(By.CSS_SELECTOR, "button.promote, button.rollback")
        assert errors(browser) == []
    finally:
        browser.delete_all_cookies()

    auditor, csrf = _session(keyed_console.base, "auditor-key", "Otto Auditor")
    try:
        refused = auditor.post("/console/models/promote",
                               data={"csrf": csrf, "version": second_version, "reason": "sneaking it in"})
        assert refused.status_code == 403 and "lacks the role 'admin'" in html.unescape(refused.text)
        assert auditor.post("/console/models/rollback", data={"csrf": csrf, "reason": "x"}).status_code == 403
    finally:
        auditor.close()
    anonymous = httpx.post(f"{keyed_console.base}/console/models/promote", data={"version": second_version, "reason": "x"})
    assert anonymous.status_code == 303 and "/console/login" in anonymous.headers["location"]
    assert registry.read_pointer(scored_data.registry_dir, MODEL) == pointer
    assert registry.read_audit(scored_data.registry_dir, MODEL) == audit


def test_an_admin_without_a_reason_or_with_a_bad_version_is_refused_over_http(console, scored_data, second_version):
    from tests.serving.console.conftest import KEY

    pointer = registry.read_pointer(scored_data.registry_dir, MODEL)
    admin, csrf = _session(console.base, KEY, "Ann Admin")
    try:
        for form, message in [({"version": second_version, "reason": "  "}, "a reason is required"),
                              ({"version": "../v0001", "reason": "x"}, "not a version name"),
                              ({"version": "v0999", "reason": "x"}, "promote refused"),
                              ({"version": second_version, "reason": "x", "csrf": "forged"}, "form expired")]:
            answer = admin.post("/console/models/promote", data={"csrf": csrf, **form})
            assert answer.status_code == 303
            page = admin.get(answer.headers["location"]).text
            assert message in page, (form, page[:300])
    finally:
        admin.close()
    assert registry.read_pointer(scored_data.registry_dir, MODEL) == pointer
