"""Console fixtures: a scored data folder (the session's drifted, trained data plus one batch run
in a private folder), the real service on loopback, and one headless Chromium per test module."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from parity.config import Settings
from tests.batch.fixtures import drift_data_dir, private_copy
from tests.training.conftest import keep_data_dir_env

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")
KEY = "console-test-key"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,1000")


@pytest.fixture(scope="session")
def scored_data(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The shared drifted, trained data (churn + segments models current) in a private folder
    with one batch run at the online store's materialization time (the review queue's input)."""
    from batch.config import load_config
    from batch.pipeline import run_score

    shared = drift_data_dir(tmp_path_factory)
    with keep_data_dir_env():
        settings = private_copy(shared, tmp_path_factory.mktemp("console"))
        run_score(settings, load_config())
    settings.reports_dir.mkdir()  # the training reports are read, never written: link them
    (settings.reports_dir / "training").symlink_to(shared.reports_dir / "training", target_is_directory=True)
    return settings


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by chromedriver (one session per test module)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    missing = [p for p in CHROMIUM if not Path(p).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: `apt-get install -y chromium chromium-driver` (.ci/run does)")
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM[0]
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=ChromeService(CHROMIUM[1]))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
