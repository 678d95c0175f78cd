"""The provider protocols: one per API. Providers implement these; the server
calls them through the registry and never knows which implementation it has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import BaseModel

from .datatypes import Api, HealthResponse, HealthStatus
from .inference import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from .models import Model


class Provider:
    """Base for every provider: built from its config, then ``initialize``d once.

    ``deps`` maps an :class:`Api` to the provider instances this one needs
    (an agent needs inference and vector_io); a provider never imports
    another provider.
    """

    api: ClassVar[Api]

    def __init__(self, config: BaseModel, deps: dict[Api, Any] | None = None) -> None:
        self.config = config
        self.deps = deps or {}
        self.provider_id: str = ""

    async def initialize(self) -> None:
        """Connect, load or validate; must not raise for a merely missing model."""

    async def shutdown(self) -> None:
        """Release sockets, threads and GPU memory."""

    async def health(self) -> HealthResponse:
        return HealthResponse(status=HealthStatus.NOT_IMPLEMENTED)


class InferenceProvider(Provider):
    """Chat, completions and embeddings.

    ``request.model`` arrives already rewritten to the model's
    ``provider_resource_id``; the server rewrites ``model`` in the answer back
    to the identifier the client used. Streaming calls return an async
    iterator of chunks; the last content chunk carries ``finish_reason``, and
    when ``stream_options.include_usage`` is set a final chunk with empty
    ``choices`` carries ``usage`` (as OpenAI does).
    """

    api = Api.inference

    async def list_models(self) -> list[Model] | None:
        """Models the backend serves, for discovery; ``None`` if it cannot list."""
        return None

    async def register_model(self, model: Model) -> Model:
        """Check (cheaply) that the provider can serve ``model``; may fill metadata."""
        return model

    async def unregister_model(self, model: Model) -> None:
        """Forget ``model``; free its memory if loaded."""

    async def chat_completion(
        self, request: ChatCompletionRequest
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        raise NotImplementedError

    async def completion(self, request: CompletionRequest) -> Completion | AsyncIterator[Completion]:
        raise NotImplementedError

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        """Always returns float vectors; the server applies ``encoding_format``."""
        raise NotImplementedError
