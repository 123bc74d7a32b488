"""Console fixtures: a scored data folder (the session's drifted, trained data plus one batch run
in a private folder), the real service on loopback, and one headless Chromium, shared by every console test module (helpers for them below)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from parity.config import Settings
from tests.batch.fixtures import drift_data_dir, private_copy
from tests.training.conftest import keep_data_dir_env

KEY = "console-test-key"


@pytest.fixture(scope="session")
def scored_data(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shared drifted, trained data (churn + segments models current) in a private folder
    with one batch run at the online store's materialization time (the review queue's input)."""
    from batch.config import load_config
    from batch.pipeline import run_score

    shared = drift_data_dir(tmp_path_factory)
    with keep_data_dir_env():
        # its own registry: the models page promotes and rolls back
        settings = private_copy(shared, tmp_path_factory.mktemp("console"), copies=("registry",))
        run_score(settings, load_config())
    settings.reports_dir.mkdir()  # the training reports are read, never written: link them
    (settings.reports_dir / "training").symlink_to(shared.reports_dir / "training", target_is_directory=True)
    return settings


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by chromedriver (one for every console test)."""
    from bench.console import open_browser

    try:
        driver, profile = open_browser()
    except RuntimeError as err:  # Chromium or its driver missing: a failure, never a skip
        pytest.fail(f"{err} (.ci/run does)")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def console(scored_data) -> Iterator[object]:
    """The service with the console, on a free loopback port (one for every console test)."""
    from serving.smoke import wait_ready
    from tests.serving.test_app import Service

    svc = Service(scored_data, keys=KEY)
    try:
        wait_ready(svc.base)
        yield svc
    finally:
        svc.stop()


@pytest.fixture(autouse=True)
def _fresh_log(request):
    """Each browser test reads only its own pages' console errors."""
    if "browser" in request.fixturenames:
        request.getfixturevalue("browser").get_log("browser")


def errors(browser) -> list[dict]:
    """The page's console errors (a broken asset, a script error) since the last call."""
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def login(browser, base: str, key: str, name: str = "Ann Reviewer") -> None:
    """Log in through the form (from a page that needs a session)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{base}/console/customer")
    assert "/console/login" in browser.current_url  # no session: sent to the form
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "api_key").send_keys(key)
    browser.find_element(By.ID, "login").click()
    # the form posts and redirects: wait for the next page (signed in, or the form's error)
    # instead of racing the navigation
    WebDriverWait(browser, 15).until(
        lambda b: b.find_elements(By.ID, "who") or b.find_elements(By.ID, "login-error"))


def signed_in(browser, base: str, key: str = KEY, name: str = "Ann Reviewer") -> None:
    """Make sure the browser has a session of `key` on `base` (a module run on its own has none)."""
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/console/customer")
    if "/console/login" in browser.current_url:
        login(browser, base, key, name)
    assert browser.find_elements(By.ID, "who")


def shot(browser, name: str) -> None:
    """With PARITY_CONSOLE_SCREENSHOTS=<folder>, save the page as <folder>/<name>.png (README)."""
    import os

    folder = os.environ.get("PARITY_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1280, min(max(height, 600), 1200))
        path = Path(folder) / f"{name}.png"
        browser.save_screenshot(str(path))
        browser.set_window_size(1280, 1000)
        from PIL import Image  # committed under docs/: 256 colours keep each file small

        with Image.open(path) as image:
            image.convert("RGB").quantize(colors=256).save(path, optimize=True)


def flagged(settings, n: int = 1) -> list[str]:
    """Customers the latest batch flags (scored, positive decision), highest score first."""
    import duckdb

    return [r[0] for r in duckdb.connect().execute(
        f"select customer_id from read_parquet('{settings.scores_dir}/scores_*.parquet') "
        "where status = 'ok' and decision order by score desc, customer_id limit ?", [n]).fetchall()]


def wait_for(browser, element_id: str, timeout: float = 15):
    """The element with this id once the page that has it is loaded (an explicit wait)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda b: (b.find_elements(By.ID, element_id) or [None])[0])


# keys of the second service (a keys file): a client-scoped desk without read_model, and an
# auditor who reads models but is no admin
KEYED = {"acme-only": {"name": "acme-desk", "clients": ["acme"], "roles": ["score"]},
         "auditor-key": {"name": "auditor", "clients": "*", "roles": ["score", "read_model"]}}


@pytest.fixture(scope="session")
def keyed_console(scored_data, tmp_path_factory) -> Iterator[object]:
    """A second service on the same data whose keys come from a keys file (KEYED)."""
    import yaml

    from serving.config import DEFAULT_CONFIG
    from serving.keys import hash_key
    from serving.smoke import wait_ready
    from tests.serving.test_app import Service

    folder = tmp_path_factory.mktemp("keyed")
    (folder / "keys.yaml").write_text(yaml.safe_dump({"keys": [
        {**entry, "sha256": hash_key(key)} for key, entry in KEYED.items()]}))
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["api_keys_file"] = str(folder / "keys.yaml")
    (folder / "serving.yaml").write_text(yaml.safe_dump(config))
    svc = Service(scored_data, config_path=folder / "serving.yaml", keys=KEY)
    try:
        wait_ready(svc.base)
        yield svc
    finally:
        svc.stop()


def wait_until(browser, predicate, timeout: float = 15):
    """An explicit wait for `predicate(browser)`, retried while the page is being replaced."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                         ).until(predicate)


def wait_text(browser, element_id: str, text: str, timeout: float = 15):
    """The element with this id once its text contains `text` (a new page's, not the old one's)."""
    from selenium.webdriver.common.by import By

    def found(b):
        element = b.find_element(By.ID, element_id)
        return element if text in element.text else None

    return wait_until(browser, found, timeout)
