"""One response: model <-> tools until a final answer, a client-side call, or a limit.

The loop is an async generator of stream events; the response object it
builds lives in :class:`~vistack.agents.events.ResponseEvents`. Order of
work:

1. list the MCP servers' tools (``mcp_list_tools`` items) and run MCP calls
   the client approved (``mcp_approval_response`` in the input);
2. when the request names vector stores and the tool choice allows it,
   search *before* the first model call (Llama 3.2 Vision does not call
   tools reliably with an image in the prompt);
3. call the model with the tools; a tool call runs (file_search, MCP) or
   ends the response (function calls, MCP calls needing approval);
4. after a search, the answer call shows the retrieved pages' images per the
   vision strategy (:mod:`vistack.agents.visual`) and cites them.

Model output that looks like a tool call but does not parse stays text:
a malformed call never becomes a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from vistack.api import BadRequestError, VistackError
from vistack.api.inference import ChatCompletionRequest, ChatMessage, FunctionCall, ImageContentPart, ToolCall, Usage
from vistack.api.protocols import FilesProvider
from vistack.api.response_events import ResponseEvent
from vistack.api.responses import (
    CreateResponseRequest,
    FileSearchCallItem,
    FunctionCallItem,
    IncompleteDetails,
    McpApprovalRequestItem,
    McpApprovalResponseItem,
    McpCallItem,
    ResponseError,
    TokenLogprob,
    ToolChoiceFileSearch,
    ToolChoiceMode,
    WebSearchCallItem,
    new_item_id,
)
from vistack.inference import InferenceRouter
from vistack.safety.guardrails import Guardrails, ScreenItem, refusal_text
from vistack.tool_calls import StreamedToolCalls, could_be_tool_call, parse_tool_calls

from .citations import cite
from .config import ResponsesConfig
from .events import MessageWriter, ResponseEvents
from .items import keep_newest_images, last_user_text
from .tools.executor import ToolSet, arguments_of
from .tools.file_search import SearchOutcome, Source, file_search
from .visual import ModelCall, load_page_images, merge_call, plan_calls

log = logging.getLogger(__name__)

LOGPROBS_INCLUDE = "message.output_text.logprobs"

# OpenAI's ResponseError codes (what clients validate ``error.code`` against).
RESPONSE_ERROR_CODES = frozenset({
    "server_error", "rate_limit_exceeded", "invalid_prompt", "vector_store_timeout", "invalid_image",
    "invalid_image_format", "invalid_base64_image", "invalid_image_url", "image_too_large", "image_too_small",
    "image_parse_error", "image_content_policy_violation", "invalid_image_mode", "image_file_too_large",
    "unsupported_image_media_type", "empty_image_file", "failed_to_download_image", "image_file_not_found",
})
_CODE_ALIASES = {"unsupported_image_url": "invalid_image_url", "unsupported_image_type": "unsupported_image_media_type",
                 "too_many_images": "invalid_prompt"}


def error_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None) or ""
    code = _CODE_ALIASES.get(code, code)
    return code if code in RESPONSE_ERROR_CODES else "server_error"


@dataclass
class Turn:
    """What one response starts from (built by the service from the request and its history)."""

    request: CreateResponseRequest
    model: str
    history: list[Any]  # items before this response's input (approval requests are looked up here)
    input: list[Any]  # this response's input items
    messages: list[ChatMessage]  # instructions + history + input, as chat messages
    strategy: str
    pages: int
    accepts_images: bool
    guardrails: Guardrails | None = None


@dataclass
class _CallResult:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None


class AgentLoop:
    def __init__(
        self,
        *,
        turn: Turn,
        events: ResponseEvents,
        inference: InferenceRouter,
        tools: ToolSet,
        vector_stores: Any,
        files: FilesProvider | None,
        config: ResponsesConfig,
    ) -> None:
        self.turn, self.events, self.inference, self.tools = turn, events, inference, tools
        self.vector_stores, self.files, self.config = vector_stores, files, config
        self.req = turn.request
        self.messages = list(turn.messages)
        self.usage = Usage()
        self.builtin_calls = 0
        self.sources: list[Source] | None = None  # set by a search, consumed by the answer call
        self.searched = False
        self.incomplete: str | None = None
        self.error: BaseException | None = None
        self.guard = turn.guardrails if turn.guardrails is not None and turn.guardrails.active else None
        self.refused: str | None = None  # set when an output window failed its check mid-stream

    # ----- the whole response ----------------------------------------------------------------------

    async def run(self) -> AsyncIterator[ResponseEvent]:
        """created, in_progress, ..., then exactly one of completed / incomplete / failed."""
        response = self.events.response
        response.status = "in_progress"
        yield self.events.lifecycle("created")
        yield self.events.lifecycle("in_progress")
        try:
            async for event in self._run():
                yield event
        except Exception as e:  # every failure ends the stream with response.failed, never a broken stream
            self.error = e
            if not isinstance(e, VistackError):
                log.exception("response %s failed", response.id)
            message = e.message if isinstance(e, VistackError) else f"{type(e).__name__}: {e}"
            response.status = "failed"
            response.error = ResponseError(code=error_code(e), message=message)
        else:
            if self.incomplete:
                response.status = "incomplete"
                response.incomplete_details = IncompleteDetails(reason=self.incomplete)
            else:
                response.status = "completed"
        response.usage = _response_usage(self.usage)
        if self.guard is not None:
            response.moderation = self.guard.response_moderation()
            response.guardrail_results = list(self.guard.results) or None
        yield self.events.lifecycle(response.status)

    async def _run(self) -> AsyncIterator[ResponseEvent]:
        if self.req.truncation == "auto":
            raise BadRequestError(
                "truncation='auto' is not supported: send truncation='disabled' (the default) and keep the "
                "conversation within the model's context", param="truncation")
        if self.guard is not None and self.guard.input:
            flagged = await self.guard.check_input(self.messages)
            if flagged is not None:  # refused before any model or tool runs
                for e in self.events.message().refuse(refusal_text(flagged)):
                    yield e
                return
        async for e in self.tools.list_mcp(self.events):
            yield e
        async for e in self._approved_calls():
            yield e
        if self._search_first():
            async for e in self._search(self.question):
                yield e
        for _ in range(self.req.max_infer_iters or 10):
            if self.sources is not None:
                async for e in self._answer_from_sources():
                    yield e
                return
            tools, choice = self.tools.chat_tools(self._choice(), include_file_search=self._model_may_search())
            writer = self._writer()
            result = _CallResult()
            async for e in self._call(self.messages, result, writer, tools, choice):
                yield e
            if not result.tool_calls or self.refused is not None:
                async for e in self._finish_text(writer, result):
                    yield e
                return
            if writer.text:  # text before the calls: keep it as its own message (checked like any answer)
                async for e in self._close(writer):
                    yield e
                if self.refused is not None:
                    return
            ends_response = False
            calls = result.tool_calls if self.req.parallel_tool_calls is not False else result.tool_calls[:1]
            self.messages.append(ChatMessage(role="assistant", content=None, tool_calls=calls))
            for call in calls:
                async for e in self._run_call(call):
                    yield e
                ends_response = ends_response or self._ends_response(call)
            if ends_response:
                # The client answers function calls / approvals; the calls stay in the response, not in the chat.
                return
        self.incomplete = "max_iterations_exceeded"

    # ----- decisions -----------------------------------------------------------------------------

    @property
    def question(self) -> str:
        return last_user_text(self.turn.messages)

    def _choice(self) -> Any:
        return self.req.tool_choice

    def _search_first(self) -> bool:
        if self.tools.file_search is None or self._choice() == ToolChoiceMode.none:
            return False
        if isinstance(self._choice(), ToolChoiceFileSearch):
            return True
        if self._choice() == ToolChoiceMode.required and not (self.tools.functions or self.tools.mcp_servers):
            return True
        return self.config.retrieve_first and self._choice() in (None, ToolChoiceMode.auto)

    def _model_may_search(self) -> bool:
        return self.tools.file_search is not None and self.sources is None and not self.searched

    def _ends_response(self, call: ToolCall) -> bool:
        name = call.function.name or ""
        kind = self.tools.kind(name)
        return kind == "function" or (kind == "mcp" and self.tools.needs_approval(name))

    def _wants_logprobs(self) -> bool:
        return bool(self.req.top_logprobs) or LOGPROBS_INCLUDE in (self.req.include or [])

    def _budget(self) -> int | None:
        if self.req.max_output_tokens is None:
            return None
        return self.req.max_output_tokens - self.usage.completion_tokens

    # ----- one model call ----------------------------------------------------------------------------

    async def _call(self, messages: list[ChatMessage], result: _CallResult, writer: MessageWriter | None,
                    tools: list[dict] | None = None, choice: Any = None,
                    cap: int | None = None) -> AsyncIterator[ResponseEvent]:
        """One chat completion into ``writer`` (text deltas), collecting tool calls and usage.

        The model streams only when the client does: a non-streaming response needs no
        token-level events, and a whole completion costs less. ``cap`` bounds this call below
        what is left of ``max_output_tokens`` (per-page answers must leave room for the merge).
        """
        budget = self._budget()
        if cap is not None:
            budget = cap if budget is None else min(budget, cap)
        if budget is not None and budget < 1:
            result.finish_reason = "length"
            return
        streaming = bool(self.req.stream)
        request = ChatCompletionRequest(
            model=self.turn.model,
            messages=keep_newest_images(messages, self.config.max_images_per_call),
            tools=tools,
            tool_choice=choice if tools else None,
            parallel_tool_calls=self.req.parallel_tool_calls if tools else None,
            temperature=self.req.temperature,
            top_p=self.req.top_p,
            frequency_penalty=self.req.frequency_penalty,
            presence_penalty=self.req.presence_penalty,
            max_completion_tokens=budget,
            response_format=_response_format(self.req),
            logprobs=True if self._wants_logprobs() else None,
            top_logprobs=self.req.top_logprobs or None,
            user=self.req.safety_identifier or self.req.user,
            stream=streaming,
            stream_options={"include_usage": True} if streaming else None,
        )
        names = {t["function"]["name"] for t in tools or []}
        if streaming:
            async for e in self._streamed(request, result, writer, names):
                yield e
        else:
            for e in await self._whole(request, result, writer, names):
                yield e

    async def _whole(self, request: ChatCompletionRequest, result: _CallResult, writer: MessageWriter | None,
                     names: set[str]) -> list[ResponseEvent]:
        completion = await self.inference.chat_completion(request, purpose="the Responses API")
        if completion.usage is not None:  # type: ignore[union-attr]
            self._add_usage(completion.usage)  # type: ignore[union-attr]
        choice_ = completion.choices[0]  # type: ignore[union-attr]
        result.finish_reason = choice_.finish_reason
        text = choice_.message.content or ""
        calls = list(choice_.message.tool_calls or [])
        if not calls and names and could_be_tool_call(text):  # an engine that left the call in the text
            calls = parse_tool_calls(text, names) or []
        result.tool_calls = calls
        if calls:
            return []
        result.text = text
        return writer.delta(text, token_logprobs(choice_.logprobs)) if writer is not None else []

    async def _streamed(self, request: ChatCompletionRequest, result: _CallResult, writer: MessageWriter | None,
                        names: set[str]) -> AsyncIterator[ResponseEvent]:
        """Text deltas as they come; text that may still become a tool call is held back."""
        stream = await self.inference.chat_completion(request, purpose="the Responses API")
        held = ""
        held_logprobs: list[TokenLogprob] = []
        holding = bool(names)
        partial_calls = StreamedToolCalls()
        try:
            async for chunk in stream:  # type: ignore[union-attr]
                if chunk.usage is not None:
                    self._add_usage(chunk.usage)
                for choice_ in chunk.choices:
                    if choice_.finish_reason:
                        result.finish_reason = choice_.finish_reason
                    partial_calls.add(choice_.delta.tool_calls)
                    text = choice_.delta.content or ""
                    if not text:
                        continue
                    logprobs = token_logprobs(choice_.logprobs)
                    result.text += text
                    if holding:
                        held += text
                        held_logprobs += logprobs
                        if could_be_tool_call(held):
                            continue
                        holding, text, held, logprobs, held_logprobs = False, held, "", held_logprobs, []
                    if writer is not None:
                        for e in writer.delta(text, logprobs):
                            yield e
                        for e in await self._window(writer):
                            yield e
                        if self.refused is not None:
                            break
                if self.refused is not None:
                    break
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        result.tool_calls = partial_calls.calls(named_only=True, new_id=lambda: f"call_{new_item_id('c')[2:26]}")
        if not result.tool_calls and held:
            parsed = parse_tool_calls(held, names) if names else None
            if parsed:
                result.tool_calls = parsed
                result.text = result.text[: len(result.text) - len(held)]
            elif writer is not None:
                for e in writer.delta(held, held_logprobs):
                    yield e

    def _add_usage(self, usage: Usage) -> None:
        self.usage.prompt_tokens += usage.prompt_tokens
        self.usage.completion_tokens += usage.completion_tokens
        self.usage.total_tokens += usage.total_tokens

    async def _finish_text(self, writer: MessageWriter, result: _CallResult,
                           annotations: list | None = None) -> AsyncIterator[ResponseEvent]:
        status = "completed"
        if result.finish_reason == "length":
            self.incomplete, status = "length", "incomplete"
        async for e in self._close(writer, annotations, status):
            yield e
        if self.refused is not None:
            self.incomplete = None  # the refusal is the complete answer
        self.messages.append(ChatMessage(role="assistant", content=writer.text))

    # ----- output guardrails -------------------------------------------------------------------------

    def _writer(self) -> MessageWriter:
        return self.events.message(hold=self.guard is not None and bool(self.guard.output))

    async def _close(self, writer: MessageWriter, annotations: list | None = None,
                     status: str = "completed") -> AsyncIterator[ResponseEvent]:
        """Finish ``writer`` once its text passed the output shields, or end it with their refusal."""
        if self.refused is None and writer.hold and writer.pending_chars:
            await self._check_output(writer)
        if self.refused is not None:
            for e in writer.refuse(self.refused):
                yield e
            return
        for e in writer.finish(annotations, status=status):
            yield e

    async def _check_output(self, writer: MessageWriter) -> None:
        """Judge everything written so far; on a violation remember the refusal (nothing held is released)."""
        assert self.guard is not None
        flagged = await self.guard.check_output(self.turn.messages, writer.text)
        if flagged is not None:
            self.refused = refusal_text(flagged)

    async def _window(self, writer: MessageWriter | None) -> list[ResponseEvent]:
        """Streaming with a check window: release held text each time a full window passed."""
        if writer is None or not writer.hold or self.guard is None or self.refused is not None:
            return []
        window = self.guard.stream_window_chars
        if window <= 0 or writer.pending_chars < window:
            return []
        await self._check_output(writer)
        return [] if self.refused is not None else writer.release()

    # ----- tools -----------------------------------------------------------------------------------

    async def _run_call(self, call: ToolCall) -> AsyncIterator[ResponseEvent]:
        name = call.function.name or ""
        kind = self.tools.kind(name)
        if kind == "function":
            item = FunctionCallItem(id=new_item_id("fc"), call_id=call.id or new_item_id("call"), name=name,
                                    arguments=call.function.arguments or "{}", status="completed")
            index, added = self.events.item_added(item.model_copy(update={"status": "in_progress", "arguments": ""}))
            yield added
            for e in self.events.arguments("function", index, item.id or "", item.arguments, name):
                yield e
            yield self.events.item_done(index, item)
            return
        if kind is None:
            self._tool_result(call, f"error: there is no tool named '{name}'; use one of the tools offered")
            return
        if self._over_tool_limit():
            self._tool_result(call, "error: the limit on tool calls for this response (max_tool_calls) is reached")
            return
        self.builtin_calls += 1
        if kind == "file_search":
            try:
                query = str(arguments_of(call.function.arguments).get("query") or self.question)
            except (ValueError, TypeError):
                query = self.question
            async for e in self._search(query):
                yield e
            self._tool_result(call, f"found {len(self.sources or [])} matching pages")
        elif kind == "web_search":
            item = WebSearchCallItem(id=new_item_id("ws"), status="failed")
            index, added = self.events.item_added(item)
            yield added
            yield self.events.item_done(index, item)
            self._tool_result(call, "error: web search is not available: this server has no internet access")
        elif kind == "mcp":
            if self.tools.needs_approval(name):
                binding = self.tools.mcp[name]
                item = McpApprovalRequestItem(id=new_item_id("mcpr"), name=name, server_label=binding.server.server_label,
                                              arguments=call.function.arguments or "{}")
                index, added = self.events.item_added(item)
                yield added
                yield self.events.item_done(index, item)
                return
            async for e in self._mcp_call(name, call.function.arguments or "{}", call=call):
                yield e

    def _over_tool_limit(self) -> bool:
        return self.req.max_tool_calls is not None and self.builtin_calls >= self.req.max_tool_calls

    def _tool_result(self, call: ToolCall, text: str) -> None:
        limit = self.config.max_tool_output_chars
        self.messages.append(ChatMessage(role="tool", tool_call_id=call.id, content=text[:limit]))

    async def _mcp_call(self, name: str, arguments: str, *, call: ToolCall | None = None,
                        approval_request_id: str | None = None) -> AsyncIterator[ResponseEvent]:
        binding = self.tools.mcp[name]
        item = McpCallItem(id=new_item_id("mcp"), name=name, arguments=arguments,
                           server_label=binding.server.server_label, approval_request_id=approval_request_id)
        index, added = self.events.item_added(item.model_copy(update={"arguments": ""}))
        yield added
        for e in self.events.arguments("mcp", index, item.id, arguments, name):
            yield e
        yield self.events.progress("mcp_call.in_progress", index, item.id)
        try:
            result = await self.tools.sessions.call_tool(binding.ref, name, arguments_of(arguments))
            output, error = (None, result.output) if result.is_error else (result.output, None)
        except (ValueError, TypeError) as e:  # the model's arguments were not a JSON object
            output, error = None, str(e)
        except Exception as e:  # noqa: BLE001 - an MCP failure is reported to the model and the client, not raised
            output, error = None, str(e)
        item = item.model_copy(update={"output": output, "error": error})
        yield self.events.progress("mcp_call.failed" if error else "mcp_call.completed", index, item.id)
        yield self.events.item_done(index, item)
        call = call or ToolCall(id=item.id, function=FunctionCall(name=name, arguments=arguments))
        if approval_request_id is not None:
            self.messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
        self._tool_result(call, output if error is None else f"error: {error}")

    async def _approved_calls(self) -> AsyncIterator[ResponseEvent]:
        """Run (or record the refusal of) MCP calls answered by ``mcp_approval_response`` input items."""
        requests = {i.id: i for i in self.turn.history if isinstance(i, McpApprovalRequestItem)}
        for answer in (i for i in self.turn.input if isinstance(i, McpApprovalResponseItem)):
            pending = requests.get(answer.approval_request_id)
            if pending is None:
                raise BadRequestError(
                    f"mcp_approval_response names approval request '{answer.approval_request_id}', which is not in "
                    "this conversation (continue with previous_response_id or the conversation)", param="input")
            if pending.name not in self.tools.mcp:
                raise BadRequestError(
                    f"to run the approved call to '{pending.name}', include the MCP server "
                    f"'{pending.server_label}' in tools", param="tools")
            if answer.approve:
                self.builtin_calls += 1
                async for e in self._mcp_call(pending.name, pending.arguments, approval_request_id=pending.id):
                    yield e
            else:
                reason = f": {answer.reason}" if answer.reason else ""
                self.messages.append(ChatMessage(role="user", content=(
                    f"(The call to {pending.name} with {pending.arguments} was not approved by the user{reason}.)")))

    # ----- retrieval and the visual answer -----------------------------------------------------------

    async def _search(self, query: str) -> AsyncIterator[ResponseEvent]:
        assert self.tools.file_search is not None
        self.searched = True
        item = FileSearchCallItem(id=new_item_id("fs"), queries=[query], status="in_progress")
        index, added = self.events.item_added(item)
        yield added
        yield self.events.progress("file_search_call.in_progress", index, item.id)
        yield self.events.progress("file_search_call.searching", index, item.id)
        outcome = await file_search(self.vector_stores, self.tools.file_search, query, self.config.file_search_mode)
        if self.guard is not None and self.guard.retrieved:
            outcome = await self._screened(outcome)
        self.sources = outcome.sources
        include = "file_search_call.results" in (self.req.include or [])
        done = item.model_copy(update={"status": "completed", "results": outcome.results if include else None})
        yield self.events.progress("file_search_call.completed", index, item.id)
        yield self.events.item_done(index, done)

    async def _screened(self, outcome: SearchOutcome) -> SearchOutcome:
        """The search without the pages a ``retrieved`` shield flagged (a poisoned page never reaches the model)."""
        assert self.guard is not None
        images = await load_page_images(self.files, outcome.sources) if self.guard.screen_page_images else {}
        items = [ScreenItem(key=s.number, text="\n\n".join(s.texts), file_id=s.file_id, filename=s.filename,
                            page=s.page, image_url=images[s.number].data_url() if s.number in images else None)
                 for s in outcome.sources]
        flagged = await self.guard.screen(items)
        if not flagged:
            return outcome
        dropped = {(s.file_id, s.page) for s in outcome.sources if s.number in flagged}
        kept = [s for s in outcome.sources if s.number not in flagged]
        for number, source in enumerate(kept, start=1):
            source.number = number
        results = [r for r in outcome.results
                   if (r.file_id, _page_of(r.attributes.get("page"))) not in dropped]
        log.info("response %s: retrieved-content guardrails dropped %d of %d pages", self.events.response.id,
                 len(flagged), len(outcome.sources))
        return SearchOutcome(results=results, sources=kept)

    def _strategy(self) -> str:
        if not self.turn.accepts_images:
            return "text"
        question_message = self._question_message()
        if question_message is not None and isinstance(question_message.content, list) and any(
            isinstance(p, ImageContentPart) for p in question_message.content
        ) and self.config.max_images_per_call <= 1:
            return "text"  # the user's own image stays the one image the model sees
        return self.turn.strategy

    def _question_message(self) -> ChatMessage | None:
        return next((m for m in reversed(self.turn.messages) if m.role == "user"), None)

    async def _answer_from_sources(self) -> AsyncIterator[ResponseEvent]:
        sources = self.sources or []
        strategy = self._strategy()
        wanted = sources if strategy in ("text",) else sources[: max(self.turn.pages, 1)]
        images = await load_page_images(self.files, wanted if strategy != "text" else [])
        question_message = self._question_message()
        history = list(self.turn.messages)
        if question_message is not None:
            history.remove(question_message)
        calls = await asyncio.to_thread(
            plan_calls, strategy, self.question, history, sources, images, pages=self.turn.pages,
            chars_per_source=self.config.context_chars_per_source, max_side=self.config.stitch_max_side)
        if question_message is not None and strategy == "text" and isinstance(question_message.content, list):
            extra = [p for p in question_message.content if isinstance(p, ImageContentPart)]
            last = calls[-1].messages[-1]
            last.content = extra + list(last.content)  # type: ignore[operator]
        final: ModelCall = calls[-1]
        if strategy == "per_page":
            partials: list[tuple[Source, str]] = []
            left = self._budget()
            cap = self.config.per_page_answer_tokens
            if left is not None:  # an equal share for each page and for the merge
                cap = max(1, min(cap, left // (len(calls) + 1)))
            for call in calls:
                result = _CallResult()
                async for _ in self._call(call.messages, result, None, cap=cap):
                    pass
                partials.append((call.partial_for, result.text))  # type: ignore[arg-type]
            final = merge_call(self.question, history, partials)
        writer = self._writer()
        result = _CallResult()
        async for e in self._call(final.messages, result, writer):
            yield e
        annotations = cite(writer.text, final.sources, fallback=final.image_sources or final.sources)
        async for e in self._finish_text(writer, result, annotations):
            yield e
        self.sources = None


def _page_of(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def token_logprobs(logprobs: dict[str, Any] | None) -> list[TokenLogprob]:
    """A chat chunk's ``logprobs.content`` as Responses token logprobs (empty when the engine sent none)."""
    content = (logprobs or {}).get("content") or []
    out = []
    for entry in content:
        try:
            out.append(TokenLogprob.model_validate({**entry, "top_logprobs": entry.get("top_logprobs") or []}))
        except (ValueError, TypeError, AttributeError):  # an engine's odd entry costs its logprob, not the response
            continue
    return out


def _response_format(req: CreateResponseRequest) -> dict[str, Any] | None:
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    schema = {"name": fmt.name or "response", "schema": fmt.schema_ or {}, "strict": fmt.strict}
    if fmt.description:
        schema["description"] = fmt.description
    return {"type": "json_schema", "json_schema": schema}


def _response_usage(usage: Usage) -> Any:
    from vistack.api.responses import ResponseUsage

    return ResponseUsage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                         total_tokens=usage.prompt_tokens + usage.completion_tokens)

