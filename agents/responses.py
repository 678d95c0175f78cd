"""``inline::builtin`` responses provider: the Responses API service.

It validates a request up front (so bad input is an HTTP error, not a
failed stream), assembles the turn (history from ``previous_response_id``
or the conversation, the new input as chat messages), runs the agent loop
and persists: at ``response.created`` and at the terminal event when
``store`` is on, and always into the conversation when one is named.
Background responses go through a bounded job queue and survive a
restart: unfinished ones are queued again, and a stream that a crash cut
off is marked failed rather than left ``in_progress`` forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from vistack.access import Action, Principal
from vistack.api import (
    Api,
    BadRequestError,
    ConflictError,
    InvalidParameterError,
    ModelType,
    Provider,
    ServiceNotEnabledError,
    VistackError,
)
from vistack.api.inference import ChatMessage
from vistack.api.protocols import FilesProvider
from vistack.api.response_events import ResponseEvent
from vistack.api.responses import (
    CreateResponseRequest,
    InputItemList,
    InputText,
    MessageItem,
    ResponseDeleted,
    ResponseError,
    ResponseList,
    ResponseObject,
    ResponseWithInput,
    TextConfig,
    TextFormat,
    new_response_id,
)
from vistack.context import current_principal
from vistack.inference import InferenceRouter
from vistack.pagination import Order, paginate
from vistack.safety.guardrails import Guardrails

from .background import BackgroundJobs, Job
from .config import ResponsesConfig
from .conversations import ConversationsService, check_conversation_id, with_id
from .events import ResponseEvents
from .items import items_to_messages
from .loop import AgentLoop, Turn
from .store import ResponseStore, StoredResponse
from .tools.executor import ToolSet
from .tools.mcp import McpSessions

log = logging.getLogger(__name__)

TERMINAL = ("completed", "failed", "incomplete", "cancelled")


class ResponsesProvider(Provider):
    api = Api.responses

    def __init__(self, config: ResponsesConfig, deps: dict[Api, Any] | None = None) -> None:
        super().__init__(config, deps)
        self.config: ResponsesConfig = config
        self.inference: InferenceRouter = self.deps[Api.inference]
        self.conversations: ConversationsService = self.deps[Api.conversations]
        self.vector_stores = self.deps.get(Api.vector_io)
        self.files: FilesProvider | None = self.deps.get(Api.files)
        self.safety = self.deps.get(Api.safety)
        self.jobs = BackgroundJobs(config.background_workers, config.background_queue_size,
                                   config.background_timeout_s)
        self.store: ResponseStore | None = None

    # ----- lifecycle -------------------------------------------------------------------------------

    async def initialize(self) -> None:
        assert self.context is not None
        self.store = ResponseStore(self.context.store)
        self.jobs.start()
        for record in await self.store.list(owner=None):
            if record.response.status not in ("queued", "in_progress"):
                continue
            if record.response.background and record.request is not None:
                log.info("resuming background response %s", record.response.id)
                record.response.status = "queued"
                record.response.output = []
                await self.store.put(record.response, record.input, record.owner, record.request)
                self._submit(record.request, record.response, record.input, record.owner)
            else:
                record.response.status = "failed"
                record.response.error = ResponseError(
                    code="server_error", message="the server stopped while this response was being generated")
                await self.store.put(record.response, record.input, record.owner)

    async def shutdown(self) -> None:
        await self.jobs.stop()

    @property
    def _store(self) -> ResponseStore:
        assert self.store is not None, "provider not initialized"
        return self.store

    # ----- create ----------------------------------------------------------------------------------

    async def create(self, req: CreateResponseRequest) -> ResponseObject | AsyncIterator[ResponseEvent]:
        self._validate(req)
        turn_input = _input_items(req)
        response = _new_response(req)
        if req.background:
            await self._context(req)  # an unknown model or history is the caller's error now, not a failed job
            await self._store.put(response, turn_input, current_principal(), req)
            self._submit(req, response, turn_input, current_principal())
            return response
        turn = await self._turn(req, turn_input)
        outcome = _Outcome()
        events = self._events(req, turn, response, outcome)
        if req.stream:
            return events
        async for _ in events:
            pass
        if response.status == "failed":
            raise _http_error(response, outcome.error)
        return response

    def _validate(self, req: CreateResponseRequest) -> None:
        if req.stream and req.background:
            raise BadRequestError("'stream' and 'background' cannot be used together: poll a background response "
                                  "with GET /v1/responses/{id}", param="background")
        if req.background and req.store is False:
            raise BadRequestError("Cannot use 'background' with 'store=False'. Background responses must be stored.",
                                  param="store")
        if req.conversation is not None:
            if req.previous_response_id is not None:
                raise InvalidParameterError("previous_response_id, conversation",
                                            "previous_response_id and conversation are both provided",
                                            "Provide only one of these parameters.")
            check_conversation_id(req.conversation, param="conversation")
        if req.guardrails and self.safety is None:
            raise ServiceNotEnabledError(
                "Safety API",
                "Ensure the Safety API is enabled in your stack, otherwise remove the 'guardrails' parameter from "
                "your request.")
        self._guardrails(req)  # unknown shields are the caller's error now, not a failed stream
        if req.input == [] and req.previous_response_id is None and req.conversation is None:
            raise BadRequestError("input is empty: send at least one message", param="input")
        if req.prompt is not None:
            raise BadRequestError(f"Prompt '{req.prompt.id}' not found: stored prompt templates ('prompt') are not "
                                  "available on this server (it has no Prompts API); send the text as 'instructions' "
                                  "or input", param="prompt")
        if any(str(i) == "reasoning.encrypted_content" for i in req.include or []):
            raise BadRequestError("reasoning.encrypted_content is not supported", param="include")

    async def _context(self, req: CreateResponseRequest) -> tuple[str, list[Any]]:
        """The model's identifier and the history the response continues (404/400 when either is wrong)."""
        entry = self.inference.resolve(req.model, ModelType.llm, purpose="the Responses API")
        return entry.model.identifier, await self._history(req)

    async def _history(self, req: CreateResponseRequest) -> list[Any]:
        if req.previous_response_id:
            previous, items = await self._store.history(req.previous_response_id)
            if previous.response.status in ("queued", "in_progress"):
                raise BadRequestError(
                    f"Response {req.previous_response_id} is still {previous.response.status}. Cannot use an "
                    "incomplete background response as previous_response_id.", param="previous_response_id")
            return items
        if req.conversation:
            return await self.conversations.all_items(req.conversation)
        return []

    async def _turn(self, req: CreateResponseRequest, turn_input: list[Any]) -> Turn:
        model, history = await self._context(req)
        messages = await items_to_messages([*history, *turn_input], self.files)
        if not messages:
            raise BadRequestError("input is empty: send at least one message (or continue a conversation or a "
                                  "previous response)", param="input")
        if req.instructions:
            messages.insert(0, ChatMessage(role="system", content=req.instructions))
        vision = req.vision
        return Turn(
            request=req, model=model, history=history, input=turn_input, messages=messages,
            strategy=(vision.strategy if vision and vision.strategy else self.config.vision_strategy),
            pages=(vision.pages if vision and vision.pages else self.config.vision_pages),
            accepts_images=self.inference.accepts_images(model),
            guardrails=self._guardrails(req),
        )

    def _guardrails(self, req: CreateResponseRequest) -> Guardrails | None:
        """The distribution's guardrails plus the request's (None without a safety API)."""
        if self.safety is None:
            return None
        return Guardrails.plan(self.safety, self.safety.guardrails, req.guardrails)

    async def _events(self, req: CreateResponseRequest, turn: Turn, response: ResponseObject,
                      outcome: _Outcome | None = None) -> AsyncIterator[ResponseEvent]:
        """The loop's events, persisted as they pass: created and terminal (store), conversation (always)."""
        owner = current_principal()
        async with McpSessions() as sessions:
            tools = ToolSet(req.tools, sessions, self.config.mcp_timeout_s)
            loop = AgentLoop(turn=turn, events=ResponseEvents(response), inference=self.inference, tools=tools,
                             vector_stores=self.vector_stores, files=self.files, config=self.config)
            async for event in loop.run():
                if event.type in ("response.completed", "response.incomplete", "response.failed"):
                    response.completed_at = int(time.time()) if response.status == "completed" else None
                    event.response.completed_at = response.completed_at  # type: ignore[attr-defined]
                    if outcome is not None:
                        outcome.error = loop.error
                    await self._persist_final(req, response, turn.input, owner)
                elif event.type == "response.created" and req.store is not False:
                    await self._store.put(response, turn.input, owner, req)
                yield event

    async def _persist_final(self, req: CreateResponseRequest, response: ResponseObject, turn_input: list[Any],
                             owner: Principal) -> None:
        rows = [self._store.row(response, turn_input, owner, req)] if req.store is not False else []
        if req.conversation and response.status in ("completed", "incomplete"):
            items = [with_id(i) for i in [*turn_input, *response.output]]
            rows += await self.conversations.item_rows(req.conversation, items)
        if rows:  # the response and its conversation turn: both, or (after a crash) neither
            await self._store.db.put_rows(rows)

    # ----- background --------------------------------------------------------------------------------

    def _submit(self, req: CreateResponseRequest, response: ResponseObject, turn_input: list[Any], owner: Principal) -> None:
        response_id = response.id

        async def run() -> None:
            current = await self._store.get(response_id, any_owner=True)
            if current.response.status == "cancelled":
                return
            working = current.response.model_copy(update={"status": "in_progress"})
            await self._store.put(working, turn_input, owner, req)
            try:
                turn = await self._turn(req, turn_input)
            except VistackError as e:
                working.status, working.error = "failed", ResponseError(code="server_error", message=e.message)
                await self._store.put(working, turn_input, owner, req)
                return
            async for _ in self._events(req, turn, working):
                pass

        async def on_cancel() -> None:
            await self._mark(response_id, "cancelled", None)

        async def on_timeout() -> None:
            await self._mark(response_id, "failed", ResponseError(
                code="server_error", message=f"background response timed out after {self.config.background_timeout_s}s"))

        self.jobs.submit(Job(response_id, owner, run, on_timeout, on_cancel))

    async def _mark(self, response_id: str, status: str, error: ResponseError | None) -> None:
        record = await self._store.get(response_id, any_owner=True)
        record.response.status = status  # type: ignore[assignment]
        record.response.error = error
        if status == "cancelled":
            record.response.output = []
        await self._store.put(record.response, record.input, record.owner, record.request)

    async def cancel(self, response_id: str) -> ResponseObject:
        record = await self._store.get(response_id, action=Action.update)
        status = record.response.status
        if status == "cancelled":
            return record.response
        if not record.response.background:
            raise ConflictError(f"Cannot cancel response '{response_id}': only background responses can be cancelled")
        if status in TERMINAL:
            raise ConflictError(f"Cannot cancel response '{response_id}' with status '{status}'")
        await self._mark(response_id, "cancelled", None)
        self.jobs.cancel(response_id)
        return (await self._store.get(response_id)).response

    # ----- read / delete -----------------------------------------------------------------------------

    async def get(self, response_id: str) -> ResponseObject:
        return (await self._store.get(response_id)).response

    async def delete(self, response_id: str) -> ResponseDeleted:
        await self._store.delete(response_id)
        return ResponseDeleted(id=response_id)

    async def list(self, *, after: str | None, limit: int, model: str | None, order: Order) -> ResponseList:
        records = await self._store.list(current_principal())
        if model:
            records = [r for r in records if r.response.model == model]
        page, has_more = paginate(records, ident=lambda r: r.response.id, limit=limit, order=order, after=after)
        data = [ResponseWithInput(**r.response.model_dump(), input=r.input) for r in page]
        return ResponseList.page(data, has_more)  # type: ignore[return-value]

    async def input_items(self, response_id: str, *, after: str | None, before: str | None, limit: int,
                          order: Order) -> InputItemList:
        record: StoredResponse = await self._store.get(response_id)
        page, has_more = paginate(record.input, ident=lambda i: i.id, limit=limit, order=order, after=after,
                                  before=before)
        return InputItemList.page(page, has_more)  # type: ignore[return-value]


