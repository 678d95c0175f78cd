"""Fuzzing the real server with bad input: every bad input gets a clear 4xx, never a 5xx.

One ``vistack serve`` (tiny Mllama, MiniLM, files, vector stores, responses, a
tiny Llama Guard shield) with small caps (``max_pages`` 50, 2 MiB JSON bodies)
is sent, through httpx and the openai SDK:

* broken and hostile documents (corrupt, truncated, encrypted, zero-page and
  empty PDFs, decompression / expansion / pixel bombs, a 10,000-page PDF,
  images whose header lies, random bytes, invalid UTF-8): each must be refused
  at upload or attach (4xx) or end as a vector-store file ``failed`` with a
  ``last_error`` that names the problem;
* hostile upload filenames (traversal, control characters, 10k characters,
  RTL override): a sanitized name or a 400, and nothing written outside the
  files directory;
* broken multipart forms;
* bad JSON to every POST route the OpenAPI document lists: malformed, wrong
  types, invalid UTF-8, deeply nested, huge strings, over
  ``server.max_request_bytes`` (413);
* request bodies generated with Hypothesis from each route's OpenAPI schema
  (valid or not: 2xx or 4xx, never 5xx);
* odd path parameters and query strings on every GET/DELETE route;
* bad images in chat, responses, moderations and run-shield requests.

Every request is counted; every 5xx (and every request left without an answer)
is recorded with its input. The last test asserts there were none and that
the server still answers ``/v1/health``; the module prints
``fuzz: N inputs, M 5xx``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from PIL import Image

from vistack.testing import bad_inputs as bad
from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.slow

DISTRO = "fuzz"
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_UPLOAD_BYTES = 24 * 1024 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024
SETTINGS = {"max_pages": 50, "page_image_dpi": 36, "max_image_pixels": 20_000_000, "ocr": False, "attach_wait_s": 0}
HYPOTHESIS_EXAMPLES = int(os.environ.get("VISTACK_FUZZ_EXAMPLES", "25"))
INGEST_DEADLINE_S = 120.0
FILE_ID = re.compile(r"^file-[0-9a-f]{1,64}$")
EXPECT_OVERRIDES = {"inflate_bomb_png": "failed"}
"""Cases whose outcome depends on the caps: 49 MP is over this distribution's max_image_pixels (20 MP)."""


# ----- the tally: every input, every 5xx ----------------------------------------------------------


@dataclass
class Tally:
    inputs: int = 0
    by_area: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    five_xx: list[str] = field(default_factory=list)
    """One line per 5xx, request left without a response, or ingestion failure with code ``server_error``."""
    drops: list[str] = field(default_factory=list)
    """Connections reset under a request that then succeeded on a fresh connection (after a 5xx)."""
    causes: Counter = field(default_factory=Counter)
    """5xx grouped by route and error message: one line per bug, with how many inputs hit it."""

    def record(self, area: str, label: str, status: int | str, body: str = "") -> None:
        self.inputs += 1
        self.by_area[area] += 1
        self.statuses[status] += 1
        if not isinstance(status, int) or status >= 500:
            self.failure(area, label, status, body)

    def failure(self, area: str, label: str, status: int | str, body: str = "") -> None:
        self.five_xx.append(f"[{area}] {label} -> {status}: {body[:300]}")
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body
        route = re.search(r"(?:GET |POST |DELETE )?/v1/\S*", label)
        where = route.group(0) if route else area
        self.causes[f"{status} {where}: {re.sub(r'[0-9a-f]{16,}', '<id>', str(message))[:160]}"] += 1

    def summary(self) -> str:
        return f"fuzz: {self.inputs} inputs, {len(self.five_xx)} 5xx"


@dataclass
class Fuzz:
    server: ServerProcess
    http: httpx.Client
    sdk: openai.OpenAI
    tally: Tally
    openapi: dict
    state_dir: Path
    files_dir: Path
    store_id: str
    """A vector store holding one good, completed document (the invoice)."""
    good_file_id: str
    conversation_id: str
    response_id: str
    model_dir: Path

    def send(self, area: str, label: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """One counted request; None when no response came (recorded as a failure).

        A connection the server dropped is retried once on a fresh one: after an unhandled error (a 500,
        already counted) the server closes the connection, and the next request on it is reset. A drop
        that repeats is a real failure.
        """
        replayable = not isinstance(kwargs.get("content"), Iterator)
        for attempt in range(2):
            try:
                r = self.http.request(method, url, **kwargs)
                r.read()
            except httpx.TimeoutException as e:
                self.tally.record(area, label, f"timeout ({type(e).__name__})")
                return None
            except httpx.TransportError as e:
                self.http.close()
                self.http = httpx.Client(base_url=self.server.base_url, timeout=120)
                if attempt == 0 and replayable:
                    self.tally.drops.append(f"[{area}] {label}: {type(e).__name__}: {e}")
                    continue
                self.tally.record(area, label, f"no response ({type(e).__name__}: {e})")
                return None
            self.tally.record(area, label, r.status_code, r.text)
            return r
        return None

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.server.base_url}/v1/health", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False


