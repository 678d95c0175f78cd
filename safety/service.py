"""The Safety API as routes and agents see it: shields, run-shield, moderations, concurrent checks.

Every call looks the shield up in the catalog and hands it to the provider
that runs it. ``check`` runs several shields on the same messages at once
(``asyncio.gather``), which is what guardrails use: the latency of a set
of shields is that of the slowest, not the sum.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from vistack.api import BadRequestError, ServiceUnavailableError
from vistack.api.inference import ChatMessage
from vistack.api.safety import (
    ModerationObject,
    RegisterShieldRequest,
    RunModerationRequest,
    RunShieldRequest,
    RunShieldResponse,
    SafetyViolation,
    Shield,
    ViolationLevel,
)
from vistack.config import GuardrailDefaults

from .shields import ShieldCatalog

log = logging.getLogger(__name__)


@dataclass
class ShieldOutcome:
    """One shield's answer in a concurrent check, with how long it took."""

    shield_id: str
    violation: SafetyViolation | None
    seconds: float

    @property
    def blocks(self) -> bool:
        return self.violation is not None and self.violation.violation_level == ViolationLevel.error


class SafetyService:
    def __init__(self, shields: ShieldCatalog, guardrails: GuardrailDefaults | None = None) -> None:
        self.shields = shields
        self.guardrails = guardrails or GuardrailDefaults()

    # ----- shields ---------------------------------------------------------------------------------

    def list_shields(self) -> list[Shield]:
        return self.shields.list()

    def get_shield(self, shield_id: str) -> Shield:
        return self.shields.get(shield_id)

    async def register_shield(self, req: RegisterShieldRequest, owner: str) -> Shield:
        return await self.shields.register(req, owner)

    async def unregister_shield(self, shield_id: str) -> None:
        await self.shields.unregister(shield_id)

    # ----- checks ----------------------------------------------------------------------------------

    async def run_shield(self, req: RunShieldRequest) -> RunShieldResponse:
        shield = self.shields.get(req.shield_id)
        if not req.messages:
            raise BadRequestError("messages must not be empty", param="messages")
        return await self.shields.provider_for(shield).run_shield(shield, req.messages)

    async def run_moderation(self, req: RunModerationRequest) -> ModerationObject:
        """One result per input (OpenAI's contract); ``model`` picks the shield, absent -> the default shield."""
        if req.model:
            shield = self.shields.by_model(req.model)
        else:
            default = self.shields.default_shield_id
            if default is None:
                raise BadRequestError("No moderation model specified and this server has no shields: register a "
                                      "shield or name one with 'model'", param="model")
            shield = self.shields.get(default)
        inputs = [req.input] if isinstance(req.input, str) else list(req.input)
        if not inputs:
            raise BadRequestError("input must not be empty", param="input")
        results = await self.shields.provider_for(shield).run_moderation(shield, inputs)
        if len(results) != len(inputs):
            raise ServiceUnavailableError(f"shield '{shield.identifier}' returned {len(results)} results for "
                                          f"{len(inputs)} inputs")
        return ModerationObject(id=f"modr-{uuid.uuid4()}", model=shield.provider_resource_id or shield.identifier,
                                results=results)

    async def check(self, shield_ids: list[str], messages: list[ChatMessage]) -> list[ShieldOutcome]:
        """Run ``shield_ids`` on ``messages`` concurrently; any shield's failure propagates (never a silent pass)."""
        shields = [self.shields.get(sid) for sid in shield_ids]

        async def one(shield: Shield) -> ShieldOutcome:
            started = time.perf_counter()
            response = await self.shields.provider_for(shield).run_shield(shield, messages)
            return ShieldOutcome(shield.identifier, response.violation, time.perf_counter() - started)

        return list(await asyncio.gather(*(one(s) for s in shields)))
