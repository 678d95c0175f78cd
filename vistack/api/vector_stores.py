"""Vector Stores and vector-io wire models (OpenAI / Llama Stack 0.7 shapes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_MAX_CHUNK_TOKENS = 800
DEFAULT_CHUNK_OVERLAP_TOKENS = 400

AttributeValue = str | int | float | bool
"""``int`` is listed so pydantic keeps integers: ``page: 9`` stays ``9`` (``str | float | bool`` made it ``9.0``)."""
FileStatus = Literal["in_progress", "completed", "cancelled", "failed"]
SearchMode = Literal["vector", "keyword", "hybrid"]


# ----- chunking ---------------------------------------------------------------------------------


class ChunkingStrategyAuto(BaseModel):
    type: Literal["auto"] = "auto"


class StaticChunkingConfig(BaseModel):
    max_chunk_size_tokens: int = Field(default=DEFAULT_MAX_CHUNK_TOKENS, ge=100, le=4096)
    chunk_overlap_tokens: int = Field(default=DEFAULT_CHUNK_OVERLAP_TOKENS, ge=0)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> StaticChunkingConfig:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens (as in OpenAI)")
        return self


class ChunkingStrategyStatic(BaseModel):
    type: Literal["static"] = "static"
    static: StaticChunkingConfig


DEFAULT_CONTEXT_PROMPT = (
    "<document>\n{{WHOLE_DOCUMENT}}\n</document>\n"
    "Here is the chunk we want to situate within the whole document\n"
    "<chunk>\n{{CHUNK_CONTENT}}\n</chunk>\n"
    "Please give a short succinct description to situate this chunk of text within the overall document "
    "for the purposes of improving search retrieval of the chunk. "
    "Answer only with the succinct description and nothing else."
)
"""Llama Stack 0.7.3's default prompt, word for word (``llama_stack_api.vector_io.models``)."""
DOCUMENT_PLACEHOLDER = "{{WHOLE_DOCUMENT}}"
CHUNK_PLACEHOLDER = "{{CHUNK_CONTENT}}"


def _without_prompt_default(schema: dict[str, Any]) -> None:
    """As Llama Stack: the prompt's ``{{...}}`` placeholders stay out of the JSON schema (SDK generators)."""
    schema.get("properties", {}).get("context_prompt", {}).pop("default", None)


class ContextualChunkingConfig(BaseModel):
    """Llama Stack 0.7's ``VectorStoreChunkingStrategyContextualConfig``: same fields, defaults and limits.

    An LLM writes a short context for each chunk, situating it in its document; the context is
    prepended to the chunk before it is embedded and keyword-indexed (``vistack.rag.contextual``).
    ``None`` for ``model_id``, ``timeout_seconds`` or ``max_concurrency`` means the distribution's
    ``vector_stores.contextual_retrieval_params``.
    """

    model_config = ConfigDict(json_schema_extra=_without_prompt_default, protected_namespaces=())

    model_id: str | None = Field(
        default=None, min_length=1,
        description="LLM that writes the contexts; default: vector_stores.contextual_retrieval_params.model",
    )
    context_prompt: str = Field(
        default=DEFAULT_CONTEXT_PROMPT,
        description="Prompt template: the WHOLE_DOCUMENT placeholder before the CHUNK_CONTENT one, each wrapped in "
        "double curly braces",
    )
    max_chunk_size_tokens: int = Field(default=700, ge=100, le=4096)
    chunk_overlap_tokens: int = Field(default=400, ge=0, description="must be less than max_chunk_size_tokens")
    timeout_seconds: int | None = Field(default=None, ge=1, description="per LLM call")
    max_concurrency: int | None = Field(default=None, ge=1, description="LLM calls at once, per file")

    @model_validator(mode="after")
    def _check(self) -> ContextualChunkingConfig:
        # Llama Stack's checks and wording (the document must come first: engines cache the shared prefix)
        if self.chunk_overlap_tokens >= self.max_chunk_size_tokens:
            raise ValueError("chunk_overlap_tokens must be less than max_chunk_size_tokens")
        if DOCUMENT_PLACEHOLDER not in self.context_prompt:
            raise ValueError("context_prompt must contain {{WHOLE_DOCUMENT}} placeholder")
        if CHUNK_PLACEHOLDER not in self.context_prompt:
            raise ValueError("context_prompt must contain {{CHUNK_CONTENT}} placeholder")
        if self.context_prompt.index(DOCUMENT_PLACEHOLDER) >= self.context_prompt.index(CHUNK_PLACEHOLDER):
            raise ValueError(
                "context_prompt must have {{WHOLE_DOCUMENT}} before {{CHUNK_CONTENT}} to enable prefix caching"
            )
        return self


class ChunkingStrategyContextual(BaseModel):
    type: Literal["contextual"] = "contextual"
    contextual: ContextualChunkingConfig


FileId = Annotated[str, Field(min_length=1, max_length=512)]
"""A file id in a list (``file_ids``): an empty one is a 400 at the boundary, like a single attach's."""

