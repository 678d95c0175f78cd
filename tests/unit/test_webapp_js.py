"""The web app's DOM-free JavaScript helpers (tests/unit/webapp_js/*.test.mjs) under Node's test runner.

The app ships as plain ES modules, so Node imports the very files the browser loads. Without Node the
test skips, unless VISTACK_REQUIRE_BROWSER=1 (CI), which makes it fail: the browser tests and these go
together.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TESTS = sorted((Path(__file__).parent / "webapp_js").glob("*.test.mjs"))


def test_webapp_helpers_under_node() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        if os.environ.get("VISTACK_REQUIRE_BROWSER") == "1":
            pytest.fail("node is not installed (apt-get install nodejs) and VISTACK_REQUIRE_BROWSER=1")
        pytest.skip("node is not installed (apt-get install nodejs)")
    assert TESTS, "no webapp_js/*.test.mjs files"
    done = subprocess.run([node, "--test", *map(str, TESTS)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout
