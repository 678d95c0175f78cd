"""The inference router: the one place that turns a model id into a provider call.

Routes, vector stores (embeddings), agents and safety all call this; nothing
else looks models up. It resolves a full (``provider_id/model``) or short
model id, checks the model's type, rewrites the id to the provider's
``provider_resource_id`` on the way in and back to the identifier on the way
out (streams included), as Llama Stack's inference router does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from pydantic import BaseModel

from vistack.api import BadRequestError, Model, ModelType
from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from vistack.api.protocols import InferenceProvider
from vistack.metrics import current as current_metrics
from vistack.model_catalog import CatalogEntry, ModelCatalog

_T = TypeVar("_T", bound=BaseModel)

_PURPOSE = {ModelType.llm: "an llm", ModelType.embedding: "an embedding model"}


class InferenceRouter:
    def __init__(self, catalog: ModelCatalog) -> None:
        self.catalog = catalog

    # ----- lookup ------------------------------------------------------------------------------

    def resolve(self, model_id: str, want: ModelType | None = None, *, param: str = "model",
                purpose: str | None = None) -> CatalogEntry:
        """The catalog entry for ``model_id``; 404 when unknown, 400 when of the wrong type.

        ``purpose`` names what needs the model in the 400 message ("chat completions").
        """
        entry = self.catalog.get(model_id)
        kind = entry.model.model_type
        if want is not None and kind != want:
            needs = purpose or want.value
            hint = " (use /v1/embeddings for embedding models)" if kind == ModelType.embedding else ""
            raise BadRequestError(
                f"model '{entry.model.identifier}' is a {kind.value} model; {needs} needs "
                f"{_PURPOSE.get(want, want.value)}{hint}",
                param=param,
            )
        return entry

    def model(self, model_id: str) -> Model:
        return self.resolve(model_id).model

    def provider(self, entry: CatalogEntry) -> InferenceProvider:
        return self.catalog.provider_for(entry)

    def accepts_images(self, model_id: str) -> bool:
        """Whether the model reads images: distribution metadata ``vision: true``, or the provider says so."""
        entry = self.resolve(model_id)
        meta = entry.model.metadata
        if "vision" in meta:
            return bool(meta["vision"])
        probe = getattr(self.provider(entry), "accepts_images", None)
        if probe is not None:
            return bool(probe(entry.model))
        name = entry.model.provider_resource_id.lower()
        return "vision" in name or "mllama" in name

    def embedding_dimension(self, model_id: str) -> int | None:
        value = self.resolve(model_id, ModelType.embedding).model.metadata.get("embedding_dimension")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    # ----- calls -------------------------------------------------------------------------------

    async def chat_completion(
        self, request: ChatCompletionRequest, *, purpose: str = "chat completions"
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        entry = self.resolve(request.model, ModelType.llm, purpose=purpose)
        result = await self.provider(entry).chat_completion(
            request.model_copy(update={"model": entry.model.provider_resource_id})
        )
        return _renamed(result, entry.model.identifier)

    async def completion(self, request: CompletionRequest) -> Completion | AsyncIterator[Completion]:
        entry = self.resolve(request.model, ModelType.llm, purpose="text completions")
        result = await self.provider(entry).completion(
            request.model_copy(update={"model": entry.model.provider_resource_id})
        )
        return _renamed(result, entry.model.identifier)

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        """Float vectors always (callers apply ``encoding_format``), ``model`` renamed back."""
        entry = self.resolve(request.model, ModelType.embedding, purpose="embeddings")
        result = await self.provider(entry).embeddings(
            request.model_copy(update={"model": entry.model.provider_resource_id, "encoding_format": "float"})
        )
        result.model = entry.model.identifier
        _record_usage(entry.model.identifier, result)  # observability: prompt tokens of the embedding model
        return result

    async def embed(self, model_id: str, texts: list[str], dimensions: int | None = None) -> list[list[float]]:
        """Embed ``texts`` in input order."""
        response = await self.embeddings(EmbeddingsRequest(model=model_id, input=texts, dimensions=dimensions))
        return [d.embedding for d in sorted(response.data, key=lambda d: d.index)]  # type: ignore[misc]


def _renamed(result: Any, name: str) -> Any:
    if hasattr(result, "__anext__"):
        return _RenamedStream(result, name)
    result.model = name
    _record_usage(name, result)
    return result


# ----- observability: tokens per model, from usage (vistack.metrics) ----------------------------------


def _record_usage(model: str, result: Any, usage: Any = None) -> None:
    """Count the prompt and completion tokens of an answer (or a stream's last usage) for ``model``."""
    usage = usage if usage is not None else getattr(result, "usage", None)
    if usage is None:
        return
    current_metrics().tokens(model, getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0))


class _RenamedStream:
    """Renames ``model`` on every chunk; closing it closes the provider's stream.

    Also counts the stream's tokens: the last ``usage`` a chunk carried (the final
    usage chunk, sent when the request asked for ``stream_options.include_usage``),
    once, when the stream ends or is closed. Streams without usage are not counted.
    """

    def __init__(self, inner: AsyncIterator[_T], name: str) -> None:
        self._inner = inner
        self._name = name
        self._usage: Any = None

    def __aiter__(self) -> _RenamedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await anext(self._inner)
        except StopAsyncIteration:
            self._record()
            raise
        chunk.model = self._name  # type: ignore[attr-defined]
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
        return chunk

    async def aclose(self) -> None:
        self._record()
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()

    def _record(self) -> None:
        usage, self._usage = self._usage, None
        if usage is not None:
            _record_usage(self._name, None, usage)
