"""Llama Stack v0.7.1 conformance: its own integration tests, live, against a fresh vistack.

    .venv/bin/python benchmarks/conformance.py [--json out.json] [--compare old.json]
        [--tests "tests/integration/<file>[::<test>] ..."] [-k EXPR] [--ls-mirror DIR]
        [--fixed-reply [TEXT]] [--reference] [--url URL]

Starts ``vistack serve`` on a free loopback port with the tiny random Mllama (chat, vision
and the Llama Guard shield's model), a tiny random Prompt Guard, MiniLM embeddings, files and
vector stores (``documents=True``), default max tokens 64; runs
``../shared/conformance/run.sh URL`` with the PEER_* variables taken from the server's own
``/v1/models`` and ``/v1/shields``; parses pytest's junit XML (``-rA`` lines as a fallback)
into a per-test passed / failed / error / skipped list; prints the summary; optionally writes
it as JSON (``--json``) and compares it with an earlier JSON report (``--compare``: newly
passing, newly failing; node ids are compared with model ids, the vector_io provider id and
the embedding dimension masked, so a vistack run compares with a ``--reference`` run). Servers
are stopped by the PIDs this script started.

Other servers:
  --fixed-reply   vistack, but the text model always answers a fixed text and the Llama Guard
                  model answers "safe" (the reference method: separates vistack's behaviour from
                  what a random model says; the vision model stays the tiny Mllama).
  --reference     the real llama-stack 0.7.1 from the harness venv, offline, on a built-in fake
                  OpenAI-compatible engine (fixed reply, 768-dim hash embeddings, guard "safe"):
                  the baseline to --compare against.
  --url URL       a server that is already running (give --text-model etc. when its ids differ).

The harness (Llama Stack's tests at tag v0.7.1 and a Python 3.12 venv) lives in
``${PEER_ROOT:-${TMPDIR:-/tmp}/ls-peer}``; when its venv is missing, ``setup.sh`` builds it
from a git directory of llamastack/llama-stack holding tag v0.7.1 (``--ls-mirror`` or env
``LS_MIRROR``; a bare clone is fine).

Exit status: 0 when the tests ran (whatever they scored), 1 with ``--fail-on-regression`` when
a test passing in ``--compare`` no longer passes, 2 when the harness or server could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx

from vistack.testing.server import free_port, log_tail, stop_process, wait_healthy

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE_DIR = (REPO / ".." / "shared" / "conformance").resolve()
PASSED, FAILED, ERROR, SKIPPED, XFAILED = "passed", "failed", "error", "skipped", "xfailed"
NOT_PASSING = (FAILED, ERROR)
FIXED_REPLY = "Hello! This is a fixed reply."


def peer_root() -> Path:
    return Path(os.environ.get("PEER_ROOT") or Path(os.environ.get("TMPDIR") or "/tmp") / "ls-peer")


# --------------------------------------------------------------------------- harness setup


def ensure_harness(root: Path, ls_mirror: str | None, conformance_dir: Path) -> None:
    """Run setup.sh when the harness venv is missing; explain what to pass when it cannot."""
    if (root / "venv" / "bin" / "python").exists() and (root / "src" / "tests" / "integration").is_dir():
        return
    if not ls_mirror:
        print(
            f"error: the conformance harness is not set up ({root}/venv is missing) and no llama-stack\n"
            "mirror was given. Pass --ls-mirror DIR (or set LS_MIRROR=DIR): a git directory of\n"
            "github.com/llamastack/llama-stack that holds the tag v0.7.1 (a bare clone is fine), e.g.\n"
            "    git clone --bare https://github.com/llamastack/llama-stack /path/llama-stack.git\n"
            f"    {sys.executable} benchmarks/conformance.py --ls-mirror /path/llama-stack.git\n"
            "setup.sh also needs Python 3.12 (pyenv, python3.12 on PATH, or PEER_PYTHON) and PyPI.",
            file=sys.stderr,
        )
        sys.exit(2)
    setup = conformance_dir / "setup.sh"
    print(f"== setting up the harness in {root} (LS_MIRROR={ls_mirror}); this takes a few minutes", flush=True)
    env = {**os.environ, "LS_MIRROR": ls_mirror, "PEER_ROOT": str(root)}
    rc = subprocess.call(["bash", str(setup)], env=env)
    if rc != 0:
        print(f"error: {setup} failed with status {rc}", file=sys.stderr)
        sys.exit(2)


# --------------------------------------------------------------------------- the server


def start_server(workdir: Path, max_tokens: int, fixed_reply: str | None = None) -> Any:
    from vistack.testing.server import ServerProcess, tiny_distribution
    from vistack.testing.tiny_classifier import build_tiny_prompt_guard
    from vistack.testing.tiny_models import build_tiny_mllama

    print(f"== building the tiny models in {workdir}", flush=True)
    model = build_tiny_mllama(workdir / "tiny-mllama")
    prompt_guard = build_tiny_prompt_guard(workdir / "tiny-prompt-guard")
    dist = tiny_distribution(model, name="conformance", documents=True, guard=True, prompt_guard_dir=prompt_guard)
    for provider in dist["providers"]["inference"]:
        if provider["provider_type"] == "inline::transformers":
            provider["config"]["default_max_tokens"] = max_tokens
    if fixed_reply is not None:
        add_fixed_reply_models(dist, workdir, fixed_reply)
    server = ServerProcess(dist, workdir / "server", startup_timeout_s=300)
    print("== starting vistack", flush=True)
    server.start()
    print(f"== vistack is up at {server.base_url} (pid {server.proc.pid}, log {server.log_path})", flush=True)
    return server


def add_fixed_reply_models(dist: dict[str, Any], workdir: Path, reply: str) -> None:
    """The reference method: a chat model that always answers ``reply`` and a guard that answers ``safe``.

    Both are ``inline::replay`` doubles (vistack.testing.replay) with an empty script, so every call
    gets the provider's ``default_text``; the Llama Guard shield is pointed at the guard double.
    """
    for pid, text in (("replay", reply), ("replay-guard", "safe")):
        script = workdir / f"{pid}-script.jsonl"
        script.write_text("")
        dist["providers"]["inference"].append({
            "provider_id": pid, "provider_type": "inline::replay", "module": "vistack.testing.replay",
            "config": {"script": str(script), "default_text": text}})
    dist["models"] += [
        {"model_id": "fixed-reply", "provider_id": "replay", "model_type": "llm", "metadata": {"vision": True}},
        {"model_id": "safe-guard", "provider_id": "replay-guard", "model_type": "llm", "metadata": {"vision": True}},
    ]
    for shield in dist["shields"]:
        if shield["provider_id"] == "llama-guard":
            shield["provider_shield_id"] = "replay-guard/safe-guard"


def _items(body: Any) -> list[dict[str, Any]]:
    return body.get("data", []) if isinstance(body, dict) else body


def discover_ids(url: str, text_model: str = "tiny-mllama") -> dict[str, str]:
    """The PEER_* values from what the server lists: the text model, MiniLM, the Llama Guard shield.

    The vision model is always the tiny Mllama; the text model is ``text_model`` (tiny-mllama, or
    fixed-reply with ``--fixed-reply``).
    """
    found: dict[str, str] = {}
    models = _items(httpx.get(f"{url}/v1/models", timeout=30).json())
    for m in models:
        mid, meta = m.get("id") or m.get("identifier", ""), m.get("custom_metadata") or m.get("metadata") or {}
        mtype = meta.get("model_type") or m.get("model_type")
        if mtype == "llm" and mid.split("/")[-1] == text_model:
            found["text"] = mid
        if mtype == "llm" and mid.split("/")[-1] == "tiny-mllama":
            found["vision"] = mid
        elif mtype == "embedding" and "MiniLM-L6" in mid and "embed" not in found:
            found["embed"] = mid
            found["dim"] = str(int(meta.get("embedding_dimension") or 384))
    try:
        resp = httpx.get(f"{url}/v1/shields", timeout=30)
        shields = _items(resp.json()) if resp.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        shields = []
    for s in shields:
        sid = s.get("identifier") or s.get("shield_id") or s.get("id", "")
        if s.get("provider_id") == "llama-guard" or sid == "llama-guard":
            found["shield"] = sid
            break
    return found


# --------------------------------------------------------------------------- the reference server
#
# ``--reference``: the real llama-stack 0.7.1 (from the harness venv) offline, with a dumb fake
# OpenAI-compatible engine (fixed reply, 768-dim hash embeddings, "safe" to Llama Guard prompts),
# as ../shared/conformance/README.md describes. Its --json report is the baseline for --compare.

REF_CONFIG = """\
version: 2
distro_name: conformance-reference
apis: [files, file_processors, inference, responses, safety, tool_runtime, vector_io]
providers:
  inference:
  - {provider_id: openai, provider_type: "remote::openai", config: {base_url: "ENGINE_URL", api_key: fake}}
  vector_io:
  - {provider_id: faiss, provider_type: "inline::faiss",
     config: {persistence: {namespace: "vector_io::faiss", backend: kv_default}}}
  files:
  - {provider_id: builtin-files, provider_type: "inline::localfs",
     config: {storage_dir: "STATE/files", metadata_store: {table_name: files_metadata, backend: sql_default}}}
  file_processors:
  - {provider_id: pypdf, provider_type: "inline::pypdf"}
  safety:
  - {provider_id: llama-guard, provider_type: "inline::llama-guard", config: {excluded_categories: []}}
  responses:
  - provider_id: builtin
    provider_type: "inline::builtin"
    config:
      persistence:
        agent_state: {namespace: agents, backend: kv_default}
        responses: {table_name: responses, backend: sql_default, max_write_queue_size: 10000, num_writers: 4}
  tool_runtime:
  - {provider_id: file-search, provider_type: "inline::file-search"}
  - {provider_id: model-context-protocol, provider_type: "remote::model-context-protocol"}
