"""Fixtures for the web app's end-to-end tests: a fresh headless Chromium per test (see webapp_browser.py).

After each test the browser's console log is checked: any SEVERE entry the test did not declare
(``browser.expect_console``) fails it. A failed test leaves a screenshot in test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from webapp_browser import Browser, require_browser, start_chromium


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    require_browser()
    b = start_chromium(request.node.name)
    try:
        yield b
        severe = b.unexpected_severe()
        assert not severe, "the browser console has errors:\n" + "\n".join(e["message"] for e in severe)
    finally:
        if getattr(request.node, "rep_call_failed", False):
            try:
                b.shot("failure")
            except Exception:  # noqa: BLE001 - best effort: the browser may be gone
                pass
        b.driver.quit()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Remember a failed test body so the browser fixture can take a screenshot of the failure."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.rep_call_failed = True  # type: ignore[attr-defined]
