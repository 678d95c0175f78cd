"""Shared enums and small records: API names, health, provider info."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Api(StrEnum):
    inference = "inference"
    vector_io = "vector_io"
    files = "files"
    safety = "safety"
    responses = "responses"
    conversations = "conversations"
    tool_runtime = "tool_runtime"


class HealthStatus(StrEnum):
    OK = "OK"
    ERROR = "Error"
    NOT_IMPLEMENTED = "Not Implemented"


class HealthResponse(BaseModel, extra="allow"):
    status: HealthStatus
    message: str | None = None


class HealthInfo(BaseModel):
    status: HealthStatus
    degraded: dict[str, str] | None = Field(
        default=None, description="vistack: providers whose dependency is down, and why (absent when none)")


class VersionInfo(BaseModel):
    version: str


class RouteInfo(BaseModel):
    route: str
    method: str
    provider_types: list[str]


class ListRoutesResponse(BaseModel):
    data: list[RouteInfo]


class ProviderInfo(BaseModel):
    api: str
    provider_id: str
    provider_type: str
    config: dict[str, Any]
    health: HealthResponse


class ListProvidersResponse(BaseModel):
    data: list[ProviderInfo] = Field(default_factory=list)


class ObjectList(BaseModel, Generic[T]):
    """OpenAI's cursor page: ``data`` plus the ids a client pages on."""

    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False

    @classmethod
    def page(cls, data: list[T], has_more: bool = False) -> ObjectList[T]:
        ids = [getattr(x, "id", None) for x in data]
        return cls(data=data, first_id=ids[0] if ids else None, last_id=ids[-1] if ids else None, has_more=has_more)
