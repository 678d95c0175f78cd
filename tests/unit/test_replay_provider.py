"""The replay inference provider: in-process, and once through a real server with the ``openai`` SDK."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

from vistack.api import BadRequestError, ServiceUnavailableError
from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
)
from vistack.registry import ProviderRegistry
from vistack.testing.replay import ReplayInferenceConfig, ReplayInferenceProvider, get_provider_spec
from vistack.testing.replay_server import replay_distribution

T = TypeVar("T")
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
PYTHON_TAG_CALL = '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}<|eom_id|>'


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def write_script(path: Path, *lines: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def make(tmp_path: Path, *lines: dict[str, Any], **config: Any) -> ReplayInferenceProvider:
    script = write_script(tmp_path / "script.jsonl", *lines)
    return ReplayInferenceProvider(ReplayInferenceConfig(script=script, log=tmp_path / "calls.jsonl", **config))


def chat(content: Any = "Weather in Paris?", *, messages: list[dict] | None = None, **kw: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "replay-llama", "messages": messages or [{"role": "user", "content": content}], **kw}
    )


async def complete(p: ReplayInferenceProvider, req: ChatCompletionRequest) -> ChatCompletion:
    result = await p.chat_completion(req)
    assert isinstance(result, ChatCompletion)
    return result


async def collect(stream: Any) -> list[Any]:
    assert isinstance(stream, AsyncIterator)
    return [c async for c in stream]


def png_data_url(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "navy").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# ----- chat ------------------------------------------------------------------------------------------------


def test_plain_answer_usage_and_log(tmp_path: Path) -> None:
    p = make(tmp_path, {"text": "It is sunny in Paris."})
    r = run(complete(p, chat(max_tokens=64)))
    assert r.choices[0].message.content == "It is sunny in Paris." and r.choices[0].finish_reason == "stop"
    assert r.model == "replay-llama" and r.choices[0].message.tool_calls is None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 5, 8)
    (entry,) = read_log(tmp_path / "calls.jsonl")
    assert entry["messages"] == 1 and entry["roles"] == ["user"] and entry["last_message"] == "Weather in Paris?"
    assert entry["images"] == 0 and entry["tools"] == [] and entry["max_tokens"] == 64 and entry["stream"] is False
    assert entry["script_line"] == 1 and entry["output"] == "It is sunny in Paris."


@pytest.mark.parametrize(
    "text", [PYTHON_TAG_CALL, '[get_weather(city="Paris")]', '{"name": "get_weather", "arguments": {"city": "Paris"}}']
)
def test_tool_call_when_tools_are_offered(tmp_path: Path, text: str) -> None:
    p = make(tmp_path, {"text": text}, {"text": text}, {"text": text})
    r = run(complete(p, chat(tools=TOOLS)))
    assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.content is None
    (call,) = r.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments or "") == {"city": "Paris"}
    plain = run(complete(p, chat()))  # no tools: the raw text is the answer
    assert plain.choices[0].message.content == text and plain.choices[0].finish_reason == "stop"
    none = run(complete(p, chat(tools=TOOLS, tool_choice="none")))
    assert none.choices[0].message.content == text and none.choices[0].message.tool_calls is None


def test_unknown_tool_or_prose_stays_text(tmp_path: Path) -> None:
    unknown = '{"name": "get_time", "parameters": {}}'
    p = make(tmp_path, {"text": unknown}, {"text": 'Call {"name": "get_weather", "parameters": {}}'})
    assert run(complete(p, chat(tools=TOOLS))).choices[0].message.content == unknown
    assert run(complete(p, chat(tools=TOOLS))).choices[0].finish_reason == "stop"


def test_streamed_text_word_by_word_with_usage(tmp_path: Path) -> None:
    text = "It is  sunny\nin Paris. "
    p = make(tmp_path, {"text": text})
    chunks = run(collect(run_stream(p, chat(stream=True, stream_options={"include_usage": True}))))
    assert all(isinstance(c, ChatCompletionChunk) and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert "".join(contents) == text and len(contents) == 6
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert read_log(tmp_path / "calls.jsonl")[0]["stream"] is True


def run_stream(p: ReplayInferenceProvider, req: ChatCompletionRequest) -> Any:
    return run(p.chat_completion(req))


def test_streamed_tool_call_is_one_delta(tmp_path: Path) -> None:
    p = make(tmp_path, {"text": '[get_weather(city="Oslo")]'})
    chunks = run(collect(run_stream(p, chat(tools=TOOLS, stream=True))))
    deltas = [c.choices[0].delta for c in chunks]
    assert not any(d.content for d in deltas)
    (tool_delta,) = [d for d in deltas if d.tool_calls]
    (tc,) = tool_delta.tool_calls or []
    assert tc["index"] == 0 and tc["id"].startswith("call_") and tc["type"] == "function"
    assert tc["function"]["name"] == "get_weather" and json.loads(tc["function"]["arguments"]) == {"city": "Oslo"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls" and chunks[-1].usage is None


def test_max_tokens_cuts_words_and_a_cut_call_is_text(tmp_path: Path) -> None:
    p = make(tmp_path, {"text": "one two  three four"}, {"text": PYTHON_TAG_CALL}, {"text": "a b c"})
    r = run(complete(p, chat(max_tokens=2)))
    assert r.choices[0].message.content == "one two" and r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 2
    cut = run(complete(p, chat(tools=TOOLS, max_completion_tokens=2, max_tokens=50)))
    assert cut.choices[0].finish_reason == "length" and cut.choices[0].message.tool_calls is None
    assert cut.choices[0].message.content == '<|python_tag|>{"name": "get_weather",'
    exact = run(complete(p, chat(max_tokens=3)))
    assert exact.choices[0].message.content == "a b c" and exact.choices[0].finish_reason == "stop"


def test_match_lines_order_and_exhaustion(tmp_path: Path) -> None:
    p = make(
        tmp_path,
        {"match": "18C", "text": "It is 18C in Paris."},
        {"text": PYTHON_TAG_CALL},
        {"match": "Rome", "text": "Rome answer"},
        {"text": "second unmatched"},
        default_text="no more",
    )
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    ]
    first = run(complete(p, chat(tools=TOOLS)))  # no match line applies: the first unmatched line
    assert first.choices[0].message.tool_calls is not None
    assert run(complete(p, chat(messages=history, tools=TOOLS))).choices[0].message.content == "It is 18C in Paris."
    assert run(complete(p, chat(messages=history))).choices[0].message.content == "second unmatched"  # match used up
    assert run(complete(p, chat("And Rome?"))).choices[0].message.content == "Rome answer"
    assert run(complete(p, chat("And Rome?"))).choices[0].message.content == "no more"
    log = read_log(tmp_path / "calls.jsonl")
    assert [e["script_line"] for e in log] == [2, 1, 4, 3, None]
    assert log[1]["roles"] == ["user", "assistant", "tool"] and log[1]["last_message"] == "18C, sunny"


def test_script_is_reread_and_tracked_per_content(tmp_path: Path) -> None:
    p = make(tmp_path, {"text": "A1"}, {"text": "A2"})
    assert run(complete(p, chat())).choices[0].message.content == "A1"
    write_script(tmp_path / "script.jsonl", {"text": "B1"})
    assert run(complete(p, chat())).choices[0].message.content == "B1"
    write_script(tmp_path / "script.jsonl", {"text": "A1"}, {"text": "A2"})  # the first content again: resumes
    assert run(complete(p, chat())).choices[0].message.content == "A2"


def test_missing_script_answers_default_and_bad_lines_say_where(tmp_path: Path) -> None:
    p = ReplayInferenceProvider(ReplayInferenceConfig(script=tmp_path / "none.jsonl", default_text="fallback"))
    assert run(complete(p, chat())).choices[0].message.content == "fallback"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n\n{"txt": "typo"}\n')
    with pytest.raises(ServiceUnavailableError, match="bad.jsonl line 3"):
        run(ReplayInferenceProvider(ReplayInferenceConfig(script=bad)).chat_completion(chat()))


def test_log_records_images_with_their_sizes_and_request_knobs(tmp_path: Path) -> None:
    p = make(tmp_path, {"text": "A chart."})
    content = [
        {"type": "text", "text": "What does page 3 show?"},
        {"type": "image_url", "image_url": {"url": png_data_url(40, 30)}},
    ]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]
    req = chat(messages=messages, tools=TOOLS, tool_choice="auto", max_completion_tokens=99, stream=True)
    run(collect(run_stream(p, req)))
    (entry,) = read_log(tmp_path / "calls.jsonl")
    assert entry["images"] == 1 and entry["image_sizes"] == ["40x30"]
    assert entry["roles"] == ["system", "user"] and entry["last_message"] == "What does page 3 show?"
    assert entry["tools"] == ["get_weather"] and entry["tool_choice"] == "auto" and entry["max_tokens"] == 99
    assert entry["model"] == "replay-llama" and entry["stream"] is True


def test_a_bad_image_is_refused_like_a_real_provider_and_logged(tmp_path: Path) -> None:
    p = make(tmp_path, {"text": "never"})
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]
    with pytest.raises(BadRequestError, match="remote image URLs"):
        run(p.chat_completion(chat(content)))
    (entry,) = read_log(tmp_path / "calls.jsonl")
    assert "remote image URLs" in entry["error"]


# ----- completions, embeddings, spec ----------------------------------------------------------------------


def test_completions_whole_and_streamed(tmp_path: Path) -> None:
    p = make(tmp_path, {"text": " blue. Roses are red."}, {"text": "x y z"})
    r = run(p.completion(CompletionRequest(model="replay-llama", prompt="Violets are", max_tokens=2)))
    assert isinstance(r, Completion) and r.choices[0].text == " blue. Roses" and r.choices[0].finish_reason == "length"
    req = CompletionRequest(
        model="replay-llama", prompt="Q", stream=True, echo=True, stream_options={"include_usage": True}
    )
    chunks = run(collect(run(p.completion(req))))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Qx y z"
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].usage is not None
    assert read_log(tmp_path / "calls.jsonl")[1]["endpoint"] == "completions"


def test_embeddings_are_refused_and_no_models_are_listed(tmp_path: Path) -> None:
    p = make(tmp_path)
    with pytest.raises(BadRequestError, match="does not compute embeddings"):
        run(p.embeddings(EmbeddingsRequest(model="replay-llama", input="x")))
    assert run(p.list_models()) is None


def test_loads_as_an_external_provider() -> None:
    spec = ProviderRegistry().load_external("vistack.testing.replay")
    assert spec == get_provider_spec() and spec.provider_type == "inline::replay"
    assert spec.load_provider_class() is ReplayInferenceProvider
    assert spec.load_config_class() is ReplayInferenceConfig


def test_replay_distribution_shape(tmp_path: Path) -> None:
    dist = replay_distribution(tmp_path / "s.jsonl", tmp_path / "l.jsonl")
    assert dist["apis"] == ["inference", "files", "vector_io", "responses"]
    assert dist["providers"]["responses"] == [
        {"provider_id": "builtin", "provider_type": "inline::builtin", "config": {}}
    ]
    replay = dist["providers"]["inference"][0]
    assert replay["module"] == "vistack.testing.replay" and replay["config"]["log"] == str(tmp_path / "l.jsonl")
    assert "responses" not in replay_distribution(tmp_path / "s.jsonl", responses=False)["providers"]


# ----- through a real server -------------------------------------------------------------------------------


@pytest.mark.slow
def test_through_a_real_server_with_the_openai_sdk(tmp_path: Path) -> None:
    openai = pytest.importorskip("openai")
    from vistack.testing.server import ServerProcess

    script, log = tmp_path / "script.jsonl", tmp_path / "calls.jsonl"
    write_script(
        script,
        {"text": PYTHON_TAG_CALL},
        {"text": '[get_weather(city="Rome")]'},
        {"match": "18C", "text": "It is 18C and sunny in Paris."},
    )
    with ServerProcess(replay_distribution(script, log, responses=False), tmp_path / "srv") as server:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0)
        image = {"type": "image_url", "image_url": {"url": png_data_url(64, 48)}}
        r = client.chat.completions.create(
            model="replay-llama",
            tools=TOOLS,
            messages=[{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}, image]}],
        )
        (call,) = r.choices[0].message.tool_calls or []
        assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris"} and r.model == "replay/replay-llama"

        stream = client.chat.completions.create(
            model="replay-llama",
            tools=TOOLS,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "And Rome?"}],
        )
        chunks = list(stream)
        calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert [(tc.index, tc.function.name, json.loads(tc.function.arguments)) for tc in calls] == [
            (0, "get_weather", {"city": "Rome"})
        ]
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 1

        history = [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"},
        ]
        streamed = client.chat.completions.create(model="replay-llama", tools=TOOLS, messages=history, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        assert text == "It is 18C and sunny in Paris."

    log_entries = read_log(log)
    assert len(log_entries) == 3 and log_entries[0]["image_sizes"] == ["64x48"]
    assert log_entries[0]["model"] == "replay-llama" and [e["stream"] for e in log_entries] == [False, True, True]
    assert log_entries[2]["roles"] == ["user", "assistant", "tool"] and log_entries[2]["script_line"] == 3
