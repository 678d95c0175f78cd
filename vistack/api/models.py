"""Model resources: the Llama Stack resource shape and the OpenAI list shape."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelType(StrEnum):
    llm = "llm"
    embedding = "embedding"
    rerank = "rerank"


class Model(BaseModel):
    """A registered model as ``GET /v1/models/{id}`` returns it (Llama Stack resource)."""

    model_config = ConfigDict(protected_namespaces=())

    identifier: str
    provider_resource_id: str
    provider_id: str
    type: Literal["model"] = "model"
    metadata: dict[str, Any] = Field(default_factory=dict)
    model_type: ModelType = ModelType.llm


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    custom_metadata: dict[str, Any] | None = None


class OpenAIListModelsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class RegisterModelRequest(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_id: str = Field(min_length=1)
    provider_model_id: str | None = None
    provider_id: str | None = None
    metadata: dict[str, Any] | None = None
    model_type: ModelType | None = None
    model_validation: bool | None = None
