"""The official ``llama-stack-client`` 0.7.5 (Python 3.12) against our server, unmodified."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLIENT_VERSION = "0.7.5"
REPO = Path(__file__).resolve().parents[2]


def _python312() -> str | None:
    """An interpreter that really runs (a pyenv shim may exist without the version active)."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [os.environ.get("VISTACK_PY312")]
    candidates += sorted((str(p) for p in pyenv_root.glob("versions/3.1[2-9]*/bin/python3")), reverse=True)
    candidates += [shutil.which("python3.12"), shutil.which("python3.13")]
    for c in candidates:
        if c and Path(c).exists():
            ok = subprocess.run([c, "-c", "import sys; assert sys.version_info >= (3, 12)"], capture_output=True, timeout=60)
            if ok.returncode == 0:
                return c
    return None


@pytest.fixture(scope="session")
def lsc_python() -> str:
    """A cached venv (.venv-compat) with llama-stack-client installed."""
    venv = REPO / ".venv-compat"
    python = venv / "bin" / "python"
    marker = venv / f".llama-stack-client-{CLIENT_VERSION}"
    if not marker.exists():
        base = _python312()
        if base is None:
            pytest.fail("llama-stack-client needs Python >= 3.12: install one or set VISTACK_PY312")
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"llama-stack-client=={CLIENT_VERSION}"],
                       check=True, timeout=600)
        marker.touch()
    return str(python)


def test_official_client_round_trip(server, lsc_python):
    proc = subprocess.run([lsc_python, str(Path(__file__).with_name("lsc_script.py")), server.base_url],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "transformers/tiny-mllama" in out["model_ids"]
    assert out["retrieved"] == {"identifier": "transformers/tiny-mllama", "provider_id": "transformers", "model_type": "llm"}
    assert out["chat"]["role"] == "assistant" and out["chat"]["finish_reason"] in ("stop", "length")
    assert out["chat"]["completion_tokens"] <= 3
    assert out["stream_finish"] in ("stop", "length")
    assert out["n_choices"] == [0, 1] and out["logprobs_tops"] and set(out["logprobs_tops"]) == {2}
    assert set(out["structured"]) == {"ok"} and isinstance(out["structured"]["ok"], bool)
    assert out["embedding_dim"] == 384
    assert {"transformers", "sentence-transformers"} <= set(out["providers"])
    assert out["health"] == "OK" and out["version"]
    assert out["routes"] > 5
    assert out["not_found"] == "NotFoundError"


def test_official_client_files_and_vector_stores(lsc_python, tiny_mllama_dir, tmp_path):
    from vistack.testing import documents as docs
    from vistack.testing.server import ServerProcess, tiny_distribution

    report = docs.annual_report_pdf()
    pdf = tmp_path / report.filename
    pdf.write_bytes(report.data)
    fact = report.fact("revenue")
    with ServerProcess(tiny_distribution(tiny_mllama_dir, documents=True), tmp_path / "srv") as server:
        proc = subprocess.run([lsc_python, str(Path(__file__).with_name("lsc_documents_script.py")), server.base_url,
                               str(pdf), fact.query], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["file"]["bytes"] == len(report.data) and out["file"]["filename"] == report.filename
    assert out["files_listed"]
    # attach waits a few seconds for small files (vector_stores.attach_wait_s): either status is right here
    assert out["attached_status"] in ("in_progress", "completed") and out["final_status"] == "completed"
    assert out["file_counts"] == 1
    assert out["hits"] and out["hits"][0]["file_id"] == out["file"]["id"]
    assert int(out["hits"][0]["page"]) == fact.page
    assert out["deleted"] is True


def test_official_client_responses_and_conversations(lsc_python, tiny_mllama_dir, tmp_path):
    from vistack.testing import documents as docs
    from vistack.testing.server import ServerProcess, tiny_distribution

    report = docs.annual_report_pdf()
    pdf = tmp_path / report.filename
    pdf.write_bytes(report.data)
    fact = report.fact("emea_q3")
    dist = tiny_distribution(tiny_mllama_dir, documents=True, vector_stores={"page_image_dpi": 72})
    with ServerProcess(dist, tmp_path / "srv") as server:
        proc = subprocess.run([lsc_python, str(Path(__file__).with_name("lsc_agent_script.py")), server.base_url,
                               str(pdf), fact.query], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] in ("completed", "incomplete")
    assert out["output_types"] == ["file_search_call", "message"] and out["top_page"] == fact.page
    assert out["citation"] == {"type": "file_citation", "file_id": out["file_id"], "page": fact.page}
    assert out["stream_first_last"][0] == "response.created"
    assert out["stream_first_last"][1] in ("response.completed", "response.incomplete")
    assert out["stream_has_search"]
    assert out["conversation_roles"] == ["user", "assistant"]
    assert out["previous"] and out["retrieved"] and out["listed"] and out["input_items"] == ["message"]
    assert out["deleted"] and out["conversation_deleted"]


def test_official_client_safety(lsc_python, tiny_mllama_dir, tmp_path):
    """shields list/retrieve/register/delete, safety.run_shield and moderations.create with the tiny Mllama as guard
    (its verdicts are noise: the shapes and the fail-closed policy are what is checked)."""
    from vistack.testing.server import ServerProcess, tiny_distribution

    with ServerProcess(tiny_distribution(tiny_mllama_dir, guard=True), tmp_path / "srv") as server:
        proc = subprocess.run([lsc_python, str(Path(__file__).with_name("lsc_safety_script.py")), server.base_url],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shields"] == ["llama-guard"]
    assert out["guard"] == {"identifier": "llama-guard", "provider_id": "llama-guard",
                            "provider_resource_id": "transformers/tiny-guard"}
    if out["run_shield"] is not None:
        assert out["run_shield"]["level"] == "error"
        assert out["run_shield"]["user_message"] == "I can't answer that. Can I help with something else?"
    assert out["moderation"]["model"] == "transformers/tiny-guard" and out["moderation"]["results"] == 2
    assert out["moderation"]["flagged_is_bool"]
    assert out["registered"] and out["deleted"] and out["not_found"] == "NotFoundError"


def test_official_client_tenant_isolation(lsc_python, tiny_mllama_dir, tmp_path):
    """API keys for two tenants through the official client: B sees none of A's objects, each lookup a 404."""
    from vistack.testing.server import ServerProcess, tiny_distribution

    dist = tiny_distribution(tiny_mllama_dir, documents=True)
    dist["server"] = {"auth": {"api_keys": [{"key": "sk-lsc-alice-1234567890", "principal": "alice", "tenant": "a"},
                                            {"key": "sk-lsc-bob-0987654321", "principal": "bob", "tenant": "b"}]}}
    with ServerProcess(dist, tmp_path / "srv") as server:
        proc = subprocess.run([lsc_python, str(Path(__file__).with_name("lsc_isolation_script.py")), server.base_url,
                               "sk-lsc-alice-1234567890", "sk-lsc-bob-0987654321"],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["alice_sees"] == {"store": True, "file": True}
    assert out["bob_lists"] == {"stores": [], "files": []}
    assert all(e == ["NotFoundError", 404] for e in out["bob_errors"].values()), out["bob_errors"]
    assert out["anonymous"] == ["AuthenticationError", 401] and out["health"] == "OK"
