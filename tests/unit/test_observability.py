"""Observability: JSON logs with request id and principal, X-Request-ID, /metrics, unbuffered streams, tokens."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from vistack import metrics as metrics_module
from vistack.api import InferenceProvider, ModelType
from vistack.api.inference import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceDelta,
    ChunkChoice,
    Usage,
)
from vistack.context import set_principal
from vistack.logging_setup import JsonFormatter, accept_request_id, configure_logging, current_request_id
from vistack.metrics import Metrics
from vistack.server.middleware import RequestContextMiddleware
from vistack.server.observability import ObservabilityMiddleware
from vistack.server.routes import metrics as metrics_routes

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _principal(name: str):
    """A principal in whatever shape vistack.context takes (a Principal object, or a plain string before)."""
    try:
        from vistack.access import Principal
    except ImportError:  # pragma: no cover
        return name
    return Principal(name)


class _SetPrincipal:
    """Stands in for authentication: the request's principal from an ``X-Test-User`` header."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            for k, v in scope["headers"]:
                if k == b"x-test-user":
                    set_principal(_principal(v.decode()))
        await self.app(scope, receive, send)


def build_app(metrics: Metrics, **routes_kw) -> FastAPI:
    app = FastAPI()
    app.state.metrics = metrics
    log = logging.getLogger("vistack.test.route")

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict:
        log.info("looking up thing", extra={"thing_id": thing_id})
        return {"id": thing_id, "request_id": current_request_id()}

    @app.get("/v1/boom")
    async def boom() -> dict:
        try:
            raise ValueError("kaput")
        except ValueError:
            log.exception("it broke")
        return {"ok": False}

    app.include_router(metrics_routes.router)
    # add_middleware wraps: the last added is the outermost, as in create_app
    app.add_middleware(_SetPrincipal)
    app.add_middleware(RequestContextMiddleware, max_request_bytes=1 << 20)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app