def _print(config: pytest.Config, line: str) -> None:
    """To the terminal even without ``-s``."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print(line, flush=True)
    else:
        print(line, flush=True)


# ----- the server ------------------------------------------------------------------------------------


def _distribution(model_dir: Path) -> dict:
    dist = tiny_distribution(model_dir, name=DISTRO, documents=True, guard=True, vector_stores=dict(SETTINGS))
    dist["server"] = {"max_request_bytes": MAX_REQUEST_BYTES, "max_upload_bytes": MAX_UPLOAD_BYTES}
    dist["providers"]["files"][0]["config"]["max_file_bytes"] = MAX_FILE_BYTES
    return dist


def _wait_files(http: httpx.Client, store_id: str, file_ids: list[str], timeout_s: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    out: dict[str, dict] = {}
    while True:
        for f in file_ids:
            if out.get(f, {}).get("status", "in_progress") == "in_progress":
                out[f] = http.get(f"/v1/vector_stores/{store_id}/files/{f}").json()
        if all(o.get("status") != "in_progress" for o in out.values()):
            return out
        if time.monotonic() > deadline:
            return out
        time.sleep(0.2)


@pytest.fixture(scope="module")
def fuzz(request, tiny_mllama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    workdir = tmp_path_factory.mktemp("fuzz")
    server = ServerProcess(_distribution(tiny_mllama_dir), workdir).start()
    http = httpx.Client(base_url=server.base_url, timeout=120)
    sdk = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0, timeout=120)
    tally = Tally()
    started = time.monotonic()
    try:
        invoice = docs.invoice_pdf()
        good = sdk.files.create(file=(invoice.filename, invoice.data, invoice.mime_type), purpose="assistants")
        store = sdk.vector_stores.create(name="fuzz-good", file_ids=[good.id])
        status = _wait_files(http, store.id, [good.id], INGEST_DEADLINE_S)[good.id]
        assert status["status"] == "completed", status
        conversation = http.post("/v1/conversations", json={"items": [{"type": "message", "role": "user",
                                                                         "content": "hello"}]}).json()
        response = http.post("/v1/responses", json={"model": "tiny-mllama", "input": "hello",
                                                    "max_output_tokens": 16}).json()
        state_dir = workdir / "home" / DISTRO
        fuzz = Fuzz(server, http, sdk, tally, http.get("/openapi.json").json(), state_dir, state_dir / "files",
                    store.id, good.id, conversation["id"], response["id"], Path(tiny_mllama_dir))
        yield fuzz
        http = fuzz.http  # send() replaces a client whose connection the server dropped
    finally:
        areas = ", ".join(f"{k} {v}" for k, v in sorted(tally.by_area.items()))
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items(), key=lambda kv: str(kv[0])))
        _print(request.config, f"\n{tally.summary()} ({time.monotonic() - started:.0f} s; {areas})")
        _print(request.config, f"fuzz statuses: {statuses}")
        for cause, count in tally.causes.most_common():
            _print(request.config, f"fuzz 5xx cause ({count} inputs): {cause}")
        for line in tally.five_xx:
            _print(request.config, f"fuzz 5xx: {line}")
        for line in tally.drops:
            _print(request.config, f"fuzz dropped connection (retried): {line}")
        if tally.five_xx:
            _print(request.config, f"fuzz: tracebacks in the server log {server.log_path}")
        http.close()
        sdk.close()
        server.stop()


def _error_message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or "")
    return str(body.get("detail") or "") if isinstance(body, dict) else ""


def _clear_4xx(r: httpx.Response) -> str | None:
    """None when ``r`` is a 4xx with a JSON error message; else what is wrong with it."""
    if not 400 <= r.status_code < 500:
        return f"status {r.status_code}: {r.text[:200]}"
    if not _error_message(r):
        return f"4xx without an error message: {r.text[:200]}"
    return None


# ----- documents -------------------------------------------------------------------------------------


def test_bad_documents_are_refused_or_fail_with_a_reason(fuzz: Fuzz):
    cases = bad.bad_documents()
    stores = [fuzz.http.post("/v1/vector_stores", json={"name": f"fuzz-bad-documents-{i}"}).json()["id"]
              for i in range(2)]
    problems: list[str] = []
    attached: dict[str, tuple[str, bad.BadDocument]] = {}
    seen: set[bytes] = set()
    refused = 0
    for key, case in cases.items():
        # identical bytes (the empty files) go to another store: a store deduplicates content, see
        # test_a_duplicate_of_a_failing_file_fails_too
        store = stores[case.data in seen]
        seen.add(case.data)
        r = fuzz.send("documents", f"upload {key}", "POST", "/v1/files",
                      files={"file": (case.filename, case.data, case.mime_type)}, data={"purpose": "assistants"})
        if r is None or r.status_code >= 500:
            continue
        if r.status_code >= 400:
            refused += 1
            if (why := _clear_4xx(r)) is not None:
                problems.append(f"{key}: upload {why}")
            continue
        file_id = r.json()["id"]
        r = fuzz.send("documents", f"attach {key}", "POST", f"/v1/vector_stores/{store}/files",
                      json={"file_id": file_id})
        if r is None or r.status_code >= 500:
            continue
        if r.status_code >= 400:
            refused += 1
            if (why := _clear_4xx(r)) is not None:
                problems.append(f"{key}: attach {why}")
            continue
        attached[file_id] = (store, case)

    final = {}
    for store in stores:
        final.update(_wait_files(fuzz.http, store, [f for f, (s, _) in attached.items() if s == store],
                                 INGEST_DEADLINE_S))
    outcomes = Counter()
    for file_id, (store, case) in attached.items():
        obj = final.get(file_id, {})
        status = obj.get("status")
        error = obj.get("last_error") or {}
        message = str(error.get("message") or "")
        outcomes[status] += 1
        expect = EXPECT_OVERRIDES.get(case.key, case.expect)
        if status == "in_progress":
            problems.append(f"{case.key}: still in_progress after {INGEST_DEADLINE_S:.0f} s")
        elif status == "failed" and error.get("code") == "server_error":
            fuzz.tally.failure("documents", case.key, "ingestion crashed (last_error.code server_error)", message)
        elif status == "failed":
            if not message:
                problems.append(f"{case.key}: failed without a last_error message: {obj}")
            elif case.hints and not any(h in message.lower() for h in case.hints):
                problems.append(f"{case.key}: last_error {message!r} names none of {case.hints}")
        elif expect == "failed":
            problems.append(f"{case.key}: expected failed, got {status}: {obj}")
        elif status != "completed":
            problems.append(f"{case.key}: unexpected status {status}: {obj}")
    print(f"fuzz documents: {len(cases)} files, {refused} refused with a 4xx, ingestion outcomes {dict(outcomes)}")
    assert fuzz.healthy(), "server stopped answering /v1/health after the bad documents"
    # a good file after all of that still ingests: the ingestion worker survived
    invoice = docs.invoice_pdf()
    r = fuzz.send("documents", "good file after bad ones", "POST", "/v1/files",
                  files={"file": ("after.pdf", invoice.data + b"\n%after", "application/pdf")},
                  data={"purpose": "assistants"})
    assert r is not None and r.status_code == 200, r and r.text
    fid = r.json()["id"]
    fuzz.http.post(f"/v1/vector_stores/{stores[0]}/files", json={"file_id": fid}).raise_for_status()
    assert _wait_files(fuzz.http, stores[0], [fid], INGEST_DEADLINE_S)[fid]["status"] == "completed"
    assert not problems, "\n".join(problems)


def test_a_duplicate_of_a_failing_file_fails_too(fuzz: Fuzz):
    """Two uploads of the same broken file, attached while the (single) ingestion worker is busy:
    the second deduplicates onto the first, and must end as the first does: failed."""
    blocker = docs.annual_report_pdf()
    broken = bad.encrypted_pdf()
    ids = []
    for filename, data in ((blocker.filename, blocker.data), ("secret-1.pdf", broken.data),
                           ("secret-2.pdf", broken.data)):
        r = fuzz.send("documents", f"duplicate upload {filename}", "POST", "/v1/files",
                      files={"file": (filename, data, "application/pdf")}, data={"purpose": "assistants"})
        assert r is not None and r.status_code == 200, r and r.text
        ids.append(r.json()["id"])
    store = fuzz.http.post("/v1/vector_stores", json={"name": "fuzz-duplicates"}).json()["id"]
    r = fuzz.send("documents", "duplicate batch", "POST", f"/v1/vector_stores/{store}/file_batches",
                  json={"file_ids": ids})
    assert r is not None and r.status_code == 200, r and r.text
    final = _wait_files(fuzz.http, store, ids, INGEST_DEADLINE_S)
    assert final[ids[1]]["status"] == "failed", final[ids[1]]
    assert final[ids[2]]["status"] == "failed", final[ids[2]]
    assert "password" in final[ids[2]]["last_error"]["message"]


# ----- filenames and multipart forms ---------------------------------------------------------------


def _multipart(filename: bytes | None, data: bytes = b"hello fuzz\n", *, purpose: bytes | None = b"assistants",
               boundary: bytes = b"fuzzboundary", content_type: bytes = b"text/plain",
               extra_parts: list[bytes] = ()) -> tuple[bytes, dict]:
    """A multipart body written byte by byte: the filename goes into the header exactly as given."""
    parts = []
    if filename is not None:
        parts.append(b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
                     b"Content-Type: " + content_type + b"\r\n\r\n" + data)
    if purpose is not None:
        parts.append(b'Content-Disposition: form-data; name="purpose"\r\n\r\n' + purpose)
    parts.extend(extra_parts)
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + boundary + b"--\r\n"
    return body, {"content-type": "multipart/form-data; boundary=" + boundary.decode()}


def _safe_display_name(name: str) -> str | None:
    """None when ``name`` is a safe stored filename; else why not."""
    if not name:
        return "empty"
    if "/" in name or "\\" in name:
        return "has a directory separator"
    if name in (".", "..") or name.startswith(".."):
        return "is a dot name"
    if any(unicodedata.category(c)[0] == "C" for c in name):
        return "has control/format characters"
    if len(name.encode("utf-8", "surrogatepass")) > 255:
        return "is over 255 bytes"
    return None


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_hostile_filenames_are_sanitized_or_refused(fuzz: Fuzz):
    before = _tree(fuzz.server.workdir)
    passwd_stat = os.stat("/etc/passwd") if os.path.exists("/etc/passwd") else None
    problems: list[str] = []
    uploaded: list[tuple[str, str, bytes]] = []
    names = bad.bad_filenames()
    for key, name in names.items():
        payload = f"fuzz filename {key}\n".encode()
        # 1. as the openai SDK sends it (httpx's multipart encoding of the name)
        try:
            obj = fuzz.sdk.files.create(file=(name, payload, "text/plain"), purpose="assistants")
            fuzz.tally.record("filenames", f"sdk {key}", 200)
            uploaded.append((key, obj.id, payload))
            if (why := _safe_display_name(obj.filename)) is not None:
                problems.append(f"sdk {key}: stored filename {obj.filename!r} {why}")
        except openai.APIStatusError as e:
            fuzz.tally.record("filenames", f"sdk {key}", e.status_code, e.message)
            if e.status_code < 500 and e.status_code != 400:
                problems.append(f"sdk {key}: {e.status_code} (expected 200 or 400)")
        except openai.APIConnectionError as e:
            fuzz.tally.record("filenames", f"sdk {key}", f"no response ({e})")
        except UnicodeEncodeError:
            pass  # the client cannot encode this name (a lone surrogate): nothing was sent
        # 2. raw bytes in the Content-Disposition header, as a hostile client sends it
        raw = name.encode("utf-8", "surrogateescape" if "\udcff" in name else "strict")
        body, headers = _multipart(raw, payload)
        r = fuzz.send("filenames", f"raw {key}", "POST", "/v1/files", content=body, headers=headers)
        if r is None or r.status_code >= 500:
            continue
        if r.status_code == 200:
            stored = r.json()
            uploaded.append((key, stored["id"], payload))
            if (why := _safe_display_name(stored["filename"])) is not None:
                problems.append(f"raw {key}: stored filename {stored['filename']!r} {why}")
        elif r.status_code != 400:
            problems.append(f"raw {key}: {r.status_code} (expected 200 or 400): {r.text[:200]}")

    for key, file_id, payload in uploaded:
        r = fuzz.send("filenames", f"download {key}", "GET", f"/v1/files/{file_id}/content")
        if r is not None and r.status_code == 200:
            if r.content != payload:
                problems.append(f"{key}: download is not byte-identical")
            disposition = r.headers.get("content-disposition", "")
            if any(c in disposition for c in "\r\n\x00"):
                problems.append(f"{key}: Content-Disposition carries control characters: {disposition!r}")
        r = fuzz.send("filenames", f"metadata {key}", "GET", f"/v1/files/{file_id}")
        if r is not None and r.status_code != 200:
            problems.append(f"{key}: GET /v1/files/{file_id} -> {r.status_code}")

    # nothing was written outside the files directory
    for entry in os.scandir(fuzz.files_dir):
        if not (FILE_ID.match(entry.name) or entry.name.startswith(".upload-")):
            problems.append(f"files dir holds {entry.name!r}, not a generated id")
    new = _tree(fuzz.server.workdir) - before
    files_rel = str(fuzz.files_dir.relative_to(fuzz.server.workdir))
    suspicious = {"passwd", "hosts", "x.pdf", "vistack-pwned.pdf", "CON.pdf", ".bashrc"}
    for path in sorted(new):
        if path.startswith(files_rel + os.sep):
            continue
        if Path(path).name in suspicious or any(n in path for n in ("..", "\x00", "\n")):
            problems.append(f"upload wrote {path!r} outside the files directory")
    for outside in ("/tmp/vistack-pwned.pdf", "/x.pdf", str(fuzz.server.workdir.parent / "x.pdf")):
        if os.path.exists(outside):
            problems.append(f"{outside} exists after the traversal uploads")
    if passwd_stat is not None:
        assert os.stat("/etc/passwd").st_mtime == passwd_stat.st_mtime
    print(f"fuzz filenames: {len(names)} names x 2 encodings, {len(uploaded)} stored with sanitized names")
    assert fuzz.healthy()
    assert not problems, "\n".join(problems)


def test_broken_multipart_forms_get_4xx(fuzz: Fuzz):
    ok_body, ok_headers = _multipart(b"ok.txt")
    cases: dict[str, tuple[bytes, dict, tuple[int, ...]]] = {
        "no file part": (*_multipart(None), (400,)),
        "no purpose": (*_multipart(b"a.txt", purpose=None), (400,)),
        "bad purpose": (*_multipart(b"a.txt", purpose=b"world-domination"), (400,)),
        "purpose invalid utf8": (*_multipart(b"a.txt", purpose=b"\xff\xfe"), (400,)),
        "file as plain field": (*_multipart(None, extra_parts=[
            b'Content-Disposition: form-data; name="file"\r\n\r\nnot a file']), (400,)),
        "expires_after garbage": (*_multipart(b"a.txt", extra_parts=[
            b'Content-Disposition: form-data; name="expires_after"\r\n\r\n{nope']), (400,)),
        "expires_after deeply nested": (*_multipart(b"a.txt", extra_parts=[
            b'Content-Disposition: form-data; name="expires_after"\r\n\r\n' + bad.deeply_nested_json(100_000, None)]),
            (400,)),
        "expires_after seconds huge": (*_multipart(b"a.txt", extra_parts=[
            b'Content-Disposition: form-data; name="expires_after[anchor]"\r\n\r\ncreated_at',
            b'Content-Disposition: form-data; name="expires_after[seconds]"\r\n\r\n1' + b"0" * 4000]), (400,)),
        "expires_after seconds nan": (*_multipart(b"a.txt", extra_parts=[
            b'Content-Disposition: form-data; name="expires_after"\r\n\r\n{"anchor": "created_at", "seconds": NaN}']),
            (400,)),
        "no boundary": (ok_body, {"content-type": "multipart/form-data"}, (400,)),
        "wrong boundary": (ok_body, {"content-type": "multipart/form-data; boundary=other"}, (400,)),
        "truncated body": (ok_body[: len(ok_body) // 2], ok_headers, (400,)),
        "empty body": (b"", ok_headers, (400,)),
        "not multipart": (b'{"purpose": "assistants"}', {"content-type": "application/json"}, (400,)),
        "binary garbage": (bad.random_bytes(4096, "multipart"), ok_headers, (400,)),
        "huge part header": (*_multipart(b"a" * 200_000 + b".txt"), (200, 400, 413)),
        "10k fields": (*_multipart(b"a.txt", extra_parts=[
            b'Content-Disposition: form-data; name="f%d"\r\n\r\nx' % i for i in range(10_000)]), (200, 400, 413)),
        "over max_file_bytes": (*_multipart(b"big.bin", b"\x01" * (MAX_FILE_BYTES + 1024)), (413,)),
        "over max_upload_bytes": (*_multipart(b"big.bin", b"\x01" * (MAX_UPLOAD_BYTES + 1024)), (413,)),
    }
    problems = []
    for label, (body, headers, allowed) in cases.items():
        r = fuzz.send("multipart", f"/v1/files {label}", "POST", "/v1/files", content=body, headers=headers)
        if r is not None and r.status_code < 500 and r.status_code not in allowed:
            problems.append(f"{label}: {r.status_code} not in {allowed}: {r.text[:200]}")
        elif r is not None and 400 <= r.status_code < 500 and not _error_message(r):
            problems.append(f"{label}: {r.status_code} without an error message")
    assert fuzz.healthy()
    assert not problems, "\n".join(problems)


# ----- JSON bodies to every POST route ----------------------------------------------------------------


def _post_routes(openapi: dict) -> list[tuple[str, dict | None]]:
    """(path, JSON body schema or None) of every POST route."""
    out = []
    for path, ops in openapi["paths"].items():
        op = ops.get("post")
        if op is None:
            continue
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        out.append((path, schema))
    return out


def _resolve(schema: dict, openapi: dict) -> dict:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _quote_segment(value: str) -> str:
    """A path segment that reaches the server as ``value`` (httpx would drop "." and ".." segments)."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def _fill_path(fuzz: Fuzz, path: str, **override: str) -> str:
    real = {"vector_store_id": fuzz.store_id, "file_id": fuzz.good_file_id, "conversation_id": fuzz.conversation_id,
            "response_id": fuzz.response_id, "batch_id": "vsfb_missing", "model_id": "tiny-mllama",
            "provider_id": "transformers", "identifier": "llama-guard", "item_id": "msg_missing"}
    real.update(override)
    return re.sub(r"\{(\w+)\}", lambda m: _quote_segment(real[m.group(1)]), path)


