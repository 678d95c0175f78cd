"""Generated choices → OpenAI-shaped responses: whole ones, and the chunk streams of chat and completions."""

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

from .decoding import Piece
from .generation import Outcome
from .logprobs import TokenLogprob, chat_logprobs, completion_logprobs

PieceStream = Callable[[Outcome], AsyncGenerator[Piece, None]]
"""Starts generating when iterated: every choice's text pieces, cut at stop strings; fills the Outcome when done."""

C = TypeVar("C", ChatCompletionChunk, Completion)


def usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


# ----- whole responses ---------------------------------------------------------------------------------


def chat_response(
    request: ChatCompletionRequest,
    outcome: Outcome,
    prompt_tokens: int,
    tools: list[dict[str, Any]] | None,
    logprobs: bool = False,
) -> ChatCompletion:
    """One assistant message per choice: tool calls when tools were offered and the text is one, else the text."""
    choices = []
    for c in outcome.choices:
        tool_calls = None
        if tools and c.finish_reason != "length":
            tool_calls = parse_tool_calls(c.text, tool_names(tools))
        message = AssistantMessage(content=None if tool_calls else c.text, tool_calls=tool_calls)
        choices.append(ChatChoice(
            index=c.index,
            message=message,
            finish_reason="tool_calls" if tool_calls else c.finish_reason,
            logprobs=chat_logprobs(c.logprobs) if logprobs else None,
        ))
    return ChatCompletion(model=request.model, choices=choices, usage=usage(prompt_tokens, outcome.completion_tokens))