storage:
  backends:
    kv_default: {type: kv_sqlite, db_path: "STATE/kvstore.db"}
    sql_default: {type: sql_sqlite, db_path: "STATE/sql_store.db"}
  stores:
    metadata: {namespace: registry, backend: kv_default}
    inference: {table_name: inference_store, backend: sql_default, max_write_queue_size: 10000, num_writers: 4}
    conversations: {table_name: openai_conversations, backend: sql_default}
    prompts: {namespace: prompts, backend: kv_default}
    connectors: {namespace: connectors, backend: kv_default}
registered_resources:
  models:
  - {model_id: fake-llm, provider_id: openai, provider_model_id: fake-llm, model_type: llm}
  - {model_id: fake-embed, provider_id: openai, provider_model_id: fake-embed, model_type: embedding,
     metadata: {embedding_dimension: 768}}
  shields:
  - {shield_id: llama-guard, provider_id: llama-guard, provider_shield_id: openai/fake-llm}
  vector_dbs: []
  datasets: []
  scoring_fns: []
  benchmarks: []
server: {port: 8321}
vector_stores:
  default_provider_id: faiss
  default_embedding_model: {provider_id: openai, model_id: fake-embed}
safety: {default_shield_id: llama-guard}
connectors: []
"""
REF_IDS = {"text": "openai/fake-llm", "vision": "openai/fake-llm", "embed": "openai/fake-embed", "dim": "768",
           "shield": "llama-guard"}


def fake_engine(port: int) -> None:
    """A dumb OpenAI-compatible engine (stdlib only): models fake-llm / fake-embed."""
    import base64
    import hashlib
    import struct
    import uuid
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    def embed(text: str, dims: int | None) -> list[float]:
        raw = b"".join(hashlib.sha256(f"{i}:{text}".encode()).digest() for i in range(24))
        v = [(b - 127.5) / 127.5 for b in raw[:768]][: dims or 768]
        norm = sum(x * x for x in v) ** 0.5 or 1.0
        return [x / norm for x in v]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, obj: Any, code: int = 200) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/").endswith("/models"):
                return self._json({"object": "list", "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in ("fake-llm", "fake-embed")]})
            self._json({"error": {"message": "not found"}}, 404)

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            model, created = body.get("model"), int(time.time())
            if self.path.endswith("/embeddings"):
                inputs = [body["input"]] if isinstance(body.get("input"), str) else body.get("input") or []
                data = []
                for i, text in enumerate(inputs):
                    vec: Any = embed(str(text), body.get("dimensions"))
                    if body.get("encoding_format") == "base64":
                        vec = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
                    data.append({"object": "embedding", "index": i, "embedding": vec})
                return self._json({"object": "list", "data": data, "model": model,
                                   "usage": {"prompt_tokens": 1, "total_tokens": 1}})
            chat = self.path.endswith("/chat/completions")
            if not chat and not self.path.endswith("/completions"):
                return self._json({"error": {"message": "not found"}}, 404)
            guard = chat and "Task: Check if there is unsafe content" in json.dumps(body.get("messages"))
            words = ("safe" if guard else FIXED_REPLY).split(" ")
            limit = body.get("max_tokens") or body.get("max_completion_tokens")
            finish = "length" if limit and len(words) > limit else "stop"
            text = " ".join(words[:limit] if limit else words)
            n, cid = body.get("n") or 1, ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
            usage = {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10 + len(text.split())}
            obj = "chat.completion" if chat else "text_completion"
            if not body.get("stream"):
                choices = [({"index": i, "finish_reason": finish, "logprobs": None,
                             "message": {"role": "assistant", "content": text}} if chat else
                            {"index": i, "finish_reason": finish, "logprobs": None, "text": text}) for i in range(n)]
                return self._json({"id": cid, "object": obj, "created": created, "model": model,
                                   "choices": choices, "usage": usage})
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            chunk_obj = "chat.completion.chunk" if chat else "text_completion"

            def send(choices: list[dict[str, Any]], **extra: Any) -> None:
                event = {"id": cid, "object": chunk_obj, "created": created, "model": model, "choices": choices, **extra}
                self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                self.wfile.flush()

            pieces = [w if j == len(text.split(" ")) - 1 else w + " " for j, w in enumerate(text.split(" "))]
            for i in range(n):
                for j, piece in enumerate(pieces):
                    delta = {"content": piece, **({"role": "assistant"} if j == 0 else {})}
                    send([{"index": i, "finish_reason": None, "logprobs": None,
                           **({"delta": delta} if chat else {"text": piece})}])
                send([{"index": i, "finish_reason": finish, "logprobs": None, **({"delta": {}} if chat else {"text": ""})}])
            if (body.get("stream_options") or {}).get("include_usage"):
                send([], usage=usage)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


class ReferenceServer:
    """``llama stack run`` (harness venv) on a fake engine; both subprocesses stopped by their PIDs."""

    def __init__(self, workdir: Path, root: Path, startup_timeout_s: float = 180.0) -> None:
        self.workdir, self.root, self.timeout = workdir, root, startup_timeout_s
        self.engine_port, self.port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "reference-server.log"
        self.engine: subprocess.Popen | None = None
        self.proc: subprocess.Popen | None = None

    def start(self) -> ReferenceServer:
        llama = self.root / "venv" / "bin" / "llama"
        if not llama.exists():
            raise RuntimeError(f"{llama} not found: the harness venv (setup.sh) has no llama-stack server")
        state = self.workdir / "reference-state"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        config = self.workdir / "reference-config.yaml"
        config.write_text(REF_CONFIG.replace("ENGINE_URL", f"http://127.0.0.1:{self.engine_port}/v1")
                          .replace("STATE", str(state)))
        with open(self.workdir / "fake-engine.log", "wb") as log:
            self.engine = subprocess.Popen([sys.executable, __file__, "--fake-engine", str(self.engine_port)],
                                           stdout=log, stderr=subprocess.STDOUT)
        env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(self.root / "tiktoken_cache"), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "SQLITE_STORE_DIR": str(state)}
        for key in ("OPENAI_API_KEY", "LLAMA_STACK_CONFIG"):
            env.pop(key, None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([str(llama), "stack", "run", str(config), "--port", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        try:
            wait_healthy(self.proc, self.base_url, self.timeout, "reference server (llama stack run)",
                         lambda: log_tail(self.log_path, 6000), poll_s=0.5)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in (self.proc, self.engine):
            stop_process(proc, timeout_s=15)


# --------------------------------------------------------------------------- results


def _nodeid(src: Path, classname: str, name: str, file_attr: str | None) -> str:
    """junit (classname, name) -> pytest node id, resolving which dotted prefix is the module file."""
    parts = classname.split(".") if classname else []
    if file_attr:
        mod = file_attr.replace(os.sep, "/")
        depth = len(Path(mod).with_suffix("").parts)
        return "::".join([mod, *parts[depth:], name])
    for i in range(len(parts), 0, -1):
        candidate = "/".join(parts[:i]) + ".py"
        if (src / candidate).is_file():
            return "::".join([candidate, *parts[i:], name])
    return "::".join([p for p in (classname.replace(".", "/") + ".py" if classname else "", name) if p])


def parse_junit(path: Path, src: Path) -> dict[str, dict[str, Any]]:
    tests: dict[str, dict[str, Any]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        nodeid = _nodeid(src, case.get("classname", ""), case.get("name", ""), case.get("file"))
        outcome, message = PASSED, ""
        for child in case:
            tag = child.tag
            text = (child.get("message") or "").strip() or (child.text or "").strip()
            if tag == "failure":
                outcome, message = FAILED, text
            elif tag == "error" and outcome != FAILED:
                # an error in teardown after a pass still breaks the test
                outcome, message = ERROR, text
            elif tag == "skipped" and outcome == PASSED:
                outcome = XFAILED if child.get("type") == "pytest.xfail" else SKIPPED
                message = text
        prev = tests.get(nodeid)
        if prev and prev["outcome"] in NOT_PASSING and outcome not in NOT_PASSING:
            continue  # keep the worse of a call failure and a teardown entry
        tests[nodeid] = {"outcome": outcome, "message": _short(message), "time_s": float(case.get("time") or 0)}
    return tests


_RA_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\s+(?:\[\d+\]\s+)?(\S+)(?:\s+-\s+(.*))?$")


def parse_ra(text: str) -> dict[str, dict[str, Any]]:
    """Fallback: pytest ``-rA`` short summary lines (no junit XML, e.g. pytest crashed late)."""
    mapping = {"PASSED": PASSED, "XPASS": PASSED, "FAILED": FAILED, "ERROR": ERROR, "SKIPPED": SKIPPED,
               "XFAIL": XFAILED}
    tests: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        m = _RA_LINE.match(line.strip())
        if m and "::" in m.group(2):
            tests[m.group(2)] = {"outcome": mapping[m.group(1)], "message": _short(m.group(3) or ""), "time_s": 0.0}
    return tests


def _short(message: str, limit: int = 600) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def count(tests: dict[str, dict[str, Any]]) -> dict[str, int]:
    out = {k: 0 for k in (PASSED, FAILED, ERROR, SKIPPED, XFAILED)}
    for t in tests.values():
        out[t["outcome"]] += 1
    return out


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].removeprefix("tests/integration/")


def print_summary(tests: dict[str, dict[str, Any]], pytest_summary: str, show_failures: bool) -> None:
    by_file: dict[str, dict[str, int]] = {}
    for nodeid, t in tests.items():
        by_file.setdefault(_file_of(nodeid), {k: 0 for k in (PASSED, FAILED, ERROR, SKIPPED, XFAILED)})
        by_file[_file_of(nodeid)][t["outcome"]] += 1
    print("\n== per file (passed / failed+error / skipped)")
    width = max((len(f) for f in by_file), default=10)
    for f in sorted(by_file):
        c = by_file[f]
        print(f"  {f:<{width}}  {c[PASSED]:4d}  {c[FAILED] + c[ERROR]:4d}  {c[SKIPPED] + c[XFAILED]:4d}")
    if show_failures:
        bad = sorted(n for n, t in tests.items() if t["outcome"] in NOT_PASSING)
        if bad:
            print(f"\n== not passing ({len(bad)})")
            for n in bad:
                print(f"  {tests[n]['outcome'].upper():6s} {n}\n         {tests[n]['message'][:220]}")
    c = count(tests)
    print(f"\n== score: {c[PASSED]} passed, {c[FAILED]} failed, {c[ERROR]} errors, {c[SKIPPED]} skipped"
          + (f", {c[XFAILED]} xfailed" if c[XFAILED] else "") + f"  (pytest: {pytest_summary or 'no summary line'})")


def _canonical(tests: dict[str, dict[str, Any]], peer_env: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Node ids with the run's model ids, vector_io provider id and embedding dimension replaced by
    placeholders, so runs on other models or servers (a reference llama-stack) compare."""
    names = {"text_model": "<llm>", "vision_model": "<llm>", "embed_model": "<embed>"}
    subs = [(v, names[k]) for k, v in peer_env.items() if k in names and v]
    subs.sort(key=lambda kv: -len(kv[0]))
    out = {}
    for nodeid, t in tests.items():
        for value, placeholder in subs:
            nodeid = nodeid.replace(value, placeholder)
        nodeid = re.sub(r"vector_io=[a-z]+(?:-vec)?", "vector_io=<vio>", nodeid)
        out[re.sub(r"dim=\d+", "dim=<n>", nodeid)] = t
    return out


