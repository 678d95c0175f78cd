"""``/v1/health``, ``/v1/version``, ``/v1/inspect/routes``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

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


HEALTH_CHECK_TIMEOUT_S = 2.0
HEALTH_CACHE_S = 5.0
_cache: dict[int, tuple[float, dict[str, str]]] = {}


@router.get("/health", response_model=HealthInfo, response_model_exclude_none=True, summary="Get health status.")
async def health(stack: Annotated[Stack, Depends(get_stack)]) -> HealthInfo:
    """``OK`` while the server serves; ``degraded`` names each provider whose dependency is down (a Chroma
    server, a remote engine, missing weights), with why. Requests that need it answer 503 meanwhile."""
    degraded = await _degraded(stack)
    return HealthInfo(status=HealthStatus.OK, degraded=degraded or None)


async def _degraded(stack: Stack) -> dict[str, str]:
    """Providers whose health is Error, checked concurrently with a short timeout and cached briefly (probes
    may call this every second)."""
    now = time.monotonic()
    cached = _cache.get(id(stack))
    if cached is not None and now - cached[0] < HEALTH_CACHE_S:
        return cached[1]

    async def one(pid: str, provider: Any) -> tuple[str, str | None]:
        try:
            result = await asyncio.wait_for(provider.health(), HEALTH_CHECK_TIMEOUT_S)
        except TimeoutError:
            return pid, f"health check timed out after {HEALTH_CHECK_TIMEOUT_S:g} s"
        except Exception as e:  # noqa: BLE001 - a failing check is a degraded dependency, not a failed probe
            return pid, f"{type(e).__name__}: {e}"
        return pid, (result.message or "error") if result.status == HealthStatus.ERROR else None

    checks = await asyncio.gather(*(one(pid, h.instance) for pid, h in stack.providers.items()))
    found = {pid: message for pid, message in checks if message is not None}
    _cache[id(stack)] = (now, found)
    return found


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
