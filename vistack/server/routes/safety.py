"""``/v1/shields``, ``/v1/safety/run-shield`` and ``/v1/moderations`` (Llama Stack 0.7 shapes).

Without a safety provider the shield list is empty, a named shield is 404,
and running one is 503 naming the missing API, so a client learns why rather than getting an empty pass.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from vistack.api import NotFoundError, ServiceNotEnabledError
from vistack.api.errors import not_found_message
from vistack.api.safety import (
    ListShieldsResponse,
    ModerationObject,
    RegisterShieldRequest,
    RunModerationRequest,
    RunShieldRequest,
    RunShieldResponse,
    Shield,
)
from vistack.context import current_principal
from vistack.safety.service import SafetyService
from vistack.server.deps import get_stack

router = APIRouter(prefix="/v1", tags=["Safety"])

_HINT = ("Add a provider under providers.safety (e.g. provider_type: inline::llama-guard) and a shield under "
         "shields in the distribution.")


def _optional(request: Request) -> SafetyService | None:
    return get_stack(request).safety


def get_safety(request: Request) -> SafetyService:
    service = get_stack(request).safety
    if service is None:
        raise ServiceNotEnabledError("Safety API", _HINT)
    return service


@router.get("/shields", response_model=ListShieldsResponse, summary="List shields.")
async def list_shields(service: Annotated[SafetyService | None, Depends(_optional)]) -> ListShieldsResponse:
    return ListShieldsResponse(data=service.list_shields() if service else [])


@router.get("/shields/{identifier:path}", response_model=Shield, summary="Get a shield by its identifier.")
async def get_shield(identifier: str, service: Annotated[SafetyService | None, Depends(_optional)]) -> Shield:
    if service is None:
        raise NotFoundError(not_found_message("Shield", identifier, "shields.list"), code="shield_not_found")
    return service.get_shield(identifier)


@router.post("/shields", response_model=Shield, summary="Register a shield.")
async def register_shield(body: RegisterShieldRequest,
                          service: Annotated[SafetyService, Depends(get_safety)]) -> Shield:
    return await service.register_shield(body, owner=current_principal())


@router.delete("/shields/{identifier:path}", status_code=204, summary="Unregister a shield.")
async def unregister_shield(identifier: str, service: Annotated[SafetyService, Depends(get_safety)]) -> Response:
    await service.unregister_shield(identifier)
    return Response(status_code=204)


@router.post("/safety/run-shield", response_model=RunShieldResponse, summary="Run a shield on messages.")
async def run_shield(body: RunShieldRequest, service: Annotated[SafetyService, Depends(get_safety)]) -> RunShieldResponse:
    return await service.run_shield(body)


@router.post("/moderations", response_model=ModerationObject, summary="Classify inputs (OpenAI moderations).")
async def create_moderation(body: RunModerationRequest,
                            service: Annotated[SafetyService, Depends(get_safety)]) -> ModerationObject:
    return await service.run_moderation(body)
