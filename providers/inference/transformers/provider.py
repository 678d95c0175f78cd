"""``TransformersInferenceProvider``: the provider API, wiring loading, prompting, generation and responses."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

from vistack.api import (
    BadRequestError,
    HealthResponse,
    HealthStatus,
    InferenceProvider,
    Model,
    ModelNotFoundError,
    ModelType,
)
from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)

from .config import PROVIDER_TYPE, TransformersInferenceConfig
from .generation import generate, stream_text
from .loading import Loaded, ModelLoader
from .prompting import Prepared, PromptBuilder, prepare_completion
from .responses import chat_response, completion_response, stream_chat, stream_completion
from .sampling import sampling_for
from .tool_calls import active_tools
from .worker import Slot


class TransformersInferenceProvider(InferenceProvider):
    """Serves registered models with transformers ``generate``; loads each lazily, once."""

    config: TransformersInferenceConfig

    def __init__(self, config: TransformersInferenceConfig, deps: dict | None = None) -> None:
        super().__init__(config, deps)
        self._slots: dict[str, Slot] = {}
        self._initialized = False
        self._loader = ModelLoader(config)
        self._prompts = PromptBuilder(config)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Never loads synchronously and never fails for missing weights (health reports it)."""
        self._initialized = True
        if self.config.preload:
            for slot in self._slots.values():
                slot.start_preload(self._loader.load)

    async def shutdown(self) -> None:
        for slot in list(self._slots.values()):
            slot.free()
        self._slots.clear()

    async def health(self) -> HealthResponse:
        if not self._slots:
            return HealthResponse(status=HealthStatus.OK, message="no models registered")
        problems, states = [], []
        for rid, slot in self._slots.items():
            if slot.loaded is not None:
                states.append(f"{rid}: loaded ({slot.loaded.architecture} on {slot.loaded.device})")
                continue
            problem = slot.error.message if slot.error else await asyncio.to_thread(self._loader.precheck, rid)
            if problem:
                problems.append(problem)
            else:
                states.append(f"{rid}: not loaded yet")
        if problems:
            return HealthResponse(status=HealthStatus.ERROR, message=" | ".join(problems))
        return HealthResponse(status=HealthStatus.OK, message="; ".join(states))

    # -- models ---------------------------------------------------------------------------------------

    async def list_models(self) -> list[Model] | None:
        return None  # models come from the distribution

    async def register_model(self, model: Model) -> Model:
        """Remember the model (cheap); weights load on first use, or now in the background with preload."""
        if model.model_type != ModelType.llm:
            raise BadRequestError(
                f"{PROVIDER_TYPE} serves LLMs; model '{model.identifier}' has model_type "
                f"'{model.model_type.value}'. Register embedding models with inline::sentence-transformers.",
                param="model_type",
            )
        rid = model.provider_resource_id
        slot = self._slots.get(rid)
        if slot is None:
            slot = self._slots[rid] = Slot(rid, max_queued=self.config.max_queued_requests)
        slot.identifiers.add(model.identifier)
        if self.config.preload and self._initialized:
            slot.start_preload(self._loader.load)
        return model

    async def unregister_model(self, model: Model) -> None:
        slot = self._slots.get(model.provider_resource_id)
        if slot is None:
            return
        slot.identifiers.discard(model.identifier)
        if not slot.identifiers:
            del self._slots[model.provider_resource_id]
            slot.free()

    def _slot(self, model: str) -> Slot:
        slot = self._slots.get(model)
        if slot is None:
            raise ModelNotFoundError(model, sorted(i for s in self._slots.values() for i in s.identifiers))
        return slot

    async def _ensure_loaded(self, slot: Slot) -> Loaded:
        return await slot.ensure_loaded(self._loader.load)

    # -- requests -------------------------------------------------------------------------------------

    async def chat_completion(
        self, request: ChatCompletionRequest
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        """Chat through the model's chat template; a stream is returned only once nothing can fail with 4xx/503.

        Sampling parameters the request leaves unset fall back to the checkpoint's
        ``generation_config.json`` (as vLLM does): Llama 3.2 Vision Instruct samples at 0.6 / 0.9.
        ``temperature: 0`` is greedy. vLLM-style extras are honoured: ``top_k``, ``min_p``,
        ``repetition_penalty``, ``min_tokens``, ``ignore_eos``. Accepted and ignored:
        ``frequency_penalty``, ``presence_penalty``, ``logit_bias``, ``parallel_tool_calls``, ``user``.
        """
        slot = self._slot(request.model)
        tools = active_tools(request)
        _one_choice(n=request.n)
        _no_logprobs(request.logprobs)
        fmt = (request.response_format or {}).get("type", "text")
        if fmt != "text":
            raise BadRequestError(
                f"response_format '{fmt}' is not supported by {PROVIDER_TYPE} (no constrained decoding); "
                "describe the JSON in the prompt, or serve the model with remote::vllm for guided decoding.",
                param="response_format",
            )
        images = await asyncio.to_thread(self._prompts.decode_images, request.messages)
        loaded = await self._ensure_loaded(slot)
        prepared = await asyncio.to_thread(self._prepare_chat, loaded, request, images, tools)
        sampling = sampling_for(self.config, loaded, request, request.max_new_tokens, prepared.prompt_tokens)
        if request.stream:
            slot.check_capacity()  # a full queue is a 503 now, not an error in the middle of a stream
            start = functools.partial(stream_text, slot, loaded, prepared, sampling)
            return stream_chat(start, request, prepared.prompt_tokens, tools)
        outcome = await generate(slot, loaded, prepared, sampling)
        return chat_response(request, outcome, prepared.prompt_tokens, tools)

    async def completion(self, request: CompletionRequest) -> Completion | AsyncIterator[Completion]:
        slot = self._slot(request.model)
        _one_choice(n=request.n, best_of=request.best_of)
        _no_logprobs(request.logprobs)
        if request.suffix:
            raise BadRequestError(f"{PROVIDER_TYPE} does not support suffix (fill-in-the-middle).", param="suffix")
        loaded = await self._ensure_loaded(slot)
        prepared, prompt_text = await asyncio.to_thread(prepare_completion, loaded, request)
        sampling = sampling_for(self.config, loaded, request, request.max_tokens, prepared.prompt_tokens)
        echo = prompt_text if request.echo else ""
        if request.stream:
            slot.check_capacity()
            start = functools.partial(stream_text, slot, loaded, prepared, sampling)
            return stream_completion(start, request, prepared.prompt_tokens, echo)
        outcome = await generate(slot, loaded, prepared, sampling)
        return completion_response(request, outcome, prepared.prompt_tokens, echo)

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        raise BadRequestError(
            f"model '{request.model}' is served by {PROVIDER_TYPE}, which serves LLMs, not embeddings; "
            "use an embedding model (inline::sentence-transformers).",
            param="model",
        )

    def _prepare_chat(
        self, loaded: Loaded, request: ChatCompletionRequest, images: list[Any], tools: list[dict] | None
    ) -> Prepared:
        return self._prompts.prepare_chat(loaded, request, images, tools)


def _one_choice(**counts: int | None) -> None:
    for name, value in counts.items():
        if value not in (None, 1):
            raise BadRequestError(f"{PROVIDER_TYPE} generates one choice per request; got {name}={value}.", param=name)


def _no_logprobs(logprobs: Any) -> None:
    if logprobs:
        raise BadRequestError(f"{PROVIDER_TYPE} does not return logprobs.", param="logprobs")