def _baselines(fuzz: Fuzz) -> dict[str, dict]:
    """A valid body per route: wrong-type mutations start from it, so the mutation is the only error."""
    user = [{"role": "user", "content": "What is the total due?"}]
    return {
        # the tiny model's weights: a model registered by a mutation ("x") that a later request names must work
        "/v1/models": {"model_id": "fuzz-model", "provider_id": "transformers",
                       "provider_model_id": str(fuzz.model_dir), "model_type": "llm"},
        "/v1/chat/completions": {"model": "tiny-mllama", "messages": user, "max_tokens": 2},
        "/v1/completions": {"model": "tiny-mllama", "prompt": "Total due:", "max_tokens": 2},
        "/v1/embeddings": {"model": "all-MiniLM-L6-v2", "input": "total due"},
        "/v1/vector_stores": {"name": "fuzz-json"},
        "/v1/vector_stores/{vector_store_id}": {"name": "fuzz-good"},
        "/v1/vector_stores/{vector_store_id}/search": {"query": "total due", "max_num_results": 2},
        "/v1/vector_stores/{vector_store_id}/files": {"file_id": fuzz.good_file_id},
        "/v1/vector_stores/{vector_store_id}/files/{file_id}": {"attributes": {"fuzz": 1}},
        "/v1/vector_stores/{vector_store_id}/file_batches": {"file_ids": [fuzz.good_file_id]},
        "/v1/vector-io/insert": {"vector_store_id": fuzz.store_id,
                                 "chunks": [{"content": "fuzz chunk", "metadata": {"document_id": "fuzz-doc"}}]},
        "/v1/vector-io/query": {"vector_store_id": fuzz.store_id, "query": "total due"},
        "/v1/conversations": {"metadata": {"topic": "fuzz"}},
        "/v1/conversations/{conversation_id}": {"metadata": {"topic": "fuzz"}},
        "/v1/conversations/{conversation_id}/items": {"items": [{"type": "message", "role": "user",
                                                                  "content": "hi"}]},
        "/v1/responses": {"model": "tiny-mllama", "input": "What is the total due?", "max_output_tokens": 16},
        "/v1/shields": {"shield_id": "fuzz-shield", "provider_id": "llama-guard",
                        "provider_shield_id": "transformers/tiny-guard"},
        "/v1/safety/run-shield": {"shield_id": "llama-guard", "messages": user},
        "/v1/moderations": {"input": "total due"},
    }


