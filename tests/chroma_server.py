"""A real Chroma server for tests: ``chroma run`` as a subprocess on a free local port.

    with ChromaServer(tmp_path / "chroma") as server:
        config = ChromaRemoteConfig(url=server.url)
        ...

The server keeps its data under ``path``; ``stop()`` then ``start()`` restarts
it on the same path and port (for persistence checks). Startup waits for
``/api/v2/heartbeat`` with a bounded poll; teardown terminates the process by
its PID (then kills it if it lingers). Output goes to ``<path>/../chroma-<port>.log``
and its tail is quoted when the server fails to come up.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from vistack.testing.server import stop_process

__all__ = ["ChromaServer", "chroma_executable", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def chroma_executable() -> str:
    """The ``chroma`` CLI of this interpreter's environment (next to ``sys.executable``), else PATH's."""
    candidate = Path(sys.executable).parent / ("chroma.exe" if os.name == "nt" else "chroma")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("chroma")
    if found:
        return found
    raise RuntimeError(f"no `chroma` executable next to {sys.executable} or on PATH; pip install chromadb")


class ChromaServer:
    """``chroma run --path PATH --host HOST --port PORT``, started and stopped by the test."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory | None = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="vistack-chroma-")
            path = Path(self._tmp.name) / "db"
        self.path = Path(path)
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout_s = startup_timeout_s
        self.log_path = self.path.parent / f"chroma-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1.0) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def start(self) -> Self:
        if self.process is not None and self.process.poll() is None:
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False", NO_COLOR="1")
        self.process = subprocess.Popen(
            [chroma_executable(), "run", "--path", str(self.path), "--host", self.host, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C in the test run is ours to handle, not the server's
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"chroma run exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.alive():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"chroma run did not answer {self.url}/api/v2/heartbeat within {self.startup_timeout_s}s:\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        stop_process(self.process, timeout_s=10)  # by PID, this process only
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