ChunkingStrategy = Annotated[
    ChunkingStrategyAuto | ChunkingStrategyStatic | ChunkingStrategyContextual, Field(discriminator="type")
]


# ----- vector stores ----------------------------------------------------------------------------


class FileCounts(BaseModel):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStoreObject(BaseModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str | None = None
    usage_bytes: int = 0
    file_counts: FileCounts = Field(default_factory=FileCounts)
    status: Literal["expired", "in_progress", "completed"] = "completed"
    expires_after: dict[str, Any] | None = None
    expires_at: int | None = None
    last_active_at: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class CreateVectorStoreRequest(BaseModel):
    """``extra_body`` keys arrive as top-level extras, as Llama Stack reads them."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    file_ids: list[FileId] | None = Field(default=None, max_length=2000)
    expires_after: dict[str, Any] | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: dict[str, Any] | None = None
    embedding_model: str | None = None
    embedding_dimension: int | None = Field(default=None, ge=1)
    provider_id: str | None = None


class UpdateVectorStoreRequest(BaseModel):
    name: str | None = None
    expires_after: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class ListResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Any]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class VectorStoreDeleteResponse(BaseModel):
    id: str
    object: Literal["vector_store.deleted"] = "vector_store.deleted"
    deleted: bool = True


# ----- vector store files -----------------------------------------------------------------------


class LastError(BaseModel):
    code: Literal["server_error", "unsupported_file", "invalid_file", "rate_limit_exceeded"]
    message: str


class IngestionProgress(BaseModel):
    """vistack's extension on a file that is ``in_progress``: pages read so far, of how many (None: not known
    up front, e.g. a text file)."""

    pages_done: int
    pages_total: int | None = None


class VectorStoreFileObject(BaseModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    chunking_strategy: ChunkingStrategy
    created_at: int
    last_error: LastError | None = None
    status: FileStatus
    usage_bytes: int = 0
    vector_store_id: str
    progress: IngestionProgress | None = None  # vistack: while in_progress (live, not stored)


class AttachFileRequest(BaseModel):
    file_id: str = Field(min_length=1)
    attributes: dict[str, AttributeValue] | None = Field(default=None, max_length=16)
    chunking_strategy: ChunkingStrategy | None = None


class UpdateFileAttributesRequest(BaseModel):
    attributes: dict[str, AttributeValue] = Field(max_length=16)


class VectorStoreFileDeleteResponse(BaseModel):
    id: str
    object: Literal["vector_store.file.deleted"] = "vector_store.file.deleted"
    deleted: bool = True


class ContentItem(BaseModel):
    type: Literal["text"] = "text"
    text: str
    embedding: list[float] | None = None
    chunk_metadata: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class FileContentResponse(BaseModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[ContentItem]
    has_more: bool = False
    next_page: str | None = None


class CreateFileBatchRequest(BaseModel):
    file_ids: list[FileId] = Field(min_length=1, max_length=2000)
    attributes: dict[str, AttributeValue] | None = Field(default=None, max_length=16)
    chunking_strategy: ChunkingStrategy | None = None


class FileBatchObject(BaseModel):
    id: str
    object: Literal["vector_store.file_batch"] = "vector_store.file_batch"
    created_at: int
    vector_store_id: str
    status: FileStatus
    file_counts: FileCounts


# ----- search -----------------------------------------------------------------------------------


class RankingOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    ranker: str | None = None
    score_threshold: float | None = Field(default=None, ge=0.0)
    alpha: float | None = Field(default=None, ge=0.0, le=1.0)
    impact_factor: float | None = Field(default=None, gt=0.0)


class SearchRequest(BaseModel):
    query: str | list[str]
    filters: dict[str, Any] | None = None
    max_num_results: int = Field(default=10, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False
    search_mode: SearchMode | None = Field(
        default=None, description="absent: the distribution's vector_stores.default_search_mode (hybrid unless set)"
    )


class SearchResult(BaseModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, AttributeValue] | None = None
    content: list[ContentItem]
    passage_bbox: str | None = Field(
        default=None,
        description="vistack: the box (\"x0,y0,x1,y1\", in attributes.page_size's frame) of the block of this chunk "
        "that the query points at; null when the chunk is one block or no block shares a term with the query",
    )


class SearchResponsePage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None


# ----- /v1/vector-io ------------------------------------------------------------------------------


class IOChunk(BaseModel):
    """A Llama Stack chunk for ``/v1/vector-io/insert`` and ``/query``."""

    model_config = ConfigDict(extra="allow")

    content: Any
    chunk_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunk_metadata: dict[str, Any] | None = None
    embedding: list[float] | None = None
    embedding_model: str | None = None
    embedding_dimension: int | None = None


class InsertChunksRequest(BaseModel):
    vector_store_id: str
    chunks: list[IOChunk] = Field(min_length=1)
    ttl_seconds: int | None = None


class QueryChunksRequest(BaseModel):
    vector_store_id: str
    query: Any
    params: dict[str, Any] | None = None


class QueryChunksResponse(BaseModel):
    chunks: list[IOChunk]
    scores: list[float]
