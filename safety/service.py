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
    ModerationObjectResults,
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


def violation_result(violation: SafetyViolation | None, input_types: list[str]) -> ModerationObjectResults:
    """A moderation result from a shield's violation: the categories it names (Llama Guard lists them in
    ``metadata.categories``), else its violation type, flagged and scored 1.0 on ``input_types``."""
    if violation is None or violation.violation_level != ViolationLevel.error:
        return ModerationObjectResults(flagged=False, categories={}, category_scores={},
                                       category_applied_input_types={})
    meta = violation.metadata or {}
    names = [str(n) for n in (meta.get("categories") or [meta.get("violation_type") or "unsafe"])]
    return ModerationObjectResults(flagged=True, categories=dict.fromkeys(names, True),
                                   category_scores=dict.fromkeys(names, 1.0),
                                   category_applied_input_types={n: list(input_types) for n in names},
                                   user_message=violation.user_message, metadata=dict(meta))


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
        if not req.input:
            raise BadRequestError("input must not be empty", param="input")
        provider = self.shields.provider_for(shield)
        if isinstance(req.input, list) and not isinstance(req.input[0], str):  # one multi-modal input
            message = ChatMessage(role="user", content=list(req.input))  # type: ignore[arg-type]
            response = await provider.run_shield(shield, [message])
            kinds = ["text", "image"] if message.images() else ["text"]
            return ModerationObject(id=f"modr-{uuid.uuid4()}", model=shield.provider_resource_id or shield.identifier,
                                    results=[violation_result(response.violation, kinds)])
        inputs = [req.input] if isinstance(req.input, str) else list(req.input)  # type: ignore[arg-type]
        results = await provider.run_moderation(shield, inputs)  # type: ignore[arg-type]
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