def compare(old: dict[str, Any], new_report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Print (and return) the tests newly passing and newly failing since ``old``."""
    old_tests = _canonical(old.get("tests", {}), old.get("meta", {}).get("peer_env", {}))
    new = _canonical(new_report["tests"], new_report["meta"]["peer_env"])
    newly_passing = sorted(n for n, t in new.items()
                           if t["outcome"] == PASSED and old_tests.get(n, {}).get("outcome") != PASSED)
    newly_failing = sorted(n for n, t in new.items()
                           if t["outcome"] in NOT_PASSING and old_tests.get(n, {}).get("outcome") not in NOT_PASSING)
    oc, nc = old.get("counts") or count(old_tests), count(new)
    print(f"\n== compared with {old.get('meta', {}).get('finished', 'the old report')}: "
          f"passed {oc.get(PASSED, 0)} -> {nc[PASSED]}, failed+error "
          f"{oc.get(FAILED, 0) + oc.get(ERROR, 0)} -> {nc[FAILED] + nc[ERROR]}")
    print(f"  newly passing ({len(newly_passing)}):")
    for n in newly_passing:
        print(f"    + {n}  (was {old_tests.get(n, {}).get('outcome', 'absent')})")
    print(f"  newly failing ({len(newly_failing)}):")
    for n in newly_failing:
        print(f"    - {n}  (was {old_tests.get(n, {}).get('outcome', 'absent')}): {new[n]['message'][:200]}")
    gone = sorted(set(old_tests) - set(new))
    if gone:
        print(f"  not run this time ({len(gone)}): " + ", ".join(gone[:10]) + (" ..." if len(gone) > 10 else ""))
    return newly_passing, newly_failing


# --------------------------------------------------------------------------- main


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_tests(url: str, ids: dict[str, str], args: argparse.Namespace, out_dir: Path) -> tuple[int, Path, Path, str]:
    junit, log = out_dir / "junit.xml", out_dir / "pytest.log"
    env = {**os.environ, "PEER_ROOT": str(args.peer_root),
           "PEER_TEXT_MODEL": ids.get("text", ""), "PEER_VISION_MODEL": ids.get("vision", ids.get("text", "")),
           "PEER_EMBED_MODEL": ids.get("embed", ""), "PEER_EMBED_DIM": ids.get("dim", ""),
           "PEER_SHIELD": ids.get("shield", ""), "PEER_TIMEOUT": str(args.timeout)}
    for key in ("PEER_TESTS", "PEER_K"):
        env.pop(key, None)
    if args.tests:
        env["PEER_TESTS"] = args.tests
    if args.k:
        env["PEER_K"] = args.k
    shown = {k: v for k, v in env.items() if k.startswith("PEER_") and v}
    print("== running " + " ".join(f"{k}={v!r}" for k, v in shown.items())
          + f" bash {args.conformance_dir / 'run.sh'} {url}", flush=True)
    cmd = ["bash", str(args.conformance_dir / "run.sh"), url, f"--junitxml={junit}", "-o", "junit_family=xunit1", "-rA"]
    summary = ""
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            if args.verbose:
                sys.stdout.write(line)
            elif re.match(r"^(tests/\S+ )?[.sFExX]+\s+\[\s*\d+%\]$", line.strip()) or "ERROR:" in line:
                sys.stdout.write(line)  # the progress dots, and harness errors
            if re.match(r"^(=+ )?\d+ (passed|failed|skipped|errors?|deselected)", line.strip()):
                summary = re.sub(r"^=+ | =+$", "", line.strip())
        rc = proc.wait()
    return rc, junit, log, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, help="write the per-test report here")
    ap.add_argument("--compare", type=Path, help="an earlier --json report: list newly passing / failing tests")
    ap.add_argument("--fail-on-regression", action="store_true", help="exit 1 when --compare finds newly failing tests")
    ap.add_argument("--tests", help="PEER_TESTS: space-separated test files / node ids (default: run.sh's selection)")
    ap.add_argument("-k", help="PEER_K: an extra pytest -k expression")
    ap.add_argument("--ls-mirror", default=os.environ.get("LS_MIRROR"),
                    help="git dir of llamastack/llama-stack with tag v0.7.1, for setup.sh (env LS_MIRROR)")
    ap.add_argument("--peer-root", type=Path, default=peer_root(), help="harness dir (env PEER_ROOT)")
    ap.add_argument("--conformance-dir", type=Path, default=CONFORMANCE_DIR, help="where run.sh and setup.sh live")
    ap.add_argument("--url", help="test this running server instead of starting vistack")
    ap.add_argument("--reference", action="store_true",
                    help="run against the real llama-stack 0.7.1 (harness venv) on a fake engine instead of vistack: "
                         "the baseline report for --compare")
    ap.add_argument("--fake-engine", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--text-model", help="override the discovered PEER_TEXT_MODEL")
    ap.add_argument("--vision-model", help="override the discovered PEER_VISION_MODEL")
    ap.add_argument("--embed-model", help="override PEER_EMBED_MODEL")
    ap.add_argument("--embed-dim", help="override PEER_EMBED_DIM")
    ap.add_argument("--shield", help="override PEER_SHIELD ('' for none)")
    ap.add_argument("--fixed-reply", nargs="?", const=FIXED_REPLY, metavar="TEXT",
                    help="the reference method: the text model is a double that always answers TEXT and the "
                         "Llama Guard shield's model answers 'safe' (the vision model stays the tiny Mllama); "
                         "separates vistack's behaviour from what a random model says")
    ap.add_argument("--max-tokens", type=int, default=64, help="the tiny model's default max tokens (64)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("PEER_TIMEOUT") or 120), help="per test, s")
    ap.add_argument("--workdir", type=Path, help="models, server state and logs (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the temp workdir (server log, pytest log, junit)")
    ap.add_argument("-v", "--verbose", action="store_true", help="stream pytest's full output")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not list the failing tests")
    args = ap.parse_args()
    if args.fake_engine:
        fake_engine(args.fake_engine)
        return 0

    if not (args.conformance_dir / "run.sh").is_file():
        print(f"error: {args.conformance_dir}/run.sh not found (pass --conformance-dir)", file=sys.stderr)
        return 2
    ensure_harness(args.peer_root, args.ls_mirror, args.conformance_dir)
    old = json.loads(args.compare.read_text()) if args.compare else None

    temp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="vistack-conformance-")) if temp else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    server, started = None, dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    keep = args.keep or not temp
    try:
        if args.url:
            url = args.url.rstrip("/")
        elif args.reference:
            print("== starting the reference llama-stack 0.7.1 on a fake engine", flush=True)
            try:
                server = ReferenceServer(workdir, args.peer_root).start()
            except (RuntimeError, TimeoutError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                keep = True
                return 2
            url = server.base_url
            print(f"== reference server at {url} (pid {server.proc.pid}, log {server.log_path})", flush=True)
        else:
            try:
                server = start_server(workdir, args.max_tokens, args.fixed_reply)
            except (RuntimeError, TimeoutError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                keep = True
                return 2
            url = server.base_url
        try:
            ids = dict(REF_IDS) if args.reference else discover_ids(
                url, "fixed-reply" if args.fixed_reply is not None else "tiny-mllama")
        except (httpx.HTTPError, ValueError) as exc:
            ids = {}
            print(f"warning: could not list models/shields at {url}: {exc}", file=sys.stderr)
        for key, override in (("text", args.text_model), ("vision", args.vision_model), ("embed", args.embed_model),
                              ("dim", args.embed_dim), ("shield", args.shield)):
            if override is not None:
                ids[key] = override
        for key, what in (("text", "text model"), ("embed", "embedding model"), ("shield", "shield")):
            if not ids.get(key):
                print(f"warning: no {what} found at {url}; the tests that need one will skip", file=sys.stderr)

        rc, junit, log, summary = run_tests(url, ids, args, workdir)
        if junit.is_file():
            tests = parse_junit(junit, args.peer_root / "src")
        else:
            tests = parse_ra(log.read_text(errors="replace"))
        if not tests:
            print(f"error: no test results (run.sh exit {rc}); see {log}", file=sys.stderr)
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            keep = True
            return 2
        if server is not None and server.proc.poll() is not None:
            print(f"warning: the server died during the run (exit {server.proc.returncode}); "
                  f"log: {server.log_path}", file=sys.stderr)
            keep = True

        print_summary(tests, summary, show_failures=not args.quiet)
        report = {
            "meta": {"url": url, "started": started.isoformat(timespec="seconds"),
                     "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "duration_s": round(time.monotonic() - t0, 1),
                     "server": "llama-stack 0.7.1 (reference, fake engine)" if args.reference else
                     ("external" if args.url else "vistack"), "vistack_rev": git_rev(),
                     "peer_env": {"text_model": ids.get("text"), "vision_model": ids.get("vision"),
                                  "fixed_reply": args.fixed_reply, "embed_model": ids.get("embed"),
                                  "embed_dim": ids.get("dim"), "shield": ids.get("shield"),
                                  "tests": args.tests, "k": args.k},
                     "pytest_summary": summary, "pytest_exit": rc},
            "counts": count(tests),
            "tests": dict(sorted(tests.items())),
        }
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1) + "\n")
            print(f"== wrote {args.json}")
        if keep:
            print(f"== kept {workdir} (pytest.log, junit.xml, server/)")
        if old is not None:
            _, newly_failing = compare(old, report)
            if newly_failing and args.fail_on_regression:
                return 1
        return 0
    finally:
        if server is not None:
            server.stop()
        if temp and not keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
