"""A real headless Chromium driven by Selenium, for the web app's end-to-end tests (used by conftest.py).

The browser is Debian's ``chromium`` with its matching ``chromium-driver`` (``apt-get install chromium
chromium-driver``); both paths are given to Selenium explicitly, so Selenium Manager never downloads a
browser or a driver. Where they are missing the tests skip, unless ``VISTACK_REQUIRE_BROWSER=1`` (set by
``.ci/run``), which turns that into a failure: CI cannot go green by skipping the browser tests.

Every test gets a fresh browser with a 1366x768 viewport. Its console log is collected and a test fails on
any SEVERE entry it did not declare as expected (``browser.expect_console(pattern)``). ``browser.shot(name)``
saves a screenshot under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REQUIRE_BROWSER = os.environ.get("VISTACK_REQUIRE_BROWSER", "").strip().lower() in ("1", "true", "yes", "on")
CHROMIUM = os.environ.get("VISTACK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VISTACK_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
VIEWPORT = (1366, 768)
WAIT_S = 30.0


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)) and not shutil.which(path):
            return f"{path} not found (apt-get install -y {package})"
    return None


def require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"VISTACK_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


class Browser:
    """A Chromium session with the helpers the tests share: waits, test-id lookups, screenshots, console log."""

    def __init__(self, driver: Any, test_name: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.test_name = re.sub(r"[^A-Za-z0-9_-]+", "-", test_name).strip("-")
        self.console: list[dict] = []
        self.expected: list[re.Pattern[str]] = []
        self.shots = 0
        self._wait = WebDriverWait

    # ----- finding and waiting ---------------------------------------------------------------------

    def wait(self, condition: Callable[[Any], Any], timeout: float = WAIT_S, message: str = "") -> Any:
        """Poll `condition` until it returns something truthy; elements re-rendered meanwhile are looked up again."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

        return self._wait(self.driver, timeout, poll_frequency=0.1,
                          ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                          ).until(condition, message)

    def css(self, selector: str, root: Any = None) -> Any:
        from selenium.webdriver.common.by import By

        return (root or self.driver).find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str, root: Any = None) -> list:
        from selenium.webdriver.common.by import By

        return (root or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def tid(self, testid: str, root: Any = None) -> Any:
        return self.css(f'[data-testid="{testid}"]', root)

    def tids(self, testid: str, root: Any = None) -> list:
        return self.all(f'[data-testid="{testid}"]', root)

    def visible(self, testid: str, timeout: float = WAIT_S) -> Any:
        """Wait until an element with this test id is displayed; return it."""
        def found(_: Any) -> Any:
            for el in self.tids(testid):
                if el.is_displayed():
                    return el
            return False
        return self.wait(found, timeout, f"[data-testid={testid}] not visible within {timeout}s")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    # ----- artifacts -------------------------------------------------------------------------------

    def shot(self, step: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = SCREENSHOTS / f"{self.test_name}-{self.shots:02d}-{step}.png"
        self.driver.save_screenshot(str(path))
        return path

    def expect_console(self, pattern: str) -> None:
        """A SEVERE console entry matching this regex is expected (e.g. the 401 that makes the key prompt appear)."""
        self.expected.append(re.compile(pattern))

    def collect_console(self) -> list[dict]:
        self.console += self.driver.get_log("browser")
        return self.console

    def unexpected_severe(self) -> list[dict]:
        return [e for e in self.collect_console() if e.get("level") == "SEVERE"
                and not any(p.search(e.get("message", "")) for p in self.expected)]




def start_chromium(test_name: str) -> Browser:
    """A fresh headless Chromium (Debian's, with its own chromedriver: nothing is downloaded)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never reach the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", "--disable-extensions", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--metrics-recording-only", "--password-store=basic", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    # the viewport itself, not the window, is 1366x768 (a laptop screen)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False})
    return Browser(driver, test_name)
