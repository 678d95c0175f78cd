"""``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``: route -> inference router -> provider."""

from __future__ import annotations

import base64
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from vistack.inference import InferenceRouter
from vistack.server.deps import get_inference
from vistack.server.streaming import sse_response

router = APIRouter(prefix="/v1", tags=["Inference"])

_STREAM_DOC = {200: {"description": "JSON, or `text/event-stream` of chunks when `stream` is true."}}

Inference = Annotated[InferenceRouter, Depends(get_inference)]


@router.post("/chat/completions", response_model=ChatCompletion, responses=_STREAM_DOC, summary="Create a chat completion.")
async def chat_completions(body: ChatCompletionRequest, inference: Inference):
    result = await inference.chat_completion(body)
    if hasattr(result, "__anext__"):
        return await sse_response(result)  # type: ignore[arg-type]
    return _json(result)  # type: ignore[arg-type]


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
