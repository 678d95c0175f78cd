"""Streaming events of ``POST /v1/responses`` with ``stream: true`` (OpenAI names and fields).

Every event carries ``type`` and a ``sequence_number`` that increases by one
from ``response.created`` to the terminal event (``response.completed``,
``response.incomplete`` or ``response.failed``). The stream that assigns the
numbers lives in ``vistack.agents.events``; these are only the shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .responses import Annotation, ContentPart, OutputItem, ResponseObject, TokenLogprob


class ResponseEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    sequence_number: int = 0


class ResponseLifecycleEvent(ResponseEvent):
    """``response.created|in_progress|completed|incomplete|failed|queued``: the whole response."""

    type: Literal[
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.queued",
    ]
    response: ResponseObject


class OutputItemEvent(ResponseEvent):
    type: Literal["response.output_item.added", "response.output_item.done"]
    response_id: str
    output_index: int
    item: OutputItem


class ContentPartEvent(ResponseEvent):
    type: Literal["response.content_part.added", "response.content_part.done"]
    response_id: str
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart


class OutputTextDeltaEvent(ResponseEvent):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[TokenLogprob] = []


class OutputTextDoneEvent(ResponseEvent):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[TokenLogprob] = []


class RefusalDeltaEvent(ResponseEvent):
    type: Literal["response.refusal.delta"] = "response.refusal.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str


class RefusalDoneEvent(ResponseEvent):
    type: Literal["response.refusal.done"] = "response.refusal.done"
    item_id: str
    output_index: int
    content_index: int
    refusal: str


class AnnotationAddedEvent(ResponseEvent):
    type: Literal["response.output_text.annotation.added"] = "response.output_text.annotation.added"
    item_id: str
    output_index: int
    content_index: int
    annotation_index: int
    annotation: Annotation


class ItemProgressEvent(ResponseEvent):
    """Progress of a tool item: file search, MCP list/call (``item_id`` + ``output_index`` only)."""

    type: Literal[
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_list_tools.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
    ]
    item_id: str
    output_index: int


class ArgumentsDeltaEvent(ResponseEvent):
    type: Literal["response.function_call_arguments.delta", "response.mcp_call.arguments.delta"]
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(ResponseEvent):
    type: Literal["response.function_call_arguments.done", "response.mcp_call.arguments.done"]
    item_id: str
    output_index: int
    arguments: str
    name: str | None = None


class StreamErrorEvent(ResponseEvent):
    """An error outside any response (OpenAI's ``error`` event); rare: failures normally end in ``response.failed``."""

    type: Literal["error"] = "error"
    code: str | None = None
    message: str
    param: str | None = None


def dump_event(event: ResponseEvent) -> dict[str, Any]:
    return event.model_dump(mode="json", by_alias=True)
