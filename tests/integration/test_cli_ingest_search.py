"""``vistack ingest`` / ``vistack search`` as a user runs them: in-process and against a server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

pytestmark = pytest.mark.slow


def run_cli(*args: str, cwd, env_home, log_level: str | None = "WARNING") -> subprocess.CompletedProcess:
    """The CLI in a subprocess; ``log_level=None`` leaves VISTACK_LOG_LEVEL unset (the CLI's default, INFO)."""
    env = {**os.environ, "COLUMNS": "250", "VISTACK_HOME": str(env_home), "HF_HUB_OFFLINE": "1"}
    env.pop("VISTACK_LOG_LEVEL", None)
    if log_level is not None:
        env["VISTACK_LOG_LEVEL"] = log_level
    return subprocess.run([sys.executable, "-m", "vistack", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-docs")
    (root / "reports").mkdir()
    for doc in (docs.annual_report_pdf(), docs.invoice_pdf(), docs.encrypted_pdf()):
        (root / "reports" / doc.filename).write_bytes(doc.data)
    (root / "reports" / "notes.xyz").write_text("not a document type we ingest")
    return root


def test_ingest_and_search_in_process(folder, tiny_mllama_dir, tmp_path):
    dist = tmp_path / "dist.yaml"
    dist.write_text(yaml.safe_dump(tiny_distribution(tiny_mllama_dir, documents=True)))
    r = run_cli("ingest", str(folder / "reports"), str(folder / "missing.pdf"), "--store", "finance",
                "-d", str(dist), cwd=tmp_path, env_home=tmp_path / "home")
    out = r.stdout
    assert r.returncode == 1, out + r.stderr  # the encrypted file fails, so the run reports failure
    assert "completed" in out and "failed" in out and "password" in out.lower()
    assert "no such file or directory" in out
    assert "2 of 4 files ingested" in out
    r = run_cli("search", docs.INVOICE_NUMBER, "--store", "finance", "-d", str(dist), "-k", "3",
                cwd=tmp_path, env_home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    first_row = next(line for line in r.stdout.splitlines() if line.startswith("│ 1 "))
    assert docs.invoice_pdf().filename in first_row
    r = run_cli("search", "x", "--store", "nope", "-d", str(dist), cwd=tmp_path, env_home=tmp_path / "home")
    assert r.returncode == 1 and "no vector store named 'nope'" in r.stdout


def test_ingest_and_search_against_server(folder, tiny_mllama_dir, tmp_path):
    with ServerProcess(tiny_distribution(tiny_mllama_dir, documents=True), tmp_path / "srv") as server:
        report = folder / "reports" / docs.annual_report_pdf().filename
        # at the default log level (INFO): the progress polls must not print one httpx line each
        r = run_cli("ingest", str(report), "--store", "reports", "--server", server.base_url,
                    cwd=tmp_path, env_home=tmp_path / "home", log_level=None)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "1 of 1 files ingested, 6 pages" in r.stdout
        assert "HTTP Request:" not in r.stdout + r.stderr, r.stdout + r.stderr
        fact = docs.annual_report_pdf().fact("revenue")
        r = run_cli("search", fact.query, "--store", "reports", "--server", server.base_url, "-k", "2",
                    cwd=tmp_path, env_home=tmp_path / "home")
        assert r.returncode == 0, r.stderr
        first_row = next(line for line in r.stdout.splitlines() if line.startswith("│ 1 "))
        assert f"│ {fact.page} " in first_row


def test_server_unreachable_is_a_clear_error(tmp_path):
    r = run_cli("search", "x", "--store", "s", "--server", "http://127.0.0.1:9", cwd=tmp_path, env_home=tmp_path)
    assert r.returncode == 1
    assert "cannot reach the vistack server" in r.stderr and "Traceback" not in r.stderr
