"""Shared fixtures: the tiny Mllama built once per session, and a real server subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_mllama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vistack.testing import build_tiny_mllama

    return build_tiny_mllama(tmp_path_factory.mktemp("tiny-mllama") / "model")


@pytest.fixture(scope="session")
def server(tiny_mllama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One real ``vistack serve`` with the tiny model, shared by the integration tests."""
    from vistack.testing.server import ServerProcess, tiny_distribution

    with ServerProcess(tiny_distribution(tiny_mllama_dir), tmp_path_factory.mktemp("server")) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server):
    """The official openai SDK against the module's ``server`` (no retries: errors surface at once)."""
    import openai

    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def http(server):
    """Raw HTTP against the module's ``server``."""
    import httpx

    with httpx.Client(base_url=server.base_url, timeout=120) as c:
        yield c
