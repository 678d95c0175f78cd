"""``vistack ask`` and ``vistack chat`` as a user runs them: against a server, and in-process.

Nothing asserts on what the tiny random model says; the cited pages come
from real retrieval (the search runs before the model) and are asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from vistack.client import Vistack
from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

pytestmark = pytest.mark.slow

SETTINGS = {"max_pages": 30, "page_image_dpi": 72}
REPORT = docs.annual_report_pdf()
FACT = REPORT.fact("revenue")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*args: str, cwd, env_home, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250", "VISTACK_HOME": str(env_home), "HF_HUB_OFFLINE": "1",
           "VISTACK_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "vistack", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600, input=stdin if stdin is not None else "", check=False)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-agent-docs") / REPORT.filename
    path.write_bytes(REPORT.data)
    return path


@pytest.fixture(scope="module")
def server(tiny_mllama_dir, tmp_path_factory, report_file):
    dist = tiny_distribution(tiny_mllama_dir, documents=True, vector_stores=SETTINGS)
    with ServerProcess(dist, tmp_path_factory.mktemp("cli-agent")) as proc:
        with Vistack(proc.base_url, timeout=120) as client:
            assert client.ingest(report_file, "finance", timeout_s=180).ok
        yield proc


def page_row(stdout: str) -> str:
    """The cited-pages table row of the report."""
    return next(line for line in stdout.splitlines() if line.startswith("│") and REPORT.filename in line)


def test_ask_against_server_prints_answer_pages_and_saves_them(server, tmp_path):
    out_dir = tmp_path / "pages"
    r = run_cli("ask", FACT.query, "--store", "finance", "--strategy", "top1", "--server", server.base_url,
                "--save-pages", str(out_dir), cwd=tmp_path, env_home=tmp_path / "home")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"searching: {FACT.query}" in r.stdout and "cited pages" in r.stdout
    row = page_row(r.stdout)
    assert f"│ {FACT.page} " in row and re.search(r"file-[0-9a-f]+", row) and re.search(r"\d+\.\d+,\d", row)
    saved = out_dir / f"northwind-annual-report-2025-p{FACT.page}.png"
    assert saved.read_bytes().startswith(PNG_MAGIC) and "saved 1 page image" in r.stdout
    assert "Traceback" not in r.stderr and "HTTP Request" not in r.stderr


def test_ask_json(server, tmp_path):
    r = run_cli("ask", FACT.query, "--store", "finance", "--strategy", "stitch", "--pages", "2", "--json",
                "--max-tokens", "16", "--server", server.base_url, cwd=tmp_path, env_home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # nothing but the JSON on stdout
    assert data["response_id"].startswith("resp_") and data["status"] in ("completed", "incomplete")
    assert data["results"][0]["attributes"]["page"] == FACT.page
    assert {c["page"] for c in data["citations"]} >= {FACT.page} and len({c["page"] for c in data["citations"]}) == 2
    assert all(c["filename"] == REPORT.filename and c["page_image_file_id"] for c in data["citations"])
    assert data["saved_pages"] == [] and data["usage"]["output_tokens"] <= 16


def test_ask_in_process_with_distribution_file(tiny_mllama_dir, report_file, tmp_path):
    dist = tmp_path / "dist.yaml"
    dist.write_text(yaml.safe_dump(tiny_distribution(tiny_mllama_dir, documents=True, vector_stores=SETTINGS)))
    home = tmp_path / "home"
    r = run_cli("ingest", str(report_file), "--store", "local-docs", "-d", str(dist), cwd=tmp_path, env_home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli("ask", FACT.query, "--store", "local-docs", "-d", str(dist), "--json", "--save-pages",
                str(tmp_path / "pages"), cwd=tmp_path, env_home=home)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["citations"] and data["results"][0]["attributes"]["page"] == FACT.page
    assert data["saved_pages"] and all(Path(p).read_bytes().startswith(PNG_MAGIC) for p in data["saved_pages"])


def test_chat_from_stdin_keeps_a_conversation(server, tmp_path):
    r = run_cli("chat", "--store", "finance", "--max-tokens", "16", "--server", server.base_url, cwd=tmp_path,
                env_home=tmp_path / "home", stdin="What was total revenue?\n\n/nonsense\nAnd the headcount?\n")
    assert r.returncode == 0, r.stdout + r.stderr
    conversation = re.search(r"conversation (conv_[0-9a-f]{48})", r.stdout).group(1)
    assert r.stdout.count("cited pages") == 2 and "unknown command /nonsense" in r.stdout
    assert "you> What was total revenue?" in r.stdout and "you> And the headcount?" in r.stdout
    items = httpx.get(f"{server.base_url}/v1/conversations/{conversation}/items", params={"order": "asc"},
                      timeout=30).json()["data"]
    messages = [(i["role"], i["content"][0]["text"] if i["content"] else "") for i in items if i["type"] == "message"]
    assert [m[0] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [m[1] for m in messages[::2]] == ["What was total revenue?", "And the headcount?"]


def test_chat_new_conversation_and_exit(server, tmp_path):
    r = run_cli("chat", "--server", server.base_url, "--max-tokens", "16", cwd=tmp_path,
                env_home=tmp_path / "home", stdin="hello\n/new\n/exit\nnever asked\n")
    assert r.returncode == 0, r.stdout + r.stderr
    first, second = re.findall(r"conversation (conv_[0-9a-f]{48})", r.stdout)
    assert first != second and "never asked" not in r.stdout and "no pages cited" in r.stdout
    items = httpx.get(f"{server.base_url}/v1/conversations/{first}/items", timeout=30).json()["data"]
    assert len(items) == 2


def test_unknown_store_and_unreachable_server_exit_1(server, tmp_path):
    for command in ("ask", "chat"):
        args = [command, "what?"] if command == "ask" else [command]
        r = run_cli(*args, "--store", "nope", "--server", server.base_url, cwd=tmp_path, env_home=tmp_path / "h")
        assert r.returncode == 1, r.stdout + r.stderr
        assert "no vector store named 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("ask", "x", "--store", "s", "--server", "http://127.0.0.1:9", cwd=tmp_path, env_home=tmp_path / "h")
    assert r.returncode == 1 and "cannot reach the vistack server" in r.stderr and "Traceback" not in r.stderr
