"""``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``: route -> catalog -> provider."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from vistack.api import BadRequestError, ModelType
from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from vistack.model_catalog import CatalogEntry, ModelCatalog
from vistack.server.deps import get_models
from vistack.server.streaming import sse_response

router = APIRouter(prefix="/v1", tags=["Inference"])

_STREAM_DOC = {200: {"description": "JSON, or `text/event-stream` of chunks when `stream` is true."}}


def _resolve(catalog: ModelCatalog, model_id: str, want: ModelType, route: str) -> CatalogEntry:
    entry = catalog.get(model_id)
    kind = entry.model.model_type
    if want == ModelType.embedding and kind != ModelType.embedding:
        raise BadRequestError(
            f"model '{entry.model.identifier}' is a {kind.value} model; {route} needs an embedding model", param="model"
        )
    if want == ModelType.llm and kind != ModelType.llm:
        raise BadRequestError(
            f"model '{entry.model.identifier}' is a {kind.value} model; {route} needs an llm "
            f"(use /v1/embeddings for embedding models)",
            param="model",
        )
    return entry


def _renamer(name: str):
    def fix(obj: BaseModel) -> BaseModel:
        obj.model = name  # type: ignore[attr-defined]
        return obj

    return fix


@router.post("/chat/completions", response_model=ChatCompletion, responses=_STREAM_DOC, summary="Create a chat completion.")
async def chat_completions(body: ChatCompletionRequest, catalog: Annotated[ModelCatalog, Depends(get_models)]):
    entry = _resolve(catalog, body.model, ModelType.llm, "/v1/chat/completions")
    fix = _renamer(entry.model.identifier)
    result = await catalog.provider_for(entry).chat_completion(
        body.model_copy(update={"model": entry.model.provider_resource_id})
    )
    if isinstance(result, AsyncIterator) or hasattr(result, "__anext__"):
        return await sse_response(result, fix)  # type: ignore[arg-type]
    return _json(fix(result))


@router.post("/completions", response_model=Completion, responses=_STREAM_DOC, summary="Create a text completion.")
async def completions(body: CompletionRequest, catalog: Annotated[ModelCatalog, Depends(get_models)]):
    entry = _resolve(catalog, body.model, ModelType.llm, "/v1/completions")
    fix = _renamer(entry.model.identifier)
    result = await catalog.provider_for(entry).completion(
        body.model_copy(update={"model": entry.model.provider_resource_id})
    )
    if hasattr(result, "__anext__"):
        return await sse_response(result, fix)  # type: ignore[arg-type]
    return _json(fix(result))


@router.post("/embeddings", response_model=EmbeddingsResponse, summary="Create embeddings.")
async def embeddings(body: EmbeddingsRequest, catalog: Annotated[ModelCatalog, Depends(get_models)]) -> EmbeddingsResponse:
    entry = _resolve(catalog, body.model, ModelType.embedding, "/v1/embeddings")
    result = await catalog.provider_for(entry).embeddings(
        body.model_copy(update={"model": entry.model.provider_resource_id, "encoding_format": "float"})
    )
    result.model = entry.model.identifier
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
