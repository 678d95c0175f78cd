"""The OpenAI-compatible adapter against a real HTTP engine on loopback (no SDK mocks).

A small FastAPI app plays vLLM: canned answers, and it records each request's
body and headers so tests can check what actually went over the wire.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from vistack.api import (
    AuthenticationError,
    BadRequestError,
    HealthStatus,
    Model,
    NotFoundError,
    ServiceUnavailableError,
)
from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from vistack.context import set_provider_data
from vistack.providers.inference.openai_compat import (
    OllamaInferenceConfig,
    OpenAICompatInferenceProvider,
    OpenAIInferenceConfig,
    VLLMInferenceConfig,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

SERVED = ["meta-llama/Llama-3.2-11B-Vision-Instruct", "BAAI/bge-small-en-v1.5"]
LLM = SERVED[0]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ----- fake engine -----------------------------------------------------------------------------


def _error_for(model: str) -> JSONResponse | PlainTextResponse | None:
    if model == "err-400":  # vLLM's error shape
        return JSONResponse(
            {"object": "error", "message": "max_tokens must be at most 4096", "type": "BadRequestError", "code": 400},
            status_code=400,
        )
    if model == "err-401":  # OpenAI's error shape
        return JSONResponse(
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": None}},
            status_code=401,
        )
    if model == "err-500":
        return PlainTextResponse("engine exploded", status_code=500)
    return None


def _sse(events: list[dict[str, Any]]) -> StreamingResponse:
    async def gen():
        for e in events:
            yield f"data: {json.dumps(e)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(gen(), media_type="text/event-stream")


def make_engine(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    async def record(request: Request) -> dict[str, Any]:
        body = await request.json() if request.method == "POST" else {}
        seen.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        return body

    @app.get("/v1/models")
    async def models(request: Request):
        await record(request)
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 1, "owned_by": "vllm"} for m in SERVED],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await record(request)
        if (err := _error_for(body["model"])) is not None:
            return err
        if body["model"] == "slow":
            await asyncio.sleep(1.5)
        if body["model"] == "html":  # a proxy's page instead of JSON
            return PlainTextResponse("<html>502 Bad Gateway</html>", media_type="text/html")
        base = {"id": "chatcmpl-1", "created": 1, "model": body["model"]}
        if body["model"] == "err-stream":
            first = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"}}]}
            return _sse([first, {"error": {"message": "engine ran out of KV cache", "code": 500}}])
        if body.get("stream"):
            chunk = {**base, "object": "chat.completion.chunk"}
            return _sse(
                [
                    {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
                    {**chunk, "choices": [{"index": 0, "delta": {"content": "Hel"}}]},
                    {**chunk, "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
                    {**chunk, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
                ]
            )
        return {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            "prompt_logprobs": None,  # vLLM's own extra field
        }

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await record(request)
        if (err := _error_for(body["model"])) is not None:
            return err
        base = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": body["model"]}
        if body.get("stream"):
            return _sse(
                [
                    {**base, "choices": [{"index": 0, "text": "foo", "finish_reason": None}]},
                    {**base, "choices": [{"index": 0, "text": " bar", "finish_reason": "length"}]},
                ]
            )
        return {**base, "choices": [{"index": 0, "text": "foo bar", "finish_reason": "length"}]}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        body = await record(request)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return {
            "object": "list",
            "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": [0.1 * i, 0.5, 1.0]} for i in range(len(inputs))],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }

    return app


class Engine:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        config = uvicorn.Config(make_engine(self.seen), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("fake engine did not start within 15s")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def last(self, path: str) -> dict[str, Any]:
        return [r for r in self.seen if r["path"] == path][-1]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    e = Engine()
    e.start()
    yield e
    e.stop()


def make_provider(url: str, **cfg: Any) -> OpenAICompatInferenceProvider:
    cfg.setdefault("max_retries", 0)
    cfg.setdefault("timeout", 5)
    p = OpenAICompatInferenceProvider(VLLMInferenceConfig(url=url, **cfg))
    p.provider_id = "vllm"
    return p


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat_request(model: str = LLM, **kw: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest(model=model, messages=[{"role": "user", "content": "Hi"}], **kw)


# ----- configs ---------------------------------------------------------------------------------


def test_config_urls_and_keys() -> None:
    assert VLLMInferenceConfig(url="http://h:8000").url == "http://h:8000/v1"
    assert VLLMInferenceConfig(url="http://h:8000/v1/").url == "http://h:8000/v1"
    assert OllamaInferenceConfig().url == "http://localhost:11434/v1"
    assert OllamaInferenceConfig(url="http://gpu:11434").url == "http://gpu:11434/v1"
    assert OpenAIInferenceConfig().url == "https://api.openai.com/v1"
    assert VLLMInferenceConfig(base_url="http://h/v1", api_token="t").api_key.get_secret_value() == "t"
    assert VLLMInferenceConfig.provider_data_api_key == "vllm_api_key"
    assert OllamaInferenceConfig.provider_data_api_key == "ollama_api_key"
    assert OpenAIInferenceConfig.provider_data_api_key == "openai_api_key"
    with pytest.raises(ValueError, match="VLLM_URL"):
        VLLMInferenceConfig(url="")
    with pytest.raises(ValueError):
        VLLMInferenceConfig(url="http://h/v1", typo_field=1)


# ----- inference -------------------------------------------------------------------------------


async def test_chat_passes_extra_params_through(engine: Engine) -> None:
    p = make_provider(engine.url, extra_headers={"X-Team": "docs"})
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}
    req = chat_request(temperature=0.2, max_tokens=16, top_k=5, guided_json={"type": "object"}, n=3, logprobs=True,
                       top_logprobs=4, response_format=fmt, seed=9, stop=["\n\n"], user="analyst-7")
    result = await p.chat_completion(req)
    assert isinstance(result, ChatCompletion)
    assert result.choices[0].message.content == "Hello"
    assert result.usage is not None and result.usage.total_tokens == 6
    assert "prompt_logprobs" in (result.model_extra or {})  # engine extras survive
    sent = engine.last("/v1/chat/completions")
    assert sent["body"]["top_k"] == 5 and sent["body"]["guided_json"] == {"type": "object"}
    assert sent["body"]["temperature"] == 0.2 and sent["body"]["max_tokens"] == 16
    # the OpenAI surface inline::transformers implements itself reaches a remote engine untouched
    assert {k: sent["body"][k] for k in ("n", "logprobs", "top_logprobs", "response_format", "seed", "stop", "user")} \
        == {"n": 3, "logprobs": True, "top_logprobs": 4, "response_format": fmt, "seed": 9, "stop": ["\n\n"],
            "user": "analyst-7"}
    assert "stream" not in sent["body"] and "top_p" not in sent["body"]  # None fields are not sent
    assert sent["headers"]["x-team"] == "docs"
    await p.shutdown()


async def test_chat_stream_passes_chunks_through(engine: Engine) -> None:
    p = make_provider(engine.url)
    stream = await p.chat_completion(chat_request(stream=True, stream_options={"include_usage": True}))
    chunks = [c async for c in stream]
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 7
    assert engine.last("/v1/chat/completions")["body"]["stream_options"] == {"include_usage": True}
    await p.shutdown()


async def test_completion_plain_and_stream(engine: Engine) -> None:
    p = make_provider(engine.url)
    result = await p.completion(CompletionRequest(model=LLM, prompt="Say", max_tokens=2, echo=False, min_p=0.1))
    assert isinstance(result, Completion) and result.choices[0].text == "foo bar"
    assert engine.last("/v1/completions")["body"]["min_p"] == 0.1
    stream = await p.completion(CompletionRequest(model=LLM, prompt="Say", stream=True))
    chunks = [c async for c in stream]
    assert [c.choices[0].text for c in chunks] == ["foo", " bar"]
    assert all(isinstance(c, Completion) for c in chunks)
    await p.shutdown()


async def test_embeddings_always_ask_for_floats(engine: Engine) -> None:
    p = make_provider(engine.url)
    result = await p.embeddings(
        EmbeddingsRequest(model=SERVED[1], input=["a", "b"], encoding_format="base64", dimensions=3)
    )
    assert isinstance(result, EmbeddingsResponse)
    assert [d.index for d in result.data] == [0, 1] and result.data[1].embedding == [0.1, 0.5, 1.0]
    sent = engine.last("/v1/embeddings")["body"]
    assert sent["encoding_format"] == "float" and sent["dimensions"] == 3 and sent["input"] == ["a", "b"]
    await p.shutdown()


async def test_provider_data_key_overrides_configured_key(engine: Engine) -> None:
    p = make_provider(engine.url, api_key="configured")
    await p.chat_completion(chat_request())
    assert engine.last("/v1/chat/completions")["headers"]["authorization"] == "Bearer configured"
    set_provider_data({"vllm_api_key": "per-request", "openai_api_key": "ignored"})
    try:
        await p.chat_completion(chat_request())
        assert engine.last("/v1/chat/completions")["headers"]["authorization"] == "Bearer per-request"
    finally:
        set_provider_data({})
    await p.chat_completion(chat_request())
    assert engine.last("/v1/chat/completions")["headers"]["authorization"] == "Bearer configured"
    set_provider_data({"vllm_api_key": 42})
    try:
        with pytest.raises(BadRequestError, match="vllm_api_key"):
            await p.chat_completion(chat_request())
    finally:
        set_provider_data({})
    await p.shutdown()


# ----- errors ----------------------------------------------------------------------------------


async def test_engine_errors_map_to_vistack_errors(engine: Engine) -> None:
    p = make_provider(engine.url)
    with pytest.raises(BadRequestError, match="max_tokens must be at most 4096") as e400:
        await p.chat_completion(chat_request("err-400"))
    assert engine.url in e400.value.message
    with pytest.raises(AuthenticationError, match="Incorrect API key") as e401:
        await p.chat_completion(chat_request("err-401"))
    assert "vllm_api_key" in e401.value.message
    with pytest.raises(ServiceUnavailableError, match="engine exploded") as e500:
        await p.completion(CompletionRequest(model="err-500", prompt="x"))
    assert e500.value.status_code == 503
    await p.shutdown()


async def test_timeout_is_503(engine: Engine) -> None:
    p = make_provider(engine.url, timeout=0.3)
    with pytest.raises(ServiceUnavailableError, match="did not answer within 0.3s"):
        await p.chat_completion(chat_request("slow"))
    await p.shutdown()


async def test_connection_refused_names_url_and_fix() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    p = make_provider(url)
    with pytest.raises(ServiceUnavailableError) as err:
        await p.chat_completion(chat_request())
    assert f"cannot reach vLLM at {url}" in err.value.message and "VLLM_URL" in err.value.message
    health = await p.health()
    assert health.status == HealthStatus.ERROR and url in (health.message or "")
    p2 = make_provider(url, refresh_models=True)
    with pytest.raises(ServiceUnavailableError):
        await p2.list_models()
    # unreachable at registration: accepted, checked at request time
    model = Model(identifier="vllm/x", provider_resource_id="x", provider_id="vllm")
    assert await p.register_model(model) == model


# ----- models ----------------------------------------------------------------------------------


async def test_list_models_and_allowed_models(engine: Engine) -> None:
    assert await make_provider(engine.url).list_models() is None  # refresh_models off
    p = make_provider(engine.url, refresh_models=True)
    models = await p.list_models()
    assert [m.identifier for m in models] == [f"vllm/{m}" for m in SERVED]
    assert all(m.provider_id == "vllm" and m.model_type == "llm" for m in models)
    assert models[0].provider_resource_id == LLM
    only = make_provider(engine.url, refresh_models=True, allowed_models=[LLM])
    assert [m.provider_resource_id for m in await only.list_models()] == [LLM]
    with pytest.raises(NotFoundError, match="allowed_models"):
        await only.chat_completion(chat_request(SERVED[1]))
    assert (await p.health()).status == HealthStatus.OK


async def test_register_model_checks_engine(engine: Engine) -> None:
    p = make_provider(engine.url)
    ok = Model(identifier="vision", provider_resource_id=LLM, provider_id="vllm")
    assert await p.register_model(ok) == ok
    with pytest.raises(NotFoundError, match="does not serve model 'no-such-model'") as err:
        await p.register_model(Model(identifier="x", provider_resource_id="no-such-model", provider_id="vllm"))
    assert LLM in err.value.message
    await p.shutdown()


async def test_mid_stream_error_and_unreadable_answer(engine: Engine) -> None:
    p = make_provider(engine.url)
    stream = await p.chat_completion(chat_request("err-stream", stream=True))
    got = []
    with pytest.raises(ServiceUnavailableError, match="KV cache|engine"):
        async for chunk in stream:
            got.append(chunk)
    assert len(got) == 1
    with pytest.raises(ServiceUnavailableError, match="cannot read as ChatCompletion"):
        await p.chat_completion(chat_request("html"))
    await p.shutdown()
