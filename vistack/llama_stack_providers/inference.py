"""``inline::vistack-transformers``: Llama Stack's inference protocol over vistack's ``inline::transformers``.

Llama Stack has no local vision inference; this adapter serves Llama 3.2 Vision (Mllama) and any
Hugging Face causal LM in the Llama Stack process, with vistack's provider doing all the work
(chat templates, one image per turn, streaming, token limits, the 503s that name the missing
weights). The adapter only renames: Llama Stack's ``provider_model_id`` becomes the checkpoint
vistack loads (``model_paths``), and requests and answers are converted between the two
projects' OpenAI-shaped models. vistack's errors carry ``status_code``, which Llama Stack's server
turns into the same HTTP status (400, 413, 429, 503).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llama_stack_api import (
    InferenceProvider,
    Model,
    ModelsProtocolPrivate,
    ModelType,
    OpenAIChatCompletion,
    OpenAIChatCompletionChunk,
    OpenAIChatCompletionRequestWithExtraBody,
    OpenAICompletion,
    OpenAICompletionRequestWithExtraBody,
    OpenAIEmbeddingsRequestWithExtraBody,
    OpenAIEmbeddingsResponse,
)
from pydantic import Field

from vistack.api import Model as VistackModel
from vistack.api import ModelType as VistackModelType
from vistack.api.inference import ChatCompletionRequest, CompletionRequest, EmbeddingsRequest
from vistack.providers.inference.transformers import TransformersInferenceConfig, TransformersInferenceProvider

from .convert import convert, convert_stream


class VistackTransformersConfig(TransformersInferenceConfig):
    """vistack's ``inline::transformers`` config block, plus where each Llama Stack model's weights are."""

    model_paths: dict[str, str] = Field(
        default_factory=dict,
        description="provider_model_id -> local checkpoint directory (or Hugging Face hub id) to load. Llama Stack "
        "names a model '<provider_id>/<provider_model_id>', so a short provider_model_id (tiny-mllama, "
        "Llama-3.2-11B-Vision-Instruct) keeps model ids readable; ids not listed are loaded as given.",
    )

    def vistack_config(self) -> TransformersInferenceConfig:
        return TransformersInferenceConfig.model_validate(self.model_dump(exclude={"model_paths"}))


async def get_provider_impl(config: VistackTransformersConfig, deps: dict[Any, Any]) -> VistackTransformersInference:
    impl = VistackTransformersInference(config)
    await impl.initialize()
    return impl


class VistackTransformersInference(InferenceProvider, ModelsProtocolPrivate):
    """One vistack ``TransformersInferenceProvider``; Llama Stack models are registered with it by checkpoint."""

    __provider_id__: str

    def __init__(self, config: VistackTransformersConfig) -> None:
        self.config = config
        self.vistack = TransformersInferenceProvider(config.vistack_config())
        self._registered: dict[str, VistackModel] = {}  # Llama Stack provider_resource_id -> the vistack model

    async def initialize(self) -> None:
        await self.vistack.initialize()

    async def shutdown(self) -> None:
        await self.vistack.shutdown()

    async def health(self) -> dict[str, Any]:
        health = await self.vistack.health()
        return {"status": health.status.value, "message": health.message}

    # ----- models ----------------------------------------------------------------------------------

    async def should_refresh_models(self) -> bool:
        return False

    async def list_models(self) -> list[Model] | None:
        return None  # models come from run.yaml (registered_resources) or POST /v1/models

    async def register_model(self, model: Model) -> Model:
        if model.model_type != ModelType.llm:
            raise ValueError(f"inline::vistack-transformers serves LLMs; model '{model.identifier}' has model_type "
                             f"'{model.model_type.value}'. Serve embeddings with inline::sentence-transformers.")
        await self._vistack_model(model.provider_resource_id, model.identifier, model.metadata)
        return model

    async def unregister_model(self, model_id: str) -> None:
        for rid, vmodel in list(self._registered.items()):
            if model_id in (vmodel.identifier, rid):
                del self._registered[rid]
                await self.vistack.unregister_model(vmodel)

    async def _vistack_model(self, rid: str, identifier: str | None = None, metadata: dict | None = None) -> str:
        """The checkpoint vistack serves ``rid`` from, registering it first when needed (a model Llama Stack
        kept in its registry from an earlier run reaches us without a new ``register_model``)."""
        vmodel = self._registered.get(rid)
        if vmodel is None:
            vmodel = VistackModel(
                identifier=identifier or f"{getattr(self, '__provider_id__', 'vistack-transformers')}/{rid}",
                provider_resource_id=self.config.model_paths.get(rid, rid),
                provider_id=getattr(self, "__provider_id__", ""),
                metadata=dict(metadata or {}),
                model_type=VistackModelType.llm,
            )
            await self.vistack.register_model(vmodel)
            self._registered[rid] = vmodel
        return vmodel.provider_resource_id

    # ----- requests --------------------------------------------------------------------------------

    async def openai_chat_completion(
        self, params: OpenAIChatCompletionRequestWithExtraBody
    ) -> OpenAIChatCompletion | AsyncIterator[OpenAIChatCompletionChunk]:
        request = convert(params, ChatCompletionRequest)
        request.model = await self._vistack_model(params.model)
        result = await self.vistack.chat_completion(request)
        if hasattr(result, "__anext__"):
            return convert_stream(result, OpenAIChatCompletionChunk)
        return convert(result, OpenAIChatCompletion)

    async def openai_completion(
        self, params: OpenAICompletionRequestWithExtraBody
    ) -> OpenAICompletion | AsyncIterator[OpenAICompletion]:
        request = convert(params, CompletionRequest)
        request.model = await self._vistack_model(params.model)
        result = await self.vistack.completion(request)
        if hasattr(result, "__anext__"):
            return convert_stream(result, OpenAICompletion)
        return convert(result, OpenAICompletion)

    async def openai_embeddings(self, params: OpenAIEmbeddingsRequestWithExtraBody) -> OpenAIEmbeddingsResponse:
        """vistack's answer: a 400 saying to use an embedding provider."""
        return convert(await self.vistack.embeddings(convert(params, EmbeddingsRequest)), OpenAIEmbeddingsResponse)
