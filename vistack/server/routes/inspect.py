"""``/v1/health``, ``/v1/version``, ``/v1/inspect/routes``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

import vistack
from vistack.api import Api
from vistack.api.datatypes import HealthInfo, HealthStatus, ListRoutesResponse, RouteInfo, VersionInfo
from vistack.server.deps import get_stack
from vistack.stack import Stack

router = APIRouter(prefix="/v1", tags=["Inspect"])

# Which API serves the routes under each OpenAPI tag (for provider_types in /v1/inspect/routes).
TAG_APIS: dict[str, Api] = {
    "Models": Api.inference,
    "Inference": Api.inference,
    "Files": Api.files,
    "Vector Stores": Api.vector_io,
    "Vector IO": Api.vector_io,
    "Safety": Api.safety,
    "Shields": Api.safety,
    "Responses": Api.responses,
    "Conversations": Api.conversations,
}


@router.get("/health", response_model=HealthInfo, summary="Get health status.")
async def health() -> HealthInfo:
    return HealthInfo(status=HealthStatus.OK)


@router.get("/version", response_model=VersionInfo, summary="Get version.")
async def version() -> VersionInfo:
    return VersionInfo(version=vistack.__version__)


@router.get("/inspect/routes", response_model=ListRoutesResponse, summary="List routes.")
async def list_routes(
    request: Request,
    stack: Annotated[Stack, Depends(get_stack)],
    api_filter: Annotated[Literal["v1", "v1alpha", "v1beta", "deprecated"] | None, Query()] = None,
) -> ListRoutesResponse:
    """Every API route with the provider types that implement it."""
    if api_filter in ("v1alpha", "v1beta", "deprecated"):
        return ListRoutesResponse(data=[])
    data = []
    # The OpenAPI schema is the public, cached description of every route (FastAPI's
    # internal route objects changed shape across versions; the schema did not).
    for path, operations in request.app.openapi().get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, op in sorted(operations.items()):
            apis = {TAG_APIS[t] for t in op.get("tags", []) if t in TAG_APIS}
            types = sorted({h.spec.provider_type for h in stack.providers.values() if h.api in apis})
            data.append(RouteInfo(route=path, method=method.upper(), provider_types=types))
    return ListRoutesResponse(data=data)
