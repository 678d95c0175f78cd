"""``/v1/providers``: what the distribution assembled, secrets redacted, with health."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends

from vistack.api import Api, NotFoundError
from vistack.api.datatypes import HealthResponse, HealthStatus, ListProvidersResponse, ProviderInfo
from vistack.registry import redact
from vistack.server.deps import get_stack
from vistack.stack import ProviderHandle, Stack

router = APIRouter(prefix="/v1", tags=["Providers"])

HEALTH_TIMEOUT_S = 5.0


def reranker_status(stack: Stack) -> str:
    """Whether vector store search is reranked, said where users look (vector_io providers' health)."""
    reranker = stack.vector_stores.searcher.reranker if stack.vector_stores is not None else None
    if reranker is None:
        return "none configured (vector_stores.reranker_model): search results are not reranked"
    problem = reranker.problem()
    if problem:
        return f"unavailable: {problem}; vector store searches fail with 503 until it is fixed"
    return f"configured: {reranker.model_path}"


async def _info(handle: ProviderHandle, stack: Stack) -> ProviderInfo:
    try:
        health = await asyncio.wait_for(handle.instance.health(), HEALTH_TIMEOUT_S)
    except TimeoutError:
        health = HealthResponse(status=HealthStatus.ERROR, message=f"health check timed out after {HEALTH_TIMEOUT_S}s")
    except Exception as e:
        health = HealthResponse(status=HealthStatus.ERROR, message=str(e))
    if handle.api == Api.vector_io:
        health = HealthResponse(**health.model_dump(), reranker=reranker_status(stack))
    return ProviderInfo(
        api=handle.api.value,
        provider_id=handle.entry.provider_id,
        provider_type=handle.entry.provider_type,
        config=redact(handle.instance.config),
        health=health,
    )


@router.get("/providers", response_model=ListProvidersResponse, summary="List providers.")
async def list_providers(stack: Annotated[Stack, Depends(get_stack)]) -> ListProvidersResponse:
    infos = await asyncio.gather(*(_info(h, stack) for h in stack.providers.values()))
    return ListProvidersResponse(data=list(infos))


@router.get("/providers/{provider_id}", response_model=ProviderInfo, summary="Get provider.")
async def inspect_provider(provider_id: str, stack: Annotated[Stack, Depends(get_stack)]) -> ProviderInfo:
    handle = stack.providers.get(provider_id)
    if handle is None:
        raise NotFoundError(
            f"provider '{provider_id}' not found; configured: {', '.join(sorted(stack.providers))}",
            code="provider_not_found",
        )
    return await _info(handle, stack)
