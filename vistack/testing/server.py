"""Run a real vistack server as a subprocess on a free loopback port.

Used by the integration tests and the benchmarks: the server is started
exactly as a user would start it (``vistack serve``), waited for with a
bounded health poll, and stopped by the PID we started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc: subprocess.Popen, base_url: str, timeout_s: float, what: str, log: Callable[[], str],
                 poll_s: float = 0.2) -> None:
    """Poll ``{base_url}/v1/health`` until it answers 200, within ``timeout_s``; the process exiting first, or
    the time running out, raises with ``what`` and the end of its log (the caller stops what it started)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log()}")
        try:
            if httpx.get(f"{base_url}/v1/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(poll_s)
    raise TimeoutError(f"{what} not healthy after {timeout_s:g}s:\n{log()}")


def stop_process(proc: subprocess.Popen | None, timeout_s: float = 15.0) -> None:
    """SIGTERM the process we started (by its PID), then SIGKILL it if it has not exited within ``timeout_s``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def log_tail(path: Path, chars: int = 8000) -> str:
    """The end of a log file, for an error message; empty when it cannot be read."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class ServerProcess:
    """A ``vistack serve`` subprocess; use as a context manager."""

    def __init__(
        self,
        distribution: dict[str, Any] | str | Path,
        workdir: Path,
        env: dict[str, str] | None = None,
        startup_timeout_s: float = 180.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(distribution, dict):
            path = self.workdir / "distribution.yaml"
            path.write_text(yaml.safe_dump(distribution, sort_keys=False))
            self.distribution = str(path)
        else:
            self.distribution = str(distribution)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "VISTACK_HOME": str(self.workdir / "home"), "HF_HUB_OFFLINE": "1",
                    "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"server-{self.port}.log"

    def start(self) -> ServerProcess:
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vistack", "serve", "--distribution", self.distribution,
             "--port", str(self.port), "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir,
        )
        try:
            wait_healthy(self.proc, self.base_url, self.startup_timeout_s, "vistack server", self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return log_tail(self.log_path)

    def stop(self, timeout_s: float = 15.0) -> None:
        stop_process(self.proc, timeout_s)

    def kill(self) -> None:
        """SIGKILL: a crash, for resume-after-restart tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def restart(self) -> ServerProcess:
        """Stop and start again on the same port and state dir (persistence tests)."""
        self.stop()
        return self.start()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tiny_distribution(
    model_dir: str | Path,
    *,
    name: str = "test",
    extra_models: list[dict] | None = None,
    chroma_url: str | None = None,
    documents: bool = False,
    vector_stores: dict[str, Any] | None = None,
    responses: dict[str, Any] | None = None,
    guard: bool = False,
    prompt_guard_dir: str | Path | None = None,
) -> dict[str, Any]:
    """A distribution with the tiny Mllama, MiniLM embeddings and a model whose weights are missing.

    ``documents=True`` adds files and vector stores: embedded Chroma, or a
    Chroma server when ``chroma_url`` is given. Every such distribution has the
    Responses API (``responses`` is its provider config). ``guard=True`` adds the
    safety API with a ``llama-guard`` shield whose guard model is the tiny Mllama
    (``tiny-guard``); ``prompt_guard_dir`` adds a ``prompt-guard`` shield on that
    tiny classifier checkpoint.
    """
    apis = ["inference", "responses"]
    providers: dict[str, Any] = {
        "responses": [{"provider_id": "builtin", "provider_type": "inline::builtin", "config": responses or {}}],
    }
    if documents or chroma_url:
        apis += ["files", "vector_io"]
        chroma = ({"provider_id": "chromadb", "provider_type": "remote::chromadb", "config": {"url": chroma_url}}
                  if chroma_url else {"provider_id": "chromadb", "provider_type": "inline::chromadb", "config": {}})
        providers["vector_io"] = [chroma]
        providers["files"] = [{"provider_id": "localfs", "provider_type": "inline::localfs",
                               "config": {"max_file_bytes": 20 * 1024 * 1024}}]
    guard_models: list[dict[str, Any]] = []
    shields: list[dict[str, Any]] = []
    if guard or prompt_guard_dir:
        apis.append("safety")
        providers["safety"] = []
    if guard:
        providers["safety"].append({"provider_id": "llama-guard", "provider_type": "inline::llama-guard",
                                    "config": {}})
        guard_models.append({"model_id": "tiny-guard", "provider_id": "transformers",
                             "provider_model_id": str(model_dir), "model_type": "llm", "metadata": {"vision": True}})
        shields.append({"shield_id": "llama-guard", "provider_id": "llama-guard",
                        "provider_shield_id": "transformers/tiny-guard"})
    if prompt_guard_dir:
        providers["safety"].append({"provider_id": "prompt-guard", "provider_type": "inline::prompt-guard",
                                    "config": {"device": "cpu"}})
        shields.append({"shield_id": "prompt-guard", "provider_id": "prompt-guard",
                        "provider_shield_id": str(prompt_guard_dir)})
    return {
        "version": 2,
        "distro_name": name,
        "apis": apis,
        "shields": shields,
        "vector_stores": vector_stores or {},
        "providers": {
            **providers,
            "inference": [
                {"provider_id": "transformers", "provider_type": "inline::transformers",
                 "config": {"device": "cpu", "default_max_tokens": 16}},
                {"provider_id": "sentence-transformers", "provider_type": "inline::sentence-transformers", "config": {}},
            ]
        },
        "models": [
            {"model_id": "tiny-mllama", "provider_id": "transformers", "provider_model_id": str(model_dir),
             "model_type": "llm", "metadata": {"vision": True}},
            {"model_id": "missing-vision", "provider_id": "transformers",
             "provider_model_id": "/nonexistent/vistack-weights/Llama-3.2-11B-Vision-Instruct", "model_type": "llm"},
            {"model_id": "all-MiniLM-L6-v2", "provider_id": "sentence-transformers", "model_type": "embedding",
             "metadata": {"embedding_dimension": 384}},
            *guard_models,
            *(extra_models or []),
        ],
        "storage": {"state_dir": "${env.VISTACK_HOME}/" + name},
    }
