"""``inline::llama-guard``: Llama Guard 3 shields through the inference router.

The guard is an ordinary model in the catalog (local Mllama guard through
``inline::transformers``, the 1B/8B text guards, or any remote engine), so
loading, queues and 503s for missing weights are the inference provider's.
This provider builds the model card's prompt, asks for a few greedy tokens
and reads the verdict; an answer it cannot read follows ``on_unparseable``
(fail closed by default) and is logged with the raw text.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vistack.api import Api, BadRequestError, ModelType
from vistack.api.datatypes import HealthResponse, HealthStatus
from vistack.api.inference import ChatCompletionRequest, ChatMessage
from vistack.api.protocols import SafetyProvider
from vistack.api.safety import ModerationObjectResults, RunShieldResponse, Shield

from .config import LlamaGuardConfig
from .prompt import CATEGORIES, GuardKind, build_guard_message, guard_kind
from .verdict import Verdict, moderation_result, parse_verdict, shield_response

log = logging.getLogger(__name__)


class LlamaGuardSafetyProvider(SafetyProvider):
    config: LlamaGuardConfig

    def __init__(self, config: LlamaGuardConfig, deps: dict[Api, Any] | None = None) -> None:
        super().__init__(config, deps)
        self.inference = self.deps[Api.inference]

    async def register_shield(self, shield: Shield) -> Shield:
        if not shield.provider_resource_id:
            raise BadRequestError("a Llama Guard shield needs a model: set provider_shield_id to the guard model's id",
                                  param="provider_shield_id")
        self._settings(shield)  # bad params are the caller's error now, not at the first check
        return shield

    async def health(self) -> HealthResponse:
        return HealthResponse(status=HealthStatus.OK, message="guard models are served by the inference router")

    # ----- checks ----------------------------------------------------------------------------------

    async def run_shield(self, shield: Shield, messages: list[ChatMessage]) -> RunShieldResponse:
        verdict = await self._judge(shield, messages)
        return shield_response(verdict)

    async def run_moderation(self, shield: Shield, inputs: list[str]) -> list[ModerationObjectResults]:
        verdicts = await asyncio.gather(
            *(self._judge(shield, [ChatMessage(role="user", content=text)]) for text in inputs)
        )
        return [moderation_result(v) for v in verdicts]

    def moderation_category(self, shield: Shield) -> str:
        return "unsafe"

    async def _judge(self, shield: Shield, messages: list[ChatMessage]) -> Verdict:
        """Ask the guard; the verdict with the unparseable policy applied (never ``unparseable``)."""
        excluded, kind, policy = self._settings(shield)
        try:
            guard_input = build_guard_message(messages, kind, excluded)
        except ValueError as e:
            raise BadRequestError(str(e), param="messages") from None
        if guard_input.dropped_images:
            log.info("shield %s: the vision guard takes one image; judged the newest user image, left out %d",
                     shield.identifier, guard_input.dropped_images)
        request = ChatCompletionRequest(
            model=shield.provider_resource_id or shield.identifier,
            messages=[guard_input.message],
            temperature=0.0,
            max_completion_tokens=self.config.max_tokens,
            stream=False,
        )
        completion = await self.inference.chat_completion(request, purpose=f"the Llama Guard shield '{shield.identifier}'")
        text = completion.choices[0].message.content or ""
        verdict = parse_verdict(text, excluded)
        if verdict.status != "unparseable":
            return verdict
        log.warning("shield %s: unreadable Llama Guard answer %r; policy on_unparseable=%s",
                    shield.identifier, text[:200], policy)
        if policy == "allow":
            return Verdict("safe", raw=text)
        return Verdict("unsafe", ["unparseable"], raw=text)

    def _settings(self, shield: Shield) -> tuple[frozenset[str], GuardKind, str]:
        """(excluded codes, text or vision guard, unparseable policy) for ``shield``: its params over the config."""
        params = shield.params or {}
        excluded = params.get("excluded_categories", self.config.excluded_categories)
        if not isinstance(excluded, list) or any(c not in CATEGORIES for c in excluded):
            raise BadRequestError(f"params.excluded_categories must be a list of S-codes from {', '.join(CATEGORIES)}; "
                                  f"got {excluded!r}", param="params")
        policy = params.get("on_unparseable", self.config.on_unparseable)
        if policy not in ("block", "allow"):
            raise BadRequestError(f"params.on_unparseable must be 'block' or 'allow'; got {policy!r}", param="params")
        vision = params.get("vision", self.config.vision)
        if vision is None:
            vision = self._model_says_vision(shield.provider_resource_id or "")
        return frozenset(excluded), guard_kind(shield.provider_resource_id or "", vision=vision), policy

    def _model_says_vision(self, model_id: str) -> bool | None:
        try:
            model = self.inference.resolve(model_id, ModelType.llm).model
        except Exception:  # noqa: BLE001 - unknown yet (registered later): decide by the id
            return None
        meta = model.metadata.get("vision")
        return bool(meta) if meta is not None else None