_MAIN_TEXT_FIELD = {
    "/v1/chat/completions": ("messages", lambda s: [{"role": "user", "content": s}]),
    "/v1/completions": ("prompt", lambda s: s),
    "/v1/embeddings": ("input", lambda s: s),
    "/v1/vector_stores/{vector_store_id}/search": ("query", lambda s: s),
    "/v1/vector-io/query": ("query", lambda s: s),
    "/v1/responses": ("input", lambda s: s),
    "/v1/safety/run-shield": ("messages", lambda s: [{"role": "user", "content": s}]),
    "/v1/moderations": ("input", lambda s: s),
    "/v1/conversations/{conversation_id}/items": ("items", lambda s: [{"type": "message", "role": "user",
                                                                       "content": s}]),
}

WRONG_VALUES: list[Any] = [12345, -1, 1.5e308, "x", "", [], [1, "a", None], {}, {"$fuzz": [1]}, None, True,
                           "\x00\ud7ff\ufffe"]

STRICT_MALFORMED = {"empty", "whitespace", "truncated_object", "trailing_comma", "single_quotes", "unquoted_keys",
                    "bare_word", "invalid_utf8", "two_objects", "array", "string", "number", "null", "true",
                    "nested_array_10k", "nested_object_10k", "nested_object_100k", "utf16_bom", "nul_bytes",
                    "bad_escape"}
