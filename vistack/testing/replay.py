"""``inline::replay``: a test double that replays recorded model outputs at the provider boundary.

Behaviour that depends on what a model says (tool-call parsing, the agent loop) is tested with
recorded outputs, not with a random tiny model (DESIGN.md, "Tests without weights"). This provider
answers every chat or completions call with the next line of a script of raw model texts, exactly
as a recorded Llama 3.2 wrote them (``<|python_tag|>{"name": ...}``, ``[get_weather(city="Paris")]``
or a plain answer), through the same OpenAI-shaped results and chunk streams as a real provider,
and writes one JSON line per call to a log so a test can count and inspect the model calls.

Load it from a distribution YAML as an external provider::

    providers:
      inference:
      - provider_id: replay
        provider_type: inline::replay
        module: vistack.testing.replay
        config: {script: /tmp/script.jsonl, log: /tmp/calls.jsonl}

Script lines are ``{"text": ...}`` (taken in order, one per call) or ``{"match": "substring",
"text": ...}`` (taken only by a call whose last user/tool message contains the substring; the first
such line wins). Each line is used once unless it says ``"repeat": true`` (a guard double answering
``unsafe`` to every call that mentions a trigger word); an exhausted script answers ``default_text``. The file is
re-read on every call (tests rewrite it between requests); used lines are tracked per file content.
Tokens are whitespace-separated words: ``max_tokens`` cuts the text (finish ``length``, no tool
call) and usage counts words. With ``tools`` offered (and tool_choice not ``none``) a text that
:func:`vistack.tool_calls.parse_tool_calls` reads as calls to offered tools becomes ``tool_calls``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vistack.api import Api, BadRequestError, InferenceProvider, ServiceUnavailableError, VistackError
from vistack.api.inference import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChoiceDelta,
    ChunkChoice,
    Completion,
    CompletionChoice,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    FinishReason,
    Usage,
    new_id,
)
from vistack.images import decode_image_url
from vistack.registry import ProviderSpec
from vistack.tool_calls import parse_tool_calls, tool_names

_WORD = re.compile(r"\S+")
_PIECE = re.compile(r"\s*\S+|\s+$")


class ReplayInferenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    script: Path = Field(description="JSONL of scripted outputs: {text} or {match, text} per line")
    log: Path | None = Field(default=None, description="JSONL file that gets one line per model call")
    default_text: str = Field(default="(the replay script has no more outputs)", description="answer once exhausted")


def get_provider_spec() -> ProviderSpec:
    return ProviderSpec(
        api=Api.inference,
        provider_type="inline::replay",
        module=__name__,
        provider_class="ReplayInferenceProvider",
        config_class="ReplayInferenceConfig",
        description="Test double: replays scripted (recorded) model outputs and logs every call.",
    )


class ReplayInferenceProvider(InferenceProvider):
    config: ReplayInferenceConfig

    def __init__(self, config: ReplayInferenceConfig, deps: dict | None = None) -> None:
        super().__init__(config, deps)
        self._used: dict[str, set[int]] = {}  # script content hash -> indices of used lines

    async def chat_completion(
        self, request: ChatCompletionRequest
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        msgs, names = request.messages, tool_names(request.tools or [])
        entry: dict[str, Any] = {
            "endpoint": "chat.completions",
            "model": request.model,
            "messages": len(msgs),
            "roles": [m.role for m in msgs],
            "last_message": msgs[-1].text(),
            **self._images(msgs),
            "tools": sorted(names),
            "tool_choice": request.tool_choice,
            "max_tokens": request.max_new_tokens,
            "stream": bool(request.stream),
        }
        asking = next((m.text() for m in reversed(msgs) if m.role in ("user", "tool")), "")
        text, finish = _cut(self._take(asking, entry), request.max_new_tokens)
        offered = bool(names) and request.tool_choice != "none" and finish != "length"
        calls = parse_tool_calls(text, names) if offered else None
        used = _usage(sum(_words(m.text()) for m in msgs), _words(text))
        if not request.stream:
            message = AssistantMessage(content=None if calls else text, tool_calls=calls)
            choice = ChatChoice(message=message, finish_reason="tool_calls" if calls else finish)
            return ChatCompletion(model=request.model, choices=[choice], usage=used)
        cid = new_id("chatcmpl")

        def chunk(delta: ChoiceDelta, finish: FinishReason | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=cid, model=request.model, choices=[ChunkChoice(delta=delta, finish_reason=finish)]
            )

        def chunks() -> Iterator[ChatCompletionChunk]:
            yield chunk(ChoiceDelta(role="assistant", content=""))
            if calls:
                yield chunk(
                    ChoiceDelta(
                        tool_calls=[{"index": i, **c.model_dump(exclude_none=True)} for i, c in enumerate(calls)]
                    )
                )
            else:
                yield from (chunk(ChoiceDelta(content=p)) for p in _PIECE.findall(text))
            yield chunk(ChoiceDelta(), "tool_calls" if calls else finish)
            if request.include_usage_in_stream:
                yield ChatCompletionChunk(id=cid, model=request.model, choices=[], usage=used)

        return _aiter(list(chunks()))

    async def completion(self, request: CompletionRequest) -> Completion | AsyncIterator[Completion]:
        prompt = request.prompt if isinstance(request.prompt, str) else "".join(map(str, request.prompt))
        entry: dict[str, Any] = {
            "endpoint": "completions",
            "model": request.model,
            "messages": 0,
            "roles": [],
            "last_message": prompt,
            "images": 0,
            "image_sizes": [],
            "tools": [],
            "tool_choice": None,
            "max_tokens": request.max_tokens,
            "stream": bool(request.stream),
        }
        text, finish = _cut(self._take(prompt, entry), request.max_tokens)
        echo = prompt if request.echo else ""
        used = _usage(_words(prompt), _words(text))
        if not request.stream:
            return Completion(
                model=request.model, choices=[CompletionChoice(text=echo + text, finish_reason=finish)], usage=used
            )
        cid = new_id("cmpl")
        pieces = [CompletionChoice(text=p, finish_reason=None) for p in ([echo] if echo else []) + _PIECE.findall(text)]
        out = [Completion(id=cid, model=request.model, choices=[c]) for c in pieces]
        out.append(Completion(id=cid, model=request.model, choices=[CompletionChoice(text="", finish_reason=finish)]))
        if request.include_usage_in_stream:
            out.append(Completion(id=cid, model=request.model, choices=[], usage=used))
        return _aiter(out)

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        raise BadRequestError(
            f"model '{request.model}' is served by inline::replay, which replays chat and completions outputs and "
            "does not compute embeddings; use an embedding model (e.g. inline::sentence-transformers).",
            param="model",
        )

    # ----- the script and the log ------------------------------------------------------------------------

    def _take(self, asking: str, entry: dict[str, Any]) -> str:
        """The next scripted text for a call whose last user/tool message is ``asking``; logs the call."""
        lines, digest = self._script()
        used = self._used.setdefault(digest, set())
        free = [(i, line) for i, line in enumerate(lines) if i not in used]
        pick = next(((i, ln) for i, ln in free if ln.get("match") and ln["match"] in asking), None)
        pick = pick or next(((i, ln) for i, ln in free if not ln.get("match")), None)
        if pick is not None and not pick[1].get("repeat"):
            used.add(pick[0])
        text = pick[1]["text"] if pick else self.config.default_text
        self._log({**entry, "script_line": pick[0] + 1 if pick else None, "output": text})
        return text

    def _script(self) -> tuple[list[dict[str, Any]], str]:
        path = self.config.script
        raw = path.read_text(encoding="utf-8") if path.exists() else ""
        lines = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ServiceUnavailableError(f"replay script {path} line {n}: not JSON ({e})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ServiceUnavailableError(
                    f'replay script {path} line {n}: expected {{"text": "..."}}, got {line!r}'
                )
            lines.append(obj)
        return lines, hashlib.sha256(raw.encode()).hexdigest()

    def _images(self, msgs: list[ChatMessage]) -> dict[str, Any]:
        sizes: list[str] = []
        try:
            for url in (u for m in msgs for u in m.images()):
                with decode_image_url(url, index=len(sizes) + 1) as img:
                    sizes.append(f"{img.width}x{img.height}")
        except VistackError as e:  # a real provider refuses the request too; log it first
            self._log({"endpoint": "chat.completions", "images": len(sizes) + 1, "error": e.message})
            raise
        return {"images": len(sizes), "image_sizes": sizes}

    def _log(self, entry: dict[str, Any]) -> None:
        if self.config.log is not None:
            self.config.log.parent.mkdir(parents=True, exist_ok=True)
            with self.config.log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _cut(text: str, max_tokens: int | None) -> tuple[str, FinishReason]:
    words = list(_WORD.finditer(text))
    if max_tokens is not None and len(words) > max_tokens:
        return text[: words[max_tokens - 1].end()], "length"
    return text, "stop"


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


async def _aiter(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
