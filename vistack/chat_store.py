"""Stored chat completions (Llama Stack's inference store): ``GET /v1/chat/completions`` and ``/{id}``.

Every chat completion a caller makes is kept with its input messages and
owner (on by default; ``inference_store.enabled: false`` in the distribution,
or ``store: false`` in a request, turns it off). A streamed completion is
assembled from its chunks and stored when the stream ends, so a list shows
what the client actually received. Lookups go through the one access check:
another tenant's completion is a 404.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from vistack.access import Action, Principal, require
from vistack.api import NotFoundError
from vistack.api.inference import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
)
from vistack.pagination import Order, paginate
from vistack.storage import MetadataStore
from vistack.tool_calls import StreamedToolCalls

log = logging.getLogger(__name__)

KIND = "chat_completion"


def completion_not_found(completion_id: str) -> NotFoundError:
    return NotFoundError(f"Chat completion '{completion_id}' not found. Use 'client.chat.completions.list()' to list "
                         "available chat completions.", code="chat_completion_not_found")


class ChatCompletionStore:
    def __init__(self, db: MetadataStore, enabled: bool = True) -> None:
        self.db = db
        self.enabled = enabled

    def wanted(self, request_store: bool | None) -> bool:
        return self.enabled and request_store is not False

    async def record(self, completion: ChatCompletion, messages: list[ChatMessage], owner: Principal) -> None:
        data = completion.model_dump(mode="json", exclude_none=True)
        data["input_messages"] = [m.model_dump(mode="json", exclude_none=True) for m in messages]
        await self.db.put(KIND, completion.id, owner, data)

    def recording(self, stream: AsyncIterator[ChatCompletionChunk], messages: list[ChatMessage],
                  owner: Principal) -> AsyncIterator[ChatCompletionChunk]:
        """``stream`` unchanged, and the assembled completion stored once it ended (a stream the client dropped
        part way is not stored: it never became a completion)."""
        return _Recording(self, stream, messages, owner)

    async def get(self, completion_id: str, principal: Principal) -> dict[str, Any]:
        found = await self.db.get(KIND, completion_id)
        if found is None:
            raise completion_not_found(completion_id)
        require(principal, Action.read, found.resource(KIND), completion_not_found(completion_id))
        return found.data

    async def list(self, principal: Principal, *, after: str | None, limit: int, model: str | None,
                   order: Order) -> tuple[list[dict[str, Any]], bool]:
        rows = await self.db.list(KIND, principal)
        if model:
            rows = [r for r in rows if r.data.get("model") == model]
        if after is not None and all(r.id != after for r in rows):
            raise completion_not_found(after)
        page, has_more = paginate(rows, ident=lambda r: r.id, limit=limit, order=order, after=after)
        return [r.data for r in page], has_more


class _Recording:
    def __init__(self, store: ChatCompletionStore, inner: AsyncIterator[ChatCompletionChunk],
                 messages: list[ChatMessage], owner: Principal) -> None:
        self._store, self._inner, self._messages, self._owner = store, inner, messages, owner
        self._chunks: list[ChatCompletionChunk] = []

    def __aiter__(self) -> _Recording:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        try:
            chunk = await anext(self._inner)
        except StopAsyncIteration:
            await self._save()
            raise
        self._chunks.append(chunk)
        return chunk

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()

    async def _save(self) -> None:
        try:
            completion = assemble(self._chunks)
            if completion is not None:
                await self._store.record(completion, self._messages, self._owner)
        except Exception:  # noqa: BLE001 - the client got its stream; a failed record is logged, not raised
            log.exception("could not store a streamed chat completion")


def assemble(chunks: list[ChatCompletionChunk]) -> ChatCompletion | None:
    """The completion a stream of chunks amounts to: text and tool calls joined per choice, the last finish
    reason, the usage chunk's usage."""
    if not chunks:
        return None
    texts: dict[int, str] = {}
    finish: dict[int, Any] = {}
    calls: dict[int, StreamedToolCalls] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
            if choice.delta.tool_calls:
                calls.setdefault(choice.index, StreamedToolCalls()).add(choice.delta.tool_calls)
    choices = []
    for index in sorted(set(texts) | set(calls)):
        tool_calls = calls[index].calls() if index in calls else None
        message = AssistantMessage(content=texts.get(index) or (None if tool_calls else ""), tool_calls=tool_calls or None)
        choices.append(ChatChoice(index=index, message=message, finish_reason=finish.get(index, "stop")))
    first = chunks[0]
    return ChatCompletion(id=first.id, created=first.created, model=first.model, choices=choices, usage=usage)