"""Bodies no route may accept (4xx); the others (NaN, a BOM, lone surrogates...) some parsers accept."""


def test_malformed_and_mistyped_json_to_every_post_route(fuzz: Fuzz):
    routes = _post_routes(fuzz.openapi)
    assert len(routes) >= 15, [p for p, _ in routes]
    baselines = _baselines(fuzz)
    json_routes = [(p, s) for p, s in routes if s is not None]
    missing = [p for p, _ in json_routes if p not in baselines]
    assert not missing, f"no baseline body for {missing}: add one to _baselines"
    problems: list[str] = []
    counts = Counter()

    def check(label: str, r: httpx.Response | None, allowed: tuple[int, ...] | None = None) -> None:
        if r is None or r.status_code >= 500:
            return
        counts[r.status_code // 100] += 1
        if allowed is not None and r.status_code not in allowed:
            problems.append(f"{label}: {r.status_code} not in {allowed}: {r.text[:200]}")
        elif 400 <= r.status_code < 500 and not _error_message(r):
            problems.append(f"{label}: {r.status_code} without an error message: {r.text[:200]}")

    json_headers = {"content-type": "application/json"}
    for path, schema in routes:
        url = _fill_path(fuzz, path)
        # malformed bodies: not JSON, not an object, invalid UTF-8, nested 10k deep
        for name, body in bad.malformed_json_bodies().items():
            r = fuzz.send("json", f"{path} malformed {name}", "POST", url, content=body, headers=json_headers)
            if schema is None:
                check(f"{path} malformed {name}", r)
            else:
                check(f"{path} malformed {name}", r, tuple(range(400, 500)) if name in STRICT_MALFORMED else None)
        # wrong content types
        for ctype, body in (("text/plain", b'{"a": 1}'), ("application/x-www-form-urlencoded", b"a=1&b=2"),
                            ("application/json; charset=latin-1", b'{"model": "\xe9"}'), ("", b"{}")):
            headers = {"content-type": ctype} if ctype else {}
            check(f"{path} content-type {ctype!r}",
                  fuzz.send("json", f"{path} content-type {ctype!r}", "POST", url, content=body, headers=headers))
        # over server.max_request_bytes: 413, by Content-Length and by a chunked body
        big = b'{"model": "' + b"x" * (5 * 1024 * 1024) + b'"}'
        check(f"{path} 5 MB string", fuzz.send("json", f"{path} 5 MB string", "POST", url, content=big,
                                              headers=json_headers), (413,) if schema is not None else None)

        def chunked(size: int = MAX_REQUEST_BYTES + 64 * 1024) -> Iterator[bytes]:
            yield b'{"input": "'
            for _ in range(size // 65536):
                yield b"y" * 65536
            yield b'"}'

        check(f"{path} chunked over the cap",
              fuzz.send("json", f"{path} chunked over the cap", "POST", url, content=chunked(), headers=json_headers),
              (413,) if schema is not None else None)
        if schema is None:
            continue
        baseline = baselines[path]
        check(f"{path} baseline", fuzz.send("json", f"{path} baseline", "POST", url, json=baseline))
        resolved = _resolve(schema, fuzz.openapi)
        if resolved.get("required"):
            check(f"{path} empty object", fuzz.send("json", f"{path} empty object", "POST", url, json={}),
                  tuple(range(400, 500)))
        # every property, every wrong type (pydantic's lax mode may coerce some: 2xx allowed, 5xx never)
        for prop in resolved.get("properties", {}):
            for value in WRONG_VALUES:
                body = {**baseline, prop: value}
                check(f"{path} {prop}={value!r}"[:120],
                      fuzz.send("json", f"{path} {prop}={value!r}"[:200], "POST", url, json=body))
        # deep nesting inside a field, and a huge (1.5 MB, under the cap) string in the main text field
        nested = bad.deeply_nested_json(10_000, None)
        for prop in list(resolved.get("properties", {}))[:3]:
            raw = json.dumps({**baseline, prop: "__NESTED__"}).encode().replace(b'"__NESTED__"', nested)
            check(f"{path} {prop} nested 10k",
                  fuzz.send("json", f"{path} {prop} nested 10k", "POST", url, content=raw, headers=json_headers))
        if path in _MAIN_TEXT_FIELD:
            prop, wrap = _MAIN_TEXT_FIELD[path]
            body = {**baseline, prop: wrap("total due " * 150_000)}
            check(f"{path} 1.5 MB {prop}", fuzz.send("json", f"{path} 1.5 MB {prop}", "POST", url, json=body))
    # numbers at the edges of what the engines take
    chat = baselines["/v1/chat/completions"]
    for label, extra in {"seed 2**64": {"seed": 2**64}, "seed -2**63-1": {"seed": -(2**63) - 1},
                         "seed 10**30": {"seed": 10**30}, "max_tokens 10**9": {"max_tokens": 10**9},
                         "max_tokens 2**63": {"max_tokens": 2**63}, "n 10**6": {"n": 10**6},
                         "temperature 1e308": {"temperature": 1e308}, "top_p -0.0": {"top_p": -0.0},
                         "stop 10k": {"stop": ["x"] * 10_000}, "logit_bias huge": {"logit_bias": {"1": 1e308}},
                         "top_logprobs": {"logprobs": True, "top_logprobs": 20}}.items():
        check(f"chat {label}", fuzz.send("json", f"/v1/chat/completions {label}", "POST", "/v1/chat/completions",
                                         json={**chat, **extra}))
    print(f"fuzz json: {sum(counts.values())} answered, {dict(counts)} by class")
    assert fuzz.healthy()
    assert not problems, "\n".join(problems[:50])


# ----- Hypothesis: bodies generated from the OpenAPI schemas ------------------------------------------


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _small_png_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _overrides(fuzz: Fuzz) -> dict[str, st.SearchStrategy]:
    """Values that reach past validation into the engines (real ids and models), and caps on the
    fields that make a request slow (tokens, choices, iterations)."""
    images = [_small_png_url(), *(c.url for c in bad.bad_image_urls().values() if isinstance(c.url, str))]
    return {
        # never random text: a random id could name a model another example registered without weights (503)
        "model": st.sampled_from(["tiny-mllama", "transformers/tiny-mllama", "all-MiniLM-L6-v2", "tiny-guard",
                                  "llama-guard", "nope", "", "\x00", "../../etc/passwd", "m" * 300]),
        "model_id": st.text(max_size=12).map(lambda s: "fuzz-hyp-" + s),
        "vector_store_id": st.sampled_from([fuzz.store_id, "vs_missing"]),
        "vector_store_ids": st.lists(st.sampled_from([fuzz.store_id, "vs_missing"]), max_size=2),
        "file_id": st.sampled_from([fuzz.good_file_id, "file-0123", ""]),
        "file_ids": st.lists(st.sampled_from([fuzz.good_file_id, "file-0123"]), max_size=2),
        "shield_id": st.sampled_from(["llama-guard", "nope"]),
        "previous_response_id": st.sampled_from([fuzz.response_id, "resp_missing"]),
        "conversation": st.sampled_from([fuzz.conversation_id, "conv_missing"]),
        "url": st.sampled_from(images),
        "image_url": st.sampled_from(images) | st.fixed_dictionaries({"url": st.sampled_from(images)}),
        "max_tokens": st.none() | st.integers(-1, 8),
        "max_completion_tokens": st.none() | st.integers(-1, 8),
        "max_output_tokens": st.none() | st.integers(14, 24),
        "n": st.none() | st.integers(-1, 2),
        "max_infer_iters": st.none() | st.integers(-1, 3),
        "max_tool_calls": st.none() | st.integers(-1, 3),
        "server_url": st.none() | st.sampled_from(["", "not a url", "ftp://example.invalid/mcp", "mcp://x"]),
    }


def _strategy(schema: Any, openapi: dict, overrides: dict[str, st.SearchStrategy], depth: int = 0
              ) -> st.SearchStrategy:
    """A Hypothesis strategy for a (FastAPI/pydantic) JSON schema: $ref, anyOf/oneOf, enum/const, the five
    JSON types with their bounds; small sizes, and ``overrides`` for properties by name."""
    if not isinstance(schema, dict) or not schema:
        return _ANY_JSON
    if "$ref" in schema:
        return _strategy(_resolve(schema, openapi), openapi, overrides, depth)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_strategy(s, openapi, overrides, depth) for s in schema[key]])
    if "allOf" in schema:
        merged: dict = {}
        for s in schema["allOf"]:
            merged.update(_resolve(s, openapi))
        return _strategy(merged, openapi, overrides, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_strategy({**schema, "type": k}, openapi, overrides, depth) for k in kind])
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) < 200)
        lo = schema.get("minLength", 0)
        return st.text(min_size=lo, max_size=max(lo, min(schema.get("maxLength", 24), 24)))
    if kind == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return st.integers(None if lo is None else int(lo), None if hi is None else int(hi))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        lo = schema.get("minItems", 0)
        hi = max(lo, min(schema.get("maxItems", 3), 3 if depth < 3 else 1))
        return st.lists(_strategy(schema.get("items", {}), openapi, overrides, depth + 1), min_size=lo, max_size=hi)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))

        def prop(name: str, sub: dict) -> st.SearchStrategy:
            base = _strategy(sub, openapi, overrides, depth + 1)
            return overrides[name] | base if name in overrides else base

        if not props:
            extra = schema.get("additionalProperties", True)
            values = _ANY_JSON if extra is True or extra == {} else _strategy(extra, openapi, overrides, depth + 1)
            return st.dictionaries(st.text(max_size=10), values, max_size=min(schema.get("maxProperties", 3), 3))
        return st.fixed_dictionaries(
            {k: prop(k, v) for k, v in props.items() if k in required},
            optional={k: prop(k, v) for k, v in props.items() if k not in required},
        )
    return _ANY_JSON


