"""``inline::vistack-llama-guard-vision``: Llama Stack's safety protocol over vistack's ``inline::llama-guard``.

vistack's Llama Guard provider builds the Llama Guard 3 prompt (text, or the 11B Vision guard with the
newest user image), asks the guard model for a few greedy tokens and reads the verdict, failing closed
on an answer it cannot read. It asks through an inference *router*; here that router is
:class:`LlamaStackInference`, which sends the question through Llama Stack's inference API (this
provider's ``inference`` dependency), so the guard model is any model Llama Stack serves: the
Llama-Guard-3-11B-Vision checkpoint through ``inline::vistack-transformers``, or a remote engine.

The config block is vistack's ``LlamaGuardConfig`` (``excluded_categories``, ``on_unparseable``,
``max_tokens``, ``vision``); a shield's ``params`` override it per shield. Whether a guard is the vision
guard comes from ``params.vision``, the config's ``vision``, else the model id containing "vision".
"""

from __future__ import annotations

import uuid
from typing import Any

from llama_stack_api import (
    Api,
    GetShieldRequest,
    ModerationObject,
    ModerationObjectResults,
    OpenAIChatCompletionRequestWithExtraBody,
    RunModerationRequest,
    RunShieldRequest,
    RunShieldResponse,
    Safety,
    Shield,
    ShieldsProtocolPrivate,
)

from vistack.api import Api as VistackApi
from vistack.api.inference import ChatCompletion, ChatCompletionRequest, ChatMessage
from vistack.api.safety import Shield as VistackShield
from vistack.providers.safety.llama_guard import LlamaGuardConfig, LlamaGuardSafetyProvider

from .convert import convert


async def get_provider_impl(config: LlamaGuardConfig, deps: dict[Api, Any]) -> VistackLlamaGuardSafety:
    impl = VistackLlamaGuardSafety(config, deps)
    await impl.initialize()
    return impl


class LlamaStackInference:
    """The part of vistack's inference router the Llama Guard provider uses, served by Llama Stack's inference API.

    ``chat_completion`` sends the guard's question to Llama Stack's inference router (which resolves the
    model id, e.g. ``vistack-transformers/Llama-Guard-3-11B-Vision``). ``resolve`` cannot look a model up
    synchronously in Llama Stack, so it raises, and the guard decides text vs. vision from the shield's
    params, the config or the model id, as documented in its config.
    """

    def __init__(self, inference: Any) -> None:
        self.inference = inference

    async def chat_completion(self, request: ChatCompletionRequest, *, purpose: str = "chat completions") -> ChatCompletion:
        params = convert(request.model_copy(update={"stream": False}), OpenAIChatCompletionRequestWithExtraBody)
        return convert(await self.inference.openai_chat_completion(params), ChatCompletion)

    def resolve(self, model_id: str, *args: Any, **kwargs: Any) -> Any:
        raise LookupError(f"model metadata of '{model_id}' is not available synchronously from Llama Stack")


class VistackLlamaGuardSafety(Safety, ShieldsProtocolPrivate):
    """Shields registered with Llama Stack, judged by vistack's Llama Guard provider."""

    shield_store: Any  # set by Llama Stack's shields routing table

    def __init__(self, config: LlamaGuardConfig, deps: dict[Api, Any]) -> None:
        self.config = config
        self.guard = LlamaGuardSafetyProvider(config, {VistackApi.inference: LlamaStackInference(deps[Api.inference])})
        self._shields: dict[str, VistackShield] = {}

    async def initialize(self) -> None:
        await self.guard.initialize()

    async def shutdown(self) -> None:
        await self.guard.shutdown()

    async def health(self) -> dict[str, Any]:
        health = await self.guard.health()
        return {"status": health.status.value, "message": health.message}

    # ----- shields ---------------------------------------------------------------------------------

    async def register_shield(self, shield: Shield) -> None:
        vshield = convert(shield, VistackShield)
        await self.guard.register_shield(vshield)  # a missing model or bad params: vistack's 400
        self._shields[shield.identifier] = vshield

    async def unregister_shield(self, identifier: str) -> None:
        vshield = self._shields.pop(identifier, None)
        if vshield is not None:
            await self.guard.unregister_shield(vshield)

    async def _shield(self, identifier: str) -> VistackShield:
        """A registered shield; one Llama Stack kept from an earlier run is registered here on first use."""
        if identifier not in self._shields:
            shield = await self.shield_store.get_shield(GetShieldRequest(identifier=identifier))
            await self.register_shield(shield)
        return self._shields[identifier]

    # ----- checks ----------------------------------------------------------------------------------

    async def run_shield(self, request: RunShieldRequest) -> RunShieldResponse:
        shield = await self._shield(request.shield_id)
        messages = [convert(m, ChatMessage) for m in request.messages]
        return convert(await self.guard.run_shield(shield, messages), RunShieldResponse)

    async def run_moderation(self, request: RunModerationRequest) -> ModerationObject:
        """Llama Stack's safety router has picked the shield and passes its ``provider_resource_id`` as ``model``."""
        shield = next((s for s in self._shields.values() if request.model in (s.provider_resource_id, s.identifier)),
                      None)
        if shield is None:  # registered through the API in an earlier run: Llama Stack does not re-register it
            stored = (await self.shield_store.list_shields()).data
            kept = next((s for s in stored if request.model in (s.provider_resource_id, s.identifier)), None)
            if kept is not None:
                shield = await self._shield(kept.identifier)
        if shield is None:
            raise ValueError(f"no shield of this provider judges with model '{request.model}'; registered: "
                             f"{sorted(s.provider_resource_id or s.identifier for s in self._shields.values())}")
        inputs = [request.input] if isinstance(request.input, str) else list(request.input)
        results = await self.guard.run_moderation(shield, inputs)
        return ModerationObject(id=f"modr-{uuid.uuid4().hex}", model=request.model or shield.identifier,
                                results=[convert(r, ModerationObjectResults) for r in results])
