"""The provider protocols: one per API. Providers implement these; the server
calls them through the registry and never knows which implementation it has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from .datatypes import Api, HealthResponse, HealthStatus
from .files import ExpiresAfter, FileDeleteResponse, FileObject, FilePurpose, ListFilesResponse
from .inference import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from .models import Model
from .safety import ModerationObjectResults, RunShieldResponse, Shield, moderation_result_from_violation


@dataclass
class ProviderContext:
    """What the stack hands every provider before ``initialize``.

    ``state_dir`` is the distribution's state directory (providers keep their
    data in a subdirectory of it unless their config names a path);
    ``store`` is the shared SQLite metadata store (``vistack.storage.MetadataStore``).
    """

    state_dir: Path
    store: Any


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
        self.context: ProviderContext | None = None

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


# ----- vector_io ----------------------------------------------------------------------------------

ChunkMetadataValue = str | int | float | bool


class StoredChunk(BaseModel):
    """One retrievable unit as a vector DB holds it.

    ``metadata`` is flat (scalars only, as Chroma requires): ``file_id``,
    ``filename``, ``page``, ``bbox`` ("x0,y0,x1,y1" in PDF points),
    ``chunk_type``, ``page_image_file_id``, ``chunk_index`` plus the file's
    attributes. ``embedding`` is ``None`` when not requested back.
    """

    id: str
    text: str
    metadata: dict[str, ChunkMetadataValue] = {}
    embedding: list[float] | None = None


class ScoredChunk(BaseModel):
    chunk: StoredChunk
    score: float


class VectorIOProvider(Provider):
    """A vector index with one collection per vector store.

    Scores are cosine similarities (higher is better). ``where`` arguments are
    equality maps on metadata (``{"file_id": "file-..."}``); ``filters`` are the
    OpenAI comparison/compound filters. A backend that is down raises
    ``ServiceUnavailableError`` naming where it was looked for.
    """

    api = Api.vector_io

    async def create_collection(self, store_id: str, dimension: int) -> None:
        raise NotImplementedError

    async def delete_collection(self, store_id: str) -> None:
        raise NotImplementedError

    async def add_chunks(self, store_id: str, chunks: list[StoredChunk]) -> None:
        """Upsert chunks (all with embeddings of the collection's dimension)."""
        raise NotImplementedError

    async def delete_chunks(self, store_id: str, where: dict[str, ChunkMetadataValue]) -> None:
        raise NotImplementedError

    async def get_chunks(
        self, store_id: str, where: dict[str, ChunkMetadataValue], include_embeddings: bool = False
    ) -> list[StoredChunk]:
        """All chunks matching ``where``, ordered by (page, chunk_index) when present."""
        raise NotImplementedError

    async def query(
        self, store_id: str, embedding: list[float], k: int, filters: Any | None = None
    ) -> list[ScoredChunk]:
        """Top-``k`` by cosine similarity, best first, restricted by OpenAI ``filters``."""
        raise NotImplementedError

    async def count(self, store_id: str) -> int:
        raise NotImplementedError


# ----- files --------------------------------------------------------------------------------------


class StoredFileInfo(BaseModel):
    """A file's public object plus what only the server needs (owner, hash, type)."""

    file: FileObject
    owner: str
    tenant: str = "default"
    sha256: str
    content_type: str | None = None


class FilesProvider(Provider):
    """Stores uploaded bytes and their metadata; every file records its owner.

    ``owner`` is a ``vistack.access.Principal``: in a lookup, the caller, checked with
    ``vistack.access.require`` (``None`` means "any owner": internal callers such as
    ingestion); in ``create_file``, the new file's owner (its tenant is stored too).
    Unknown ids and ids the caller may not see raise the same ``NotFoundError``; uploads over the configured cap raise
    ``PayloadTooLargeError`` and leave nothing behind.
    """

    api = Api.files

    async def create_file(
        self,
        *,
        filename: str,
        purpose: FilePurpose,
        chunks: AsyncIterator[bytes],
        owner: Any,
        content_type: str | None = None,
        expires_after: ExpiresAfter | None = None,
        file_id: str | None = None,
    ) -> StoredFileInfo:
        """``file_id``: an id the caller chose with ``vistack.api.files.new_file_id`` (ingestion records a page
        image's id before storing it, so a crash in between cannot orphan it); default: a fresh one."""
        raise NotImplementedError

    async def list_files(
        self,
        *,
        owner: Any | None,
        purpose: FilePurpose | None = None,
        order: str = "desc",
        limit: int = 10000,
        after: str | None = None,
    ) -> ListFilesResponse:
        raise NotImplementedError

    async def get_file(self, file_id: str, owner: Any | None = None) -> StoredFileInfo:
        raise NotImplementedError

    async def iter_content(self, file_id: str, owner: Any | None = None) -> AsyncIterator[bytes]:
        """The exact uploaded bytes, in chunks."""
        raise NotImplementedError

    async def read_bytes(self, file_id: str, owner: Any | None = None) -> bytes:
        raise NotImplementedError

    async def local_path(self, file_id: str, owner: Any | None = None) -> str | None:
        """A local filesystem path holding the file's bytes, for readers that page through big files
        without loading them; None when the provider keeps bytes elsewhere (callers then stream)."""
        return None

    async def delete_file(self, file_id: str, owner: Any | None = None) -> FileDeleteResponse:
        raise NotImplementedError


# ----- safety -------------------------------------------------------------------------------------


class SafetyProvider(Provider):
    """Runs shields: a guard model, a classifier or a scanner judging messages.

    A shield is handed over whole (``provider_resource_id`` names the model or
    checkpoint, ``params`` the per-shield settings); the safety service has
    already looked it up and checked access. ``run_shield`` judges the
    conversation's *last* message in its context. ``run_moderation`` judges
    each input on its own and returns one result per input, in order (as
    OpenAI's ``/v1/moderations`` does). A guard that cannot run (weights
    missing, engine down) raises ``ServiceUnavailableError`` naming what it
    tried: a shield never passes silently.
    """

    api = Api.safety

    async def register_shield(self, shield: Shield) -> Shield:
        """Check (cheaply) that this provider can run ``shield``; may fill ``provider_resource_id``."""
        return shield

    async def unregister_shield(self, shield: Shield) -> None:
        """Forget ``shield``; free what it loaded."""

    async def run_shield(self, shield: Shield, messages: list[ChatMessage]) -> RunShieldResponse:
        raise NotImplementedError

    async def run_moderation(self, shield: Shield, inputs: list[str]) -> list[ModerationObjectResults]:
        """Default: each input as one user message through ``run_shield``, the violation as the shield's category."""
        results = []
        for text in inputs:
            response = await self.run_shield(shield, [ChatMessage(role="user", content=text)])
            results.append(moderation_result_from_violation(response.violation, self.moderation_category(shield)))
        return results

    def moderation_category(self, shield: Shield) -> str:
        """The category name a violation of ``shield`` is reported under in moderation results."""
        return shield.identifier
