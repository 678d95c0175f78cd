"""Start the test MCP server (``mcp_server.py`` next to this file) as a subprocess on a free loopback port.

    from vistack.testing.mcp import mcp_server_stats, run_mcp_server

    with run_mcp_server() as url:                       # http://127.0.0.1:PORT/mcp
        ...
    with run_mcp_server("sse", token="s3cret") as url:  # http://127.0.0.1:PORT/sse, 401 without the token
        ...

The script is launched by file path so the child does not import ``vistack.testing``
(torch). Startup is a bounded TCP poll; teardown terminates the PID we started (then
kills it if it lingers). The server's output goes to a temp file whose tail is quoted
when it fails to come up.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from .server import free_port, stop_process

__all__ = ["SERVER_SCRIPT", "mcp_server_stats", "run_mcp_server"]

SERVER_SCRIPT = Path(__file__).with_name("mcp_server.py")


@contextmanager
def run_mcp_server(
    transport: Literal["streamable-http", "sse"] = "streamable-http",
    token: str | None = None,
    *,
    sse_path: str = "/sse",
    startup_timeout_s: float = 20.0,
) -> Iterator[str]:
    """Yield the endpoint URL of a fresh test MCP server; stop it afterwards."""
    port = free_port()
    cmd = [sys.executable, str(SERVER_SCRIPT), "--port", str(port), "--transport", transport, "--sse-path", sse_path]
    if token:
        cmd += ["--require-token", token]
    path = sse_path if transport == "sse" else "/mcp"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_listening(proc, port, startup_timeout_s, log)
            yield f"http://127.0.0.1:{port}{path}"
        finally:
            stop_process(proc, timeout_s=5)


def _wait_listening(proc: subprocess.Popen, port: int, timeout_s: float, log: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    log.seek(0)
    tail = log.read().decode(errors="replace")[-3000:]
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not listening after {timeout_s:g}s"
    raise RuntimeError(f"test MCP server on port {port} {state}:\n{tail}")


def mcp_server_stats(url: str, token: str | None = None) -> dict[str, Any]:
    """The server's ``/stats``: ``{"handshakes": n, "methods": {method: count}}``."""
    base = url.split("://", 1)[0] + "://" + url.split("://", 1)[1].split("/", 1)[0]
    request = urllib.request.Request(f"{base}/stats")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())
