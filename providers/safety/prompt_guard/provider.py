"""``PromptGuardSafetyProvider``: shields backed by a Prompt Guard classifier, loaded lazily per checkpoint.

Registering a shield never reads weights (a missing checkpoint must not stop the
server); the first ``run_shield`` / ``run_moderation`` / ``score_texts`` on a
checkpoint loads it once, however many calls race for it. All torch work runs on
one dedicated worker thread: the event loop never blocks, ``cpu_threads`` can be
pinned to that thread alone, and a small classifier gains nothing from running
two forward passes at once on the same cores.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from vistack.api import BadRequestError
from vistack.api.datatypes import HealthResponse, HealthStatus
from vistack.api.inference import ChatMessage
from vistack.api.protocols import SafetyProvider
from vistack.api.safety import (
    ModerationObjectResults,
    RunShieldResponse,
    SafetyViolation,
    Shield,
    ViolationLevel,
)
from vistack.torch_threads import pin_threads

from . import classifier
from .classifier import PromptGuardClassifier
from .config import MODEL_ENV, PROVIDER_TYPE, USER_MESSAGE, PromptGuardConfig, ShieldPolicy, shield_policy

logger = logging.getLogger(__package__)

T = TypeVar("T")


class PromptGuardSafetyProvider(SafetyProvider):
    """Prompt injection / jailbreak shields (Llama Prompt Guard 2, or v1) through transformers."""

    config: PromptGuardConfig

    def __init__(self, config: PromptGuardConfig, deps: dict[Any, Any] | None = None) -> None:
        super().__init__(config, deps)
        self._loaded: dict[str, PromptGuardClassifier] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._shields: dict[str, str] = {}  # shield identifier -> checkpoint (provider_resource_id)
        self._executor: ThreadPoolExecutor | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        self._loaded.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def health(self) -> HealthResponse:
        """Loaded checkpoints, or the ones that cannot be found; never loads weights."""
        rids = sorted({*self._shields.values(), *self._loaded})
        if not rids:
            return HealthResponse(status=HealthStatus.OK, message="no shields registered")
        states, problems = [], []
        for rid in rids:
            if rid in self._loaded:
                states.append(self._loaded[rid].describe())
                continue
            problem = await asyncio.to_thread(classifier.precheck, rid, self.config)
            if problem:
                problems.append(problem)
            else:
                states.append(f"{rid}: not loaded yet")
        if problems:
            return HealthResponse(status=HealthStatus.ERROR, message=" | ".join(problems))
        return HealthResponse(status=HealthStatus.OK, message="; ".join(states))

    # -- shields --------------------------------------------------------------------------------------

    async def register_shield(self, shield: Shield) -> Shield:
        """Check the shield names a checkpoint and its ``params`` are valid; weights load on first use."""
        if not shield.provider_resource_id:
            raise BadRequestError(
                f"Shield '{shield.identifier}' ({PROVIDER_TYPE}) needs a provider_shield_id naming a Prompt Guard "
                f"checkpoint: a local directory or a Hugging Face id such as meta-llama/Llama-Prompt-Guard-2-86M "
                f"(distributions read {MODEL_ENV}).",
                param="provider_shield_id",
            )
        shield_policy(shield, self.config)
        self._shields[shield.identifier] = shield.provider_resource_id
        return shield

    async def unregister_shield(self, shield: Shield) -> None:
        """Forget the shield; drop its checkpoint when no other shield uses it."""
        rid = self._shields.pop(shield.identifier, shield.provider_resource_id)
        if rid and rid not in self._shields.values():
            self._loaded.pop(rid, None)

    def moderation_category(self, shield: Shield) -> str:
        return shield_policy(shield, self.config).category

    async def run_shield(self, shield: Shield, messages: list[ChatMessage]) -> RunShieldResponse:
        """Score the last message's text; a violation when the score reaches the shield's threshold."""
        policy = shield_policy(shield, self.config)
        text = messages[-1].text() if messages else ""
        if not text.strip():
            return RunShieldResponse()
        [score] = await self._scores(shield, [text], policy)
        if score < policy.threshold:
            return RunShieldResponse()
        return RunShieldResponse(
            violation=SafetyViolation(
                violation_level=ViolationLevel.error,
                user_message=USER_MESSAGE,
                metadata=_metadata(policy, score),
            )
        )

    async def run_moderation(self, shield: Shield, inputs: list[str]) -> list[ModerationObjectResults]:
        """One result per input, in order, all scored in one batched pass; the real probability as the score.

        An empty (or whitespace-only) input scores 0.0 and is never flagged, as in ``run_shield``.
        """
        policy = shield_policy(shield, self.config)
        category = policy.category
        results = []
        for text, score in zip(inputs, await self._scores(shield, inputs, policy), strict=True):
            flagged = bool(text and text.strip()) and score >= policy.threshold
            results.append(
                ModerationObjectResults(
                    flagged=flagged,
                    categories={category: flagged},
                    category_scores={category: score},
                    category_applied_input_types={category: ["text"] if flagged else []},
                    user_message=USER_MESSAGE if flagged else None,
                    metadata=_metadata(policy, score) if flagged else {},
                )
            )
        return results

    async def score_texts(self, shield: Shield, texts: list[str]) -> list[float]:
        """The shield's malicious probability for each text (max over its windows), in one batched pass.

        For callers that apply their own policy, e.g. guardrails screening retrieved chunks.
        """
        return await self._scores(shield, texts, shield_policy(shield, self.config))

    # -- internals ------------------------------------------------------------------------------------

    async def _scores(self, shield: Shield, texts: list[str], policy: ShieldPolicy) -> list[float]:
        if not any(t and t.strip() for t in texts):
            return [0.0] * len(texts)
        model = await self._classifier(shield)
        cfg = self.config
        return await self._run(
            lambda: model.scores(
                texts,
                guard_type=policy.guard_type,
                temperature=cfg.temperature,
                stride=cfg.stride,
                batch_size=cfg.batch_size,
            )
        )

    async def _classifier(self, shield: Shield) -> PromptGuardClassifier:
        """The shield's checkpoint, loaded once (concurrent first calls wait for the same load)."""
        rid = shield.provider_resource_id
        if not rid:
            raise BadRequestError(f"Shield '{shield.identifier}' has no provider_resource_id.", param="shield_id")
        loaded = self._loaded.get(rid)
        if loaded is not None:
            return loaded
        lock = self._locks.setdefault(rid, asyncio.Lock())
        async with lock:
            loaded = self._loaded.get(rid)
            if loaded is None:  # a failed load is not remembered: the weights may be copied in later
                loaded = self._loaded[rid] = await self._run(lambda: classifier.load(rid, self.config))
        return loaded

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="vistack-prompt-guard", initializer=self._init_worker
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _init_worker(self) -> None:
        if self.config.cpu_threads:
            try:
                import torch

                pin_threads(torch, self.config.cpu_threads)
            except Exception:  # noqa: BLE001 - a failed initializer would break the pool for good
                logger.warning("could not pin %d torch threads", self.config.cpu_threads, exc_info=True)


def _metadata(policy: ShieldPolicy, score: float) -> dict[str, Any]:
    return {"violation_type": policy.category, "score": score, "threshold": policy.threshold}
