"""``/v1/models``: OpenAI list shape, Llama Stack resource shape for one model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from vistack.api.models import Model, OpenAIListModelsResponse, OpenAIModel, RegisterModelRequest
from vistack.context import current_principal
from vistack.model_catalog import CatalogEntry, ModelCatalog
from vistack.server.deps import get_models

router = APIRouter(prefix="/v1", tags=["Models"])


def _openai(entry: CatalogEntry) -> OpenAIModel:
    m = entry.model
    return OpenAIModel(
        id=m.identifier,
        created=entry.created,
        owned_by=entry.owner,
        custom_metadata={
            "model_type": m.model_type.value,
            "provider_id": m.provider_id,
            "provider_resource_id": m.provider_resource_id,
            **m.metadata,
        },
    )


@router.get("/models", response_model=OpenAIListModelsResponse, summary="List models (OpenAI shape).")
async def list_models(catalog: Annotated[ModelCatalog, Depends(get_models)]) -> OpenAIListModelsResponse:
    return OpenAIListModelsResponse(data=[_openai(e) for e in catalog.list()])


@router.get("/models/{model_id:path}", response_model=Model, summary="Get a model by its identifier.")
async def get_model(model_id: str, catalog: Annotated[ModelCatalog, Depends(get_models)]) -> Model:
    return catalog.get(model_id).model


@router.post("/models", response_model=Model, summary="Register a model.")
async def register_model(body: RegisterModelRequest, catalog: Annotated[ModelCatalog, Depends(get_models)]) -> Model:
    return await catalog.register(body, owner=current_principal())


@router.delete("/models/{model_id:path}", status_code=204, summary="Unregister a model.")
async def unregister_model(model_id: str, catalog: Annotated[ModelCatalog, Depends(get_models)]) -> Response:
    await catalog.unregister(model_id)
    return Response(status_code=204)
