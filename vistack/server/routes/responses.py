"""``/v1/responses`` (OpenAI Responses / Llama Stack 0.7 shapes)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from sse_starlette.sse import EventSourceResponse

from vistack.api.response_events import ResponseEvent, dump_event
from vistack.api.responses import (
    CreateResponseRequest,
    InputItemList,
    ResponseDeleted,
    ResponseList,
    ResponseObject,
)
from vistack.server.deps import get_responses
from vistack.server.streaming import close_stream

if TYPE_CHECKING:
    from vistack.agents.responses import ResponsesProvider

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["Responses"])

Service = Annotated["ResponsesProvider", Depends(get_responses)]
_STREAM_DOC = {200: {"description": "The response, or `text/event-stream` of response events when `stream` is true."}}


@router.post("/responses", response_model=ResponseObject, responses=_STREAM_DOC, summary="Create a model response.")
async def create_response(body: CreateResponseRequest, svc: Service) -> Any:
    result = await svc.create(body)
    if isinstance(result, ResponseObject):
        return _json(result)
    return EventSourceResponse(_sse(result), ping=15, sep="\n")


async def _sse(events: AsyncIterator[ResponseEvent]) -> AsyncIterator[dict[str, str]]:
    """``event: <type>`` + ``data: <json>`` per event, as OpenAI streams them; closing stops the agent."""
    try:
        async for event in events:
            yield {"event": event.type, "data": json.dumps(dump_event(event), separators=(",", ":"))}
    finally:
        await close_stream(events)


@router.get("/responses", response_model=ResponseList, summary="List stored responses.")
async def list_responses(
    svc: Service,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    model: str | None = None,
    order: Literal["asc", "desc"] = "desc",
) -> ResponseList:
    return await svc.list(after=after, limit=limit, model=model, order=order)


@router.get("/responses/{response_id}", response_model=ResponseObject, summary="Get a stored response.")
async def get_response(response_id: str, svc: Service) -> Response:
    return _json(await svc.get(response_id))


@router.delete("/responses/{response_id}", response_model=ResponseDeleted, summary="Delete a stored response.")
async def delete_response(response_id: str, svc: Service) -> ResponseDeleted:
    return await svc.delete(response_id)


@router.post("/responses/{response_id}/cancel", response_model=ResponseObject,
             summary="Cancel a queued or in-progress background response.")
async def cancel_response(response_id: str, svc: Service) -> Response:
    return _json(await svc.cancel(response_id))


@router.get("/responses/{response_id}/input_items", response_model=InputItemList,
            summary="List a response's input items.")
async def list_input_items(
    response_id: str,
    svc: Service,
    after: str | None = None,
    before: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    include: Annotated[list[str] | None, Query()] = None,
) -> InputItemList:
    return await svc.input_items(response_id, after=after, before=before, limit=limit, order=order)


def _json(obj: ResponseObject) -> Response:
    """Serialised by alias (``text.format.schema``), extra citation fields included."""
    return Response(content=obj.model_dump_json(by_alias=True), media_type="application/json")