_CAPPED = {"max_tokens": 8, "max_completion_tokens": 8, "n": 2, "max_infer_iters": 3, "max_tool_calls": 3}


def _cap(value: Any) -> Any:
    """Belt and braces: nothing generated asks the tiny model for many tokens or choices."""
    if isinstance(value, dict):
        out = {k: _cap(v) for k, v in value.items()}
        for key, cap in _CAPPED.items():
            if isinstance(out.get(key), int) and not isinstance(out.get(key), bool) and out[key] > cap:
                out[key] = cap
        if isinstance(out.get("max_output_tokens"), int) and not isinstance(out["max_output_tokens"], bool):
            out["max_output_tokens"] = min(out["max_output_tokens"], 24)
        return out
    if isinstance(value, list):
        return [_cap(v) for v in value]
    return value


def test_hypothesis_generated_bodies_never_5xx(fuzz: Fuzz):
    overrides = _overrides(fuzz)
    routes = [(p, s) for p, s in _post_routes(fuzz.openapi) if s is not None]
    answered = Counter()
    path_ids = {
        "vector_store_id": st.sampled_from([fuzz.store_id, fuzz.store_id, "vs_missing"]),
        "file_id": st.sampled_from([fuzz.good_file_id, fuzz.good_file_id, "file-missing"]),
        "conversation_id": st.sampled_from([fuzz.conversation_id, fuzz.conversation_id, "conv_missing"]),
    }

    def fuzz_route(path: str, schema: dict) -> None:
        params = re.findall(r"\{(\w+)\}", path)
        ids = st.fixed_dictionaries({p: path_ids.get(p, st.just("x")) for p in params})

        # No shrinking: a 5xx is recorded with its body (the reproduction) and the run goes on.
        @settings(max_examples=HYPOTHESIS_EXAMPLES, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(ids=ids, body=_strategy(schema, fuzz.openapi, overrides))
        def run(ids: dict, body: Any) -> None:
            body = _cap(body)
            r = fuzz.send("hypothesis", f"{path} {json.dumps(body)[:400]}", "POST", _fill_path(fuzz, path, **ids),
                          json=body)
            if r is not None:
                answered[r.status_code // 100] += 1

        run()

    for path, schema in routes:
        fuzz_route(path, schema)
    print(f"fuzz hypothesis: {len(routes)} routes x {HYPOTHESIS_EXAMPLES} bodies, {dict(answered)} by class")
    assert fuzz.healthy()


# ----- path parameters and query strings -----------------------------------------------------------


ODD_IDS = {
    "very long": "x" * 10_000,
    "unicode": "r\u00e9sum\u00e9-\u6587\u4ef6-\U0001f4c4",
    "rtl": "abc\u202edcba",
    "percent nul": "%00",
    "nul": "\x00",
    "dot dot slash": "../",
    "traversal": "../../../../etc/passwd",
    "encoded traversal": "..%2F..%2Fetc%2Fpasswd",
    "dot": ".",
    "spaces": "   ",
    "sql": "' OR '1'='1",
    "json": '{"$ne": null}',
    "newline": "a\r\nX-Injected: 1",
    "negative": "-1",
    "almost an id": "file-" + "f" * 65,
    "glob": "*",
}


def test_odd_path_params_and_query_strings(fuzz: Fuzz):
    problems = []
    routes = []
    for path, ops in fuzz.openapi["paths"].items():
        for method, op in ops.items():
            params = re.findall(r"\{(\w+)\}", path)
            no_body = "requestBody" not in op
            if params and (method in ("get", "delete") or (method == "post" and no_body)):
                routes.append((method.upper(), path, params))
    for method, path, params in routes:
        for param in params:
            for label, odd in ODD_IDS.items():
                url = _fill_path(fuzz, path, **{param: odd})
                r = fuzz.send("path", f"{method} {path} {param}={label}", method, url)
                if r is not None and r.status_code < 300:  # 3xx: a trailing-slash redirect is fine too
                    problems.append(f"{method} {path} {param}={label}: {r.status_code} (expected a 4xx)")
            if method != "GET":
                continue  # raw ".." would be resolved by the client: a DELETE could reach a real parent resource
            for raw in ("..", "%2e%2e", "a/b", "%2F", "%252e%252e"):
                url = _fill_path(fuzz, path.replace("{" + param + "}", "RAWSEGMENT")).replace("RAWSEGMENT", raw)
                fuzz.send("path", f"{method} {path} {param} raw {raw}", method, url)
    # query strings of the list routes
    queries = [{"limit": "-1"}, {"limit": "0"}, {"limit": "1" + "0" * 40}, {"limit": "abc"}, {"order": "sideways"},
               {"after": "x" * 5000}, {"before": "\u202e"}, {"purpose": "nope"}, {"filter": "nope"},
               {"include": "nope"}, {"after": "%00"}, {"limit": "1e3"}, {"order": ""}]
    list_routes = [(p, [x["name"] for x in ops["get"].get("parameters", []) if x.get("in") == "query"])
                   for p, ops in fuzz.openapi["paths"].items() if "get" in ops]
    for path, names in list_routes:
        for q in queries:
            if set(q) <= set(names):
                r = fuzz.send("query", f"GET {path} {q}", "GET", _fill_path(fuzz, path), params=q)
                if r is not None and r.status_code not in (200, *range(400, 500)):
                    problems.append(f"GET {path} {q}: {r.status_code}")
    assert fuzz.healthy()
    assert not problems, "\n".join(problems[:50])


# ----- images in requests ------------------------------------------------------------------------------


def test_bad_images_in_chat_responses_and_safety(fuzz: Fuzz):
    problems = []
    images = bad.bad_image_urls()
    for key, case in images.items():
        part = {"type": "image_url", "image_url": {"url": case.url}}
        # the openai SDK, as a client would send it
        try:
            fuzz.sdk.chat.completions.create(
                model="tiny-mllama", max_tokens=2,
                messages=[{"role": "user", "content": [part, {"type": "text", "text": "What is this?"}]}])
            fuzz.tally.record("images", f"sdk chat {key}", 200)
            problems.append(f"chat {key}: 200, expected {case.statuses}")
        except openai.APIStatusError as e:
            fuzz.tally.record("images", f"sdk chat {key}", e.status_code, e.message)
            if e.status_code < 500 and e.status_code not in case.statuses:
                problems.append(f"chat {key}: {e.status_code}, expected {case.statuses}: {e.message[:200]}")
        except openai.APIConnectionError as e:
            fuzz.tally.record("images", f"sdk chat {key}", f"connection error ({e})")
        # Responses (input_image), moderations (multi-modal input), run-shield (image part)
        requests = {
            "responses": ("/v1/responses", {"model": "tiny-mllama", "max_output_tokens": 16, "input": [
                {"type": "message", "role": "user", "content": [
                    {"type": "input_image", "image_url": case.url}, {"type": "input_text", "text": "What is it?"}]}]}),
            "moderations": ("/v1/moderations", {"input": [part, {"type": "text", "text": "is this ok?"}]}),
            "run-shield": ("/v1/safety/run-shield", {"shield_id": "llama-guard", "messages": [
                {"role": "user", "content": [part, {"type": "text", "text": "is this ok?"}]}]}),
        }
        for name, (url, body) in requests.items():
            r = fuzz.send("images", f"{name} {key}", "POST", url, json=body)
            if r is None or r.status_code >= 500:
                continue
            if r.status_code not in case.statuses and not (400 <= r.status_code < 500 and case.statuses == (400,)):
                problems.append(f"{name} {key}: {r.status_code}, expected {case.statuses}: {r.text[:200]}")
            elif (why := _clear_4xx(r)) is not None:
                problems.append(f"{name} {key}: {why}")
    # two images for Mllama (one image per request) and an image in a system message
    png = _small_png_url()
    two = [{"type": "image_url", "image_url": {"url": png}}] * 2 + [{"type": "text", "text": "compare"}]
    r = fuzz.send("images", "chat two images", "POST", "/v1/chat/completions",
                  json={"model": "tiny-mllama", "max_tokens": 2, "messages": [{"role": "user", "content": two}]})
    if r is not None and r.status_code != 400:
        problems.append(f"chat two images: {r.status_code}: {r.text[:200]}")
    assert fuzz.healthy()
    assert not problems, "\n".join(problems)


# ----- lone surrogates: last, as one of them may leave the server unable to answer ---------------------


def test_lone_surrogate_in_every_string_field(fuzz: Fuzz):
    """``"\\ud800"`` is valid JSON syntax (Python's json accepts it) but no valid Unicode string: it must be
    refused (400) or carried safely, never reach a tokenizer or a response serializer (500), and never be
    stored where it breaks later reads. Runs late: a stored one can break ``/v1/health`` for good."""
    baselines = _baselines(fuzz)
    problems = []
    # registrations last: what they store is read by every later listing (and by /v1/health)
    routes = sorted((r for r in _post_routes(fuzz.openapi) if r[1] is not None),
                    key=lambda r: r[0] in ("/v1/models", "/v1/shields"))
    for path, schema in routes:
        url = _fill_path(fuzz, path)
        for prop in _resolve(schema, fuzz.openapi).get("properties", {}):
            raw = json.dumps({**baselines[path], prop: "__SURROGATE__"}).encode().replace(
                b"__SURROGATE__", b"\\ud800x")
            r = fuzz.send("surrogates", f"{path} {prop}=lone surrogate", "POST", url, content=raw,
                          headers={"content-type": "application/json"})
            if r is not None and 400 <= r.status_code < 500 and not _error_message(r):
                problems.append(f"{path} {prop}=lone surrogate: {r.status_code} without an error message")
        if path in _MAIN_TEXT_FIELD:  # inside the structure too (a chat message's content)
            prop, wrap = _MAIN_TEXT_FIELD[path]
            raw = json.dumps({**baselines[path], prop: wrap("__SURROGATE__")}).encode().replace(
                b"__SURROGATE__", b"\\udfffx")
            fuzz.send("surrogates", f"{path} {prop} text=lone surrogate", "POST", url, content=raw,
                      headers={"content-type": "application/json"})
    # whatever was stored must not break the reads that list it (the health check caches for 5 s); a 5xx
    # here is counted like any other, and test_zz_... (which also checks /v1/health) reports it
    time.sleep(6)
    for url in ("/v1/health", "/v1/models", "/v1/shields", "/v1/vector_stores", "/v1/responses",
                f"/v1/conversations/{fuzz.conversation_id}/items", "/v1/files", "/v1/providers"):
        fuzz.send("surrogates", f"GET {url} after the lone surrogates", "GET", url)
    assert not problems, "\n".join(problems)


# ----- the verdict ---------------------------------------------------------------------------------------


def test_zz_no_5xx_and_the_server_still_serves(fuzz: Fuzz, request):
    """The verdict: no input got a 5xx (or no answer), and the server still serves: health, and a search."""
    alive = fuzz.server.proc is not None and fuzz.server.proc.poll() is None
    health = fuzz.send("verdict", "GET /v1/health", "GET", "/v1/health")
    search = fuzz.send("verdict", "search the good store", "POST", f"/v1/vector_stores/{fuzz.store_id}/search",
                       json={"query": "total due"})
    line = fuzz.tally.summary()
    _print(request.config, "\n" + line)
    assert fuzz.tally.inputs > 1000, line
    verdict = {
        "server process alive": alive,
        "/v1/health is 200": health is not None and health.status_code == 200,
        "a search still finds the invoice": search is not None and search.status_code == 200
        and bool(search.json().get("data")),
        "no 5xx": not fuzz.tally.five_xx,
    }
    causes = "\n".join(f"  {n} x {cause}" for cause, n in fuzz.tally.causes.most_common())
    assert all(verdict.values()), f"{line}\n{verdict}\n5xx by cause:\n{causes}"
