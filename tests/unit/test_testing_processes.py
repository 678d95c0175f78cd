"""The subprocess helpers every real-server test and the conformance benchmark start their servers with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vistack.testing.server import free_port, log_tail, stop_process, wait_healthy


def test_a_process_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "srv.log"
    log.write_text("boot failed: no such model\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match=r"(?s)toy server exited with 3:.*no such model"):
        wait_healthy(proc, f"http://127.0.0.1:{free_port()}", 30, "toy server", lambda: log_tail(log))


def test_no_health_in_time_is_a_timeout_and_the_process_is_stopped_by_pid(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(TimeoutError, match="toy server not healthy after 0.5s"):
            wait_healthy(proc, f"http://127.0.0.1:{free_port()}", 0.5, "toy server", lambda: "", poll_s=0.1)
        assert proc.poll() is None  # the caller decides: still running here
    finally:
        stop_process(proc, timeout_s=5)
    assert proc.poll() is not None
    stop_process(proc)  # already gone: nothing to do
    stop_process(None)
    assert log_tail(tmp_path / "missing.log") == ""
