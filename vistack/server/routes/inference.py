"""``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``: route -> inference router -> provider."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vistack.api import NotFoundError
from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from vistack.chat_store import ChatCompletionStore
from vistack.context import current_principal
from vistack.inference import InferenceRouter
from vistack.server.deps import get_inference, get_stack
from vistack.server.streaming import sse_response
from vistack.stack import Stack

router = APIRouter(prefix="/v1", tags=["Inference"])

_STREAM_DOC = {200: {"description": "JSON, or `text/event-stream` of chunks when `stream` is true."}}

Inference = Annotated[InferenceRouter, Depends(get_inference)]


@router.post("/chat/completions", response_model=ChatCompletion, responses=_STREAM_DOC, summary="Create a chat completion.")
async def chat_completions(body: ChatCompletionRequest, inference: Inference, stack: Annotated[Stack, Depends(get_stack)]):
    result = await inference.chat_completion(body)
    store = stack.chat_completions
    keep = store is not None and store.wanted((body.model_extra or {}).get("store"))
    if hasattr(result, "__anext__"):
        if keep:
            result = store.recording(result, body.messages, current_principal())  # type: ignore[union-attr,arg-type]
        return await sse_response(result)  # type: ignore[arg-type]
    if keep:
        await store.record(result, body.messages, current_principal())  # type: ignore[union-attr,arg-type]
    return _json(result)  # type: ignore[arg-type]


@router.get("/chat/completions", summary="List stored chat completions.")
async def list_chat_completions(
    stack: Annotated[Stack, Depends(get_stack)],
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    model: str | None = None,
    order: Literal["asc", "desc"] = "desc",
) -> Response:
    store = _store(stack)
    data, has_more = await store.list(current_principal(), after=after, limit=limit, model=model, order=order)
    body = {"object": "list", "data": data, "first_id": data[0]["id"] if data else "",
            "last_id": data[-1]["id"] if data else "", "has_more": has_more}
    return JSONResponse(body)


@router.get("/chat/completions/{completion_id}", summary="Get a stored chat completion with its input messages.")
async def get_chat_completion(completion_id: str, stack: Annotated[Stack, Depends(get_stack)]) -> Response:
    return JSONResponse(await _store(stack).get(completion_id, current_principal()))


def _store(stack: Stack) -> ChatCompletionStore:
    if stack.chat_completions is None:
        raise NotFoundError("stored chat completions need an inference provider", code="api_not_configured")
    return stack.chat_completions


@router.post("/completions", response_model=Completion, responses=_STREAM_DOC, summary="Create a text completion.")
async def completions(body: CompletionRequest, inference: Inference):
    result = await inference.completion(body)
    if hasattr(result, "__anext__"):
        return await sse_response(result)  # type: ignore[arg-type]
    return _json(result)  # type: ignore[arg-type]


@router.post("/embeddings", response_model=EmbeddingsResponse, summary="Create embeddings.")
async def embeddings(body: EmbeddingsRequest, inference: Inference) -> EmbeddingsResponse:
    result = await inference.embeddings(body)
    if body.encoding_format == "base64":
        for item in result.data:
            item.embedding = encode_base64(item.embedding)  # type: ignore[arg-type]
    return result


def _json(obj: BaseModel) -> Response:
    """The provider already built a validated model: serialise it once, skip re-validation."""
    return Response(content=obj.model_dump_json(), media_type="application/json")


def encode_base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32 bytes."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
