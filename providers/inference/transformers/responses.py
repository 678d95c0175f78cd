"""Generated text → OpenAI-shaped responses: whole ones, and the chunk streams of chat and completions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from vistack.api.inference import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceDelta,
    ChunkChoice,
    Completion,
    CompletionChoice,
    CompletionRequest,
    FinishReason,
    Usage,
    new_id,
    now,
)
from vistack.tool_calls import could_be_tool_call, parse_tool_calls, tool_names

from .generation import Outcome

TextStream = Callable[[Outcome], AsyncGenerator[str, None]]
"""Starts generating when iterated: text deltas cut at stop strings; fills the Outcome when done."""

C = TypeVar("C", ChatCompletionChunk, Completion)


def usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


# ----- whole responses ---------------------------------------------------------------------------------


def chat_response(
    request: ChatCompletionRequest, outcome: Outcome, prompt_tokens: int, tools: list[dict[str, Any]] | None
) -> ChatCompletion:
    """The assistant message: tool calls when tools were offered and the text is one, else the text."""
    tool_calls = None
    if tools and outcome.finish_reason != "length":
        tool_calls = parse_tool_calls(outcome.text, tool_names(tools))
    message = AssistantMessage(content=None if tool_calls else outcome.text, tool_calls=tool_calls)
    return ChatCompletion(
        model=request.model,
        choices=[ChatChoice(message=message, finish_reason="tool_calls" if tool_calls else outcome.finish_reason)],
        usage=usage(prompt_tokens, outcome.completion_tokens),
    )


def completion_response(request: CompletionRequest, outcome: Outcome, prompt_tokens: int, echo: str) -> Completion:
    return Completion(
        model=request.model,
        choices=[CompletionChoice(text=echo + outcome.text, finish_reason=outcome.finish_reason)],
        usage=usage(prompt_tokens, outcome.completion_tokens),
    )


# ----- streams -----------------------------------------------------------------------------------------


def stream_chat(
    start: TextStream, request: ChatCompletionRequest, prompt_tokens: int, tools: list[dict[str, Any]] | None
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """``chat.completion.chunk``s; nothing runs (not even generation) until the stream is iterated."""
    return _ChatStream(request.model, request.include_usage_in_stream, tools).run(start, prompt_tokens)


def stream_completion(
    start: TextStream, request: CompletionRequest, prompt_tokens: int, echo: str
) -> AsyncGenerator[Completion, None]:
    """``text_completion`` chunks; nothing runs (not even generation) until the stream is iterated."""
    return _CompletionStream(request.model, request.include_usage_in_stream, echo).run(start, prompt_tokens)


class _ChunkStream(ABC, Generic[C]):
    """The loop both streams share: opening chunks, chunks for each text delta, closing chunks, usage.

    Closing the stream (a client disconnect) closes the text stream, which stops generation.
    """

    chunk_type: ClassVar[type]
    id_prefix: ClassVar[str]

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model, self.include_usage = model, include_usage
        self.id, self.created = "", 0

    async def run(self, start: TextStream, prompt_tokens: int) -> AsyncGenerator[C, None]:
        self.id, self.created = new_id(self.id_prefix), now()
        for chunk in self.opening():
            yield chunk
        outcome = Outcome()
        texts = start(outcome)
        try:
            async for piece in texts:
                for chunk in self.text(piece):
                    yield chunk
        finally:
            await texts.aclose()
        for chunk in self.closing(outcome.finish_reason):
            yield chunk
        if self.include_usage:
            yield self.chunk_type(
                id=self.id,
                created=self.created,
                model=self.model,
                choices=[],
                usage=usage(prompt_tokens, outcome.completion_tokens),
            )

    def chunk(self, choice: ChunkChoice | CompletionChoice) -> C:
        return self.chunk_type(id=self.id, created=self.created, model=self.model, choices=[choice])

    @abstractmethod
    def opening(self) -> Iterator[C]: ...

    @abstractmethod
    def text(self, piece: str) -> Iterator[C]: ...

    @abstractmethod
    def closing(self, finish: FinishReason) -> Iterator[C]: ...


class _ChatStream(_ChunkStream[ChatCompletionChunk]):
    chunk_type = ChatCompletionChunk
    id_prefix = "chatcmpl"

    def __init__(self, model: str, include_usage: bool, tools: list[dict[str, Any]] | None) -> None:
        super().__init__(model, include_usage)
        self.tools = tools
        # With tools, text that may still become a tool call (JSON, <|python_tag|>, pythonic) is held back.
        self.held, self.holding = "", bool(tools)

    def delta(self, delta: ChoiceDelta, finish: FinishReason | None = None) -> ChatCompletionChunk:
        return self.chunk(ChunkChoice(delta=delta, finish_reason=finish))

    def opening(self) -> Iterator[ChatCompletionChunk]:
        yield self.delta(ChoiceDelta(role="assistant", content=""))

    def text(self, piece: str) -> Iterator[ChatCompletionChunk]:
        if self.holding:
            self.held += piece
            if could_be_tool_call(self.held):
                return
            piece, self.held, self.holding = self.held, "", False
        yield self.delta(ChoiceDelta(content=piece))

    def closing(self, finish: FinishReason) -> Iterator[ChatCompletionChunk]:
        if self.held:
            calls = parse_tool_calls(self.held, tool_names(self.tools or [])) if finish != "length" else None
            if calls:
                finish = "tool_calls"
                yield self.delta(
                    ChoiceDelta(
                        tool_calls=[{"index": i, **c.model_dump(exclude_none=True)} for i, c in enumerate(calls)]
                    )
                )
            else:
                yield self.delta(ChoiceDelta(content=self.held))
        yield self.delta(ChoiceDelta(), finish)


class _CompletionStream(_ChunkStream[Completion]):
    chunk_type = Completion
    id_prefix = "cmpl"

    def __init__(self, model: str, include_usage: bool, echo: str) -> None:
        super().__init__(model, include_usage)
        self.echo = echo

    def piece(self, text: str, finish: FinishReason | None = None) -> Completion:
        return self.chunk(CompletionChoice(text=text, finish_reason=finish))

    def opening(self) -> Iterator[Completion]:
        if self.echo:
            yield self.piece(self.echo)

    def text(self, piece: str) -> Iterator[Completion]:
        yield self.piece(piece)

    def closing(self, finish: FinishReason) -> Iterator[Completion]:
        yield self.piece("", finish)
