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


ChunkingStrategy = Annotated[ChunkingStrategyAuto | ChunkingStrategyStatic, Field(discriminator="type")]


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
    file_ids: list[str] | None = None
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
    file_ids: list[str] = Field(min_length=1, max_length=2000)
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