@contextlib.contextmanager
def captured_logs(fmt: str = "json") -> Iterator[io.StringIO]:
    """Root logging in ``fmt`` into a buffer; the previous handlers and level come back afterwards.

    Used inside a test (not as a fixture): pytest swaps its own root handlers between
    setup, call and teardown, and restoring another phase's handlers would leak them.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buf = io.StringIO()
    configure_logging("info", fmt, stream=buf)
    try:
        yield buf
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in saved_handlers:
            root.addHandler(h)
        root.setLevel(saved_level)


def _records(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


# ----- logs and request ids --------------------------------------------------------------------------


async def test_json_log_lines_carry_request_id_and_principal() -> None:
    app = build_app(Metrics())
    with captured_logs() as log_lines:
        async with _client(app) as c:
            r = await c.get("/v1/things/abc", headers={"X-Test-User": "alice"})
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    assert r.json()["request_id"] == rid  # the contextvar is set while the route runs

    records = _records(log_lines)
    route_line = next(x for x in records if x["logger"] == "vistack.test.route")
    assert route_line["message"] == "looking up thing"
    assert route_line["request_id"] == rid
    assert route_line["principal"] == "alice"
    assert route_line["thing_id"] == "abc"  # extra= fields
    assert route_line["level"] == "INFO" and route_line["ts"].endswith("Z")

    access = next(x for x in records if x["logger"] == "vistack.access")
    assert access["request_id"] == rid and access["principal"] == "alice"
    assert access["method"] == "GET" and access["path"] == "/v1/things/abc"
    assert access["route"] == "/v1/things/{thing_id}"
    assert access["status"] == 200 and access["bytes"] == len(r.content)
    assert isinstance(access["duration_ms"], float | int) and access["duration_ms"] >= 0


async def test_anonymous_principal_and_exc_info() -> None:
    app = build_app(Metrics())
    with captured_logs() as log_lines:
        async with _client(app) as c:
            r = await c.get("/v1/boom")
    records = _records(log_lines)
    broke = next(x for x in records if x["message"] == "it broke")
    assert broke["principal"] == "anonymous"
    assert broke["request_id"] == r.headers["x-request-id"]
    assert broke["level"] == "ERROR"
    assert "ValueError: kaput" in broke["exc_info"]


def test_log_line_outside_a_request_and_unserializable_extra() -> None:
    record = logging.LogRecord("x.y", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.thing = object()  # as extra= would set it
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "hello world" and out["logger"] == "x.y" and out["level"] == "WARNING"
    assert out["request_id"] == "-"
    assert out["thing"].startswith("<object object")


def test_text_format_has_request_id() -> None:
    with captured_logs("text") as buf:
        logging.getLogger("vistack.test").info("plain line")
    assert "INFO vistack.test [-] plain line" in buf.getvalue()
    with pytest.raises(ValueError):
        configure_logging("info", "xml", stream=io.StringIO())


async def test_request_id_reused_when_sane_replaced_when_not() -> None:
    app = build_app(Metrics())
    async with _client(app) as c:
        sane = "abc-123_X.y"
        r = await c.get("/v1/things/1", headers={"X-Request-ID": sane})
        assert r.headers["x-request-id"] == sane
        assert r.json()["request_id"] == sane

        for bad in ("has space", "x" * 129, "quote\"d", "semi;colon", ""):
            r = await c.get("/v1/things/1", headers={"X-Request-ID": bad})
            got = r.headers["x-request-id"]
            assert got != bad and len(got) == 32 and got.isalnum()

        r1, r2 = await c.get("/v1/things/1"), await c.get("/v1/things/1")
        assert r1.headers["x-request-id"] != r2.headers["x-request-id"]
        # errors before routing (413 from the body-size middleware) get one too
        r = await c.post("/v1/things/1", content=b"x" * ((1 << 20) + 1))
        assert r.status_code == 413 and r.headers["x-request-id"]
    assert accept_request_id("x" * 128) == "x" * 128
    assert accept_request_id(b"\xff\xfe") != "\xff\xfe"


# ----- metrics ---------------------------------------------------------------------------------------


async def test_metrics_endpoint_counts_requests_by_route_template() -> None:
    metrics = Metrics()
    app = build_app(metrics)
    async with _client(app) as c:
        for thing in ("a", "b", "c"):
            assert (await c.get(f"/v1/things/{thing}")).status_code == 200
        assert (await c.get("/no/such/path/1")).status_code == 404
        assert (await c.get("/no/such/path/2")).status_code == 404
        r = await c.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        text = r.text

    value = metrics.registry.get_sample_value
    labels = {"route": "/v1/things/{thing_id}", "method": "GET", "status": "200"}
    assert value("vistack_requests_total", labels) == 3
    assert value("vistack_requests_total", {"route": "unmatched", "method": "GET", "status": "404"}) == 2
    assert value("vistack_request_duration_seconds_count", {"route": "/v1/things/{thing_id}", "method": "GET"}) == 3
    assert 'vistack_requests_total{method="GET",route="/v1/things/{thing_id}",status="200"} 3.0' in text
    assert 'route="unmatched"' in text and "/no/such/path" not in text
    for name in ("vistack_tokens_generated_total", "vistack_prompt_tokens_total", "vistack_queue_depth",
                 "vistack_ingestion_pages_total", "vistack_ingestion_files_total", "vistack_ingestion_seconds"):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert 'vistack_ingestion_files_total{status="completed"} 0.0' in text
    # a scrape is counted once it has finished: not in its own output, in the next one
    assert 'route="/metrics"' not in text
    async with _client(app) as c:
        text = (await c.get("/metrics")).text
    assert 'vistack_requests_total{method="GET",route="/metrics",status="200"} 1.0' in text
    assert value("vistack_requests_total", {"route": "/metrics", "method": "GET", "status": "200"}) == 2
    assert "/metrics" not in app.openapi()["paths"]


async def test_each_app_has_its_own_registry() -> None:
    m1, m2 = Metrics(), Metrics()
    async with _client(build_app(m1)) as c1, _client(build_app(m2)) as c2:
        await c1.get("/v1/things/a")
        await c1.get("/v1/things/b")
        await c2.get("/v1/things/a")
    labels = {"route": "/v1/things/{thing_id}", "method": "GET", "status": "200"}
    assert m1.registry.get_sample_value("vistack_requests_total", labels) == 2
    assert m2.registry.get_sample_value("vistack_requests_total", labels) == 1


def test_current_metrics_accessor() -> None:
    fallback = metrics_module.current()
    assert isinstance(fallback, Metrics)
    mine = Metrics()
    previous = metrics_module.set_current(mine)
    try:
        assert metrics_module.current() is mine
        other = Metrics()
        metrics_module.clear_current(other)  # not current: nothing happens
        assert metrics_module.current() is mine
    finally:
        metrics_module.clear_current(mine)
        metrics_module.set_current(previous)
    mine.tokens("m", -1, None)  # nonsense is ignored, never raised
    mine.ingestion("completed", pages=-3, seconds=-1.0)


# ----- streaming ---------------------------------------------------------------------------------------


async def test_streaming_response_is_not_buffered() -> None:
    """The first chunk reaches the server before the generator may go on: nothing holds the body back."""
    metrics = Metrics()
    app = build_app(metrics)
    first_chunk_out = asyncio.Event()
    generator_done = asyncio.Event()

    @app.get("/v1/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first\n"
            await first_chunk_out.wait()  # set only once the server has received the first chunk
            await asyncio.sleep(0.05)
            yield b"second\n"
            generator_done.set()

        return StreamingResponse(body(), media_type="text/plain")

    sent: list[dict] = []
    disconnect = asyncio.Event()

    async def receive() -> dict:
        if not sent and not getattr(receive, "done", False):
            receive.done = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body") == b"first\n":
            assert not generator_done.is_set()
            first_chunk_out.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/v1/stream", "raw_path": b"/v1/stream", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"test"), (b"x-request-id", b"stream-1")], "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    with captured_logs() as log_lines:
        try:
            await asyncio.wait_for(app(scope, receive, send), timeout=10)
        except TimeoutError:  # pragma: no cover - what a buffering middleware does
            pytest.fail("the first chunk never reached the server: the response was buffered")
        finally:
            disconnect.set()

    start = next(m for m in sent if m["type"] == "http.response.start")
    assert (b"x-request-id", b"stream-1") in start["headers"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert body == b"first\nsecond\n"
    access = next(x for x in _records(log_lines) if x["logger"] == "vistack.access")
    assert access["route"] == "/v1/stream" and access["bytes"] == len(body)
    assert access["duration_ms"] >= 50  # measured to the end of the body, not to the headers
    total = metrics.registry.get_sample_value("vistack_request_duration_seconds_sum",
                                              {"route": "/v1/stream", "method": "GET"})
    assert total >= 0.05


# ----- tokens, queue depth, ingestion --------------------------------------------------------------------


class _FakeLLM(InferenceProvider):
    async def chat_completion(self, request: ChatCompletionRequest):
        used = Usage(prompt_tokens=7, completion_tokens=3, total_tokens=10)
        if not request.stream:
            return ChatCompletion(
                model=request.model, choices=[ChatChoice(message=AssistantMessage(content="hi"))], usage=used
            )

        async def chunks() -> AsyncIterator[ChatCompletionChunk]:
            for piece in ("h", "i"):
                yield ChatCompletionChunk(id="c1", model=request.model,
                                          choices=[ChunkChoice(delta=ChoiceDelta(content=piece))])
            if request.include_usage_in_stream:
                yield ChatCompletionChunk(id="c1", model=request.model, choices=[], usage=used)

        return chunks()


@pytest.fixture
def current_metrics() -> Iterator[Metrics]:
    mine = Metrics()
    previous = metrics_module.set_current(mine)
    try:
        yield mine
    finally:
        metrics_module.set_current(previous)


async def test_inference_router_records_tokens(tmp_path, current_metrics: Metrics) -> None:
    from vistack.config import ModelEntry
    from vistack.inference import InferenceRouter
    from vistack.model_catalog import ModelCatalog
    from vistack.storage import MetadataStore

    provider = _FakeLLM(None)
    provider.provider_id = "fake"
    store = MetadataStore(tmp_path / "meta.db")
    catalog = ModelCatalog(store, {"fake": provider})
    await catalog.load([ModelEntry(model_id="tiny", provider_id="fake", model_type=ModelType.llm)])
    router = InferenceRouter(catalog)
    value = current_metrics.registry.get_sample_value
    model = {"model": "fake/tiny"}
    msgs = [{"role": "user", "content": "hello"}]
    try:
        answer = await router.chat_completion(ChatCompletionRequest(model="tiny", messages=msgs))
        assert answer.model == "fake/tiny"  # behaviour unchanged
        assert value("vistack_prompt_tokens_total", model) == 7
        assert value("vistack_tokens_generated_total", model) == 3

        # a stream with the final usage chunk: counted once, when it ends
        stream = await router.chat_completion(ChatCompletionRequest(
            model="tiny", messages=msgs, stream=True, stream_options={"include_usage": True}))
        chunks = [c async for c in stream]
        assert [c.model for c in chunks] == ["fake/tiny"] * 3 and chunks[-1].usage is not None
        await stream.aclose()  # closing after the end does not count it again
        assert value("vistack_prompt_tokens_total", model) == 14
        assert value("vistack_tokens_generated_total", model) == 6

        # a stream without usage is not counted (nothing to count from)
        stream = await router.chat_completion(ChatCompletionRequest(model="tiny", messages=msgs, stream=True))
        chunks = [c async for c in stream]
        assert all(c.usage is None for c in chunks) and len(chunks) == 2
        assert value("vistack_tokens_generated_total", model) == 6
    finally:
        store.close()


def test_transformers_slot_reports_queue_depth(current_metrics: Metrics) -> None:
    from vistack.providers.inference.transformers.worker import Slot

    slot = Slot("org/model", max_queued=4)
    depth = lambda: current_metrics.registry.get_sample_value("vistack_queue_depth", {"model": "org/model"})  # noqa: E731
    assert depth() == 0
    release = threading.Event()
    try:
        futures = [slot.submit(release.wait, 10) for _ in range(3)]
        assert depth() == 3  # one running, two waiting
        release.set()
        for f in futures:
            f.result(timeout=10)
        assert depth() == 0
    finally:
        release.set()
        slot.executor.shutdown(wait=True)


async def test_ingestion_records_files_pages_and_seconds(tmp_path, current_metrics: Metrics) -> None:
    from vistack.api import ServiceUnavailableError
    from vistack.rag.ingestion import IngestionCancelled, Ingestor, IngestResult

    class Files:
        async def local_path(self, file_id: str, owner=None) -> str:
            return str(tmp_path / file_id)

    class Rec:
        class object:  # noqa: N801 - the shape of FileRecord.object
            id = "file-1"

    outcomes: list = [IngestResult(4, 9, []), ValueError("bad pdf"), ServiceUnavailableError("embedder down"),
                      IngestionCancelled()]

    async def fake_ingest(store, rec, owner, cancelled, path):
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    ingestor = Ingestor(Files(), None, None, None)  # type: ignore[arg-type]
    ingestor._ingest = fake_ingest  # type: ignore[method-assign]
    result = await ingestor.ingest(None, Rec(), "owner", threading.Event())
    assert result.page_count == 4
    for expected in (ValueError, ServiceUnavailableError, IngestionCancelled):
        with pytest.raises(expected):
            await ingestor.ingest(None, Rec(), "owner", threading.Event())

    value = current_metrics.registry.get_sample_value
    assert value("vistack_ingestion_files_total", {"status": "completed"}) == 1
    assert value("vistack_ingestion_files_total", {"status": "failed"}) == 1
    assert value("vistack_ingestion_files_total", {"status": "unavailable"}) == 1
    assert value("vistack_ingestion_pages_total") == 4
    assert value("vistack_ingestion_seconds_count") == 3  # a cancelled run is not counted