def completion_response(
    request: CompletionRequest, outcome: Outcome, prompt_tokens: int, echoes: list[str], n: int = 1,
    logprobs: bool = False, scored: list[list[TokenLogprob]] | None = None,
) -> Completion:
    """Choices in prompt order, ``n`` per prompt (OpenAI's indexing: choice i answers prompt i // n);
    ``scored``: each prompt's token logprobs, leading an echoed choice's logprobs."""
    choices = []
    for i, c in enumerate(outcome.choices):
        echo = echoes[i // n]
        entries = (scored[i // n] if scored else []) + c.logprobs
        choices.append(CompletionChoice(
            index=i,
            text=echo + c.text,
            finish_reason=c.finish_reason,
            logprobs=completion_logprobs(entries, 0 if scored else len(echo)) if logprobs else None,
        ))
    return Completion(model=request.model, choices=choices, usage=usage(prompt_tokens, outcome.completion_tokens))


# ----- streams -----------------------------------------------------------------------------------------


def stream_chat(
    start: PieceStream,
    request: ChatCompletionRequest,
    prompt_tokens: int,
    tools: list[dict[str, Any]] | None,
    n: int = 1,
    logprobs: bool = False,
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """``chat.completion.chunk``s; nothing runs (not even generation) until the stream is iterated."""
    return _ChatStream(request.model, request.include_usage_in_stream, n, logprobs, tools).run(start, prompt_tokens)


def stream_completion(
    start: PieceStream, request: CompletionRequest, prompt_tokens: int, echoes: list[str], n: int = 1,
    logprobs: bool = False, scored: list[list[TokenLogprob]] | None = None,
) -> AsyncGenerator[Completion, None]:
    """``text_completion`` chunks; nothing runs (not even generation) until the stream is iterated."""
    per_choice = [echo for echo in echoes for _ in range(n)]  # choice i answers prompt i // n
    per_scored = [entries for entries in scored for _ in range(n)] if scored else None
    return _CompletionStream(request.model, request.include_usage_in_stream, logprobs, per_choice, per_scored).run(
        start, prompt_tokens
    )


class _ChunkStream(ABC, Generic[C]):
    """The loop both streams share: opening chunks, chunks for each piece of each choice, closing chunks, usage.

    Closing the stream (a client disconnect) closes the piece stream, which stops generation.
    """

    chunk_type: ClassVar[type]
    id_prefix: ClassVar[str]

    def __init__(self, model: str, include_usage: bool, n: int, logprobs: bool) -> None:
        self.model, self.include_usage, self.n, self.logprobs = model, include_usage, n, logprobs
        self.id, self.created = "", 0

    async def run(self, start: PieceStream, prompt_tokens: int) -> AsyncGenerator[C, None]:
        self.id, self.created = new_id(self.id_prefix), now()
        for index in range(self.n):
            for chunk in self.opening(index):
                yield chunk
        outcome = Outcome()
        pieces = start(outcome)
        try:
            async for piece in pieces:
                for chunk in self.piece(piece):
                    yield chunk
        finally:
            await pieces.aclose()
        for choice in outcome.choices:
            for chunk in self.closing(choice.index, choice.finish_reason):
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
    def opening(self, index: int) -> Iterator[C]: ...

    @abstractmethod
    def piece(self, piece: Piece) -> Iterator[C]: ...

    @abstractmethod
    def closing(self, index: int, finish: FinishReason) -> Iterator[C]: ...


class _ChatStream(_ChunkStream[ChatCompletionChunk]):
    chunk_type = ChatCompletionChunk
    id_prefix = "chatcmpl"

    def __init__(
        self, model: str, include_usage: bool, n: int, logprobs: bool, tools: list[dict[str, Any]] | None
    ) -> None:
        super().__init__(model, include_usage, n, logprobs)
        self.tools = tools
        # With tools, text that may still become a tool call (JSON, <|python_tag|>, pythonic) is held back.
        self.held = [Piece(i, "") for i in range(n)]
        self.holding = [bool(tools)] * n

    def delta(
        self, index: int, delta: ChoiceDelta, finish: FinishReason | None = None, entries: list | None = None
    ) -> ChatCompletionChunk:
        lp = chat_logprobs(entries or []) if self.logprobs and entries is not None else None
        return self.chunk(ChunkChoice(index=index, delta=delta, finish_reason=finish, logprobs=lp))

    def opening(self, index: int) -> Iterator[ChatCompletionChunk]:
        yield self.delta(index, ChoiceDelta(role="assistant", content=""))

    def piece(self, piece: Piece) -> Iterator[ChatCompletionChunk]:
        i = piece.index
        if self.holding[i]:
            held = self.held[i]
            held.text += piece.text
            held.logprobs.extend(piece.logprobs)
            if could_be_tool_call(held.text):
                return
            piece, self.held[i], self.holding[i] = held, Piece(i, ""), False
        yield self.delta(i, ChoiceDelta(content=piece.text), entries=piece.logprobs)

    def closing(self, index: int, finish: FinishReason) -> Iterator[ChatCompletionChunk]:
        held = self.held[index]
        if held.text or held.logprobs:
            calls = parse_tool_calls(held.text, tool_names(self.tools or [])) if finish != "length" else None
            if calls:
                finish = "tool_calls"
                yield self.delta(
                    index,
                    ChoiceDelta(
                        tool_calls=[{"index": i, **c.model_dump(exclude_none=True)} for i, c in enumerate(calls)]
                    ),
                    entries=held.logprobs,  # the tokens behind the call, as the whole response reports them
                )
            else:
                yield self.delta(index, ChoiceDelta(content=held.text), entries=held.logprobs)
        yield self.delta(index, ChoiceDelta(), finish)


class _CompletionStream(_ChunkStream[Completion]):
    chunk_type = Completion
    id_prefix = "cmpl"

    def __init__(self, model: str, include_usage: bool, logprobs: bool, echoes: list[str],
                 scored: list[list[TokenLogprob]] | None) -> None:
        super().__init__(model, include_usage, len(echoes), logprobs)
        self.echoes, self.scored = echoes, scored  # per choice
        # text_offset of the next token, per choice (the echoed prompt counts when its tokens are reported)
        self.offsets = [0 if scored else len(echo) for echo in echoes]

    def text(self, index: int, text: str, finish: FinishReason | None = None, entries: list | None = None) -> Completion:
        lp = None
        if self.logprobs and entries is not None:
            lp = completion_logprobs(entries, self.offsets[index])
            self.offsets[index] += sum(len(e.token) for e in entries)
        return self.chunk(CompletionChoice(index=index, text=text, finish_reason=finish, logprobs=lp))

    def opening(self, index: int) -> Iterator[Completion]:
        if self.echoes[index]:
            yield self.text(index, self.echoes[index], entries=self.scored[index] if self.scored else None)

    def piece(self, piece: Piece) -> Iterator[Completion]:
        yield self.text(piece.index, piece.text, entries=piece.logprobs)

    def closing(self, index: int, finish: FinishReason) -> Iterator[Completion]:
        yield self.text(index, "", finish)