class _Outcome:
    """What a non-streaming caller needs after the stream: the exception behind a failure."""

    error: BaseException | None = None


def _input_items(req: CreateResponseRequest) -> list[Any]:
    """The request's input as items with ids (a string is one user message)."""
    if isinstance(req.input, str):
        items: list[Any] = [MessageItem(role="user", content=[InputText(text=req.input)])]
    else:
        items = list(req.input)
    return [with_id(i) for i in items]


def _new_response(req: CreateResponseRequest) -> ResponseObject:
    return ResponseObject(
        id=new_response_id(),
        created_at=int(time.time()),
        model=req.model,
        status="queued" if req.background else "in_progress",
        background=bool(req.background),
        instructions=req.instructions,
        tools=list(req.tools or []),
        tool_choice=req.tool_choice if req.tool_choice is not None else "auto",
        parallel_tool_calls=req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
        previous_response_id=req.previous_response_id,
        conversation={"id": req.conversation} if req.conversation else None,
        temperature=req.temperature,
        top_p=req.top_p,
        frequency_penalty=req.frequency_penalty,
        presence_penalty=req.presence_penalty,
        top_logprobs=req.top_logprobs,
        max_output_tokens=req.max_output_tokens,
        max_tool_calls=req.max_tool_calls,
        truncation=req.truncation or "disabled",
        text=req.text or TextConfig(format=TextFormat(type="text")),
        metadata=req.metadata,
        service_tier=req.service_tier,
        prompt_cache_key=req.prompt_cache_key,
        safety_identifier=req.safety_identifier,
        reasoning=req.reasoning,
        store=req.store is not False,
        user=req.user,
    )


def _http_error(response: ResponseObject, cause: BaseException | None) -> VistackError:
    """A failed non-streaming response becomes the HTTP error that caused it (4xx), else a 500 naming it."""
    if isinstance(cause, VistackError) and cause.status_code < 500:
        return cause
    message = response.error.message if response.error else "the response failed"
    error = VistackError(message, code=response.error.code if response.error else "server_error")
    if isinstance(cause, VistackError):
        error.status_code = cause.status_code
    return error
