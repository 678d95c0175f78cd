"""Shared enums and small records: API names, health, provider info."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


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
