"""The bench's console section measures real page loads (bench/console.py), on the console suite's
service and browser: no data of its own, a few page loads (timings reported, never asserted)."""

from __future__ import annotations

import pytest

from tests.serving.console.conftest import flagged, signed_in

pytestmark = [pytest.mark.data, pytest.mark.server]


def test_lookups_read_navigation_timing_and_the_pages_verdict(console, browser, scored_data):
    from bench.console import lookups

    signed_in(browser, console.base)
    customers = flagged(scored_data, 2)
    try:
        pages = lookups(browser, console.base, [*customers, f"{scored_data.clients[0]}:NO-SUCH-CUSTOMER"],
                        console.at, warmup=1)
    finally:
        browser.delete_all_cookies()  # signed out again: the login test expects a fresh browser
    assert pages["rendered_ms"]["n"] == 2 and pages["console_error_count"] == 0
    rendered, server = pages["rendered_ms"], pages["server_ms"]
    assert rendered["max"] >= rendered["p50"] > 0 and 0 < server["p50"] <= rendered["p50"]
    # the page's own verdict is read back: a scored customer and an unknown one (an id outside the
    # client's pattern) say so
    assert pages["verdicts"] == {"scored": 1, "not scored: customer unknown (not a valid id for this client)": 1}
