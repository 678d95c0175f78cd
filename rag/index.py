"""The store index: the one owner of a vector store's two copies of its chunks.

Every chunk lives twice: in the store's vector_io provider (the *dense*
copy: embeddings, used for vector search and as the source of truth for
reads) and in a BM25 :class:`~vistack.rag.keyword_index.KeywordIndex` (the
*keyword* copy). Both must hold the same chunks with the same metadata, or
hybrid search fuses two different corpora. So nothing else writes to either:
ingestion, attribute updates, ``/v1/vector-io/insert``, deletion and the
dedup re-homing all go through :class:`StoreIndex`, which changes the dense
copy first (a backend that is down fails the call before the keyword copy
is touched) and the keyword copy second.

:class:`StoreIndexes` hands out one :class:`StoreIndex` per store and owns
the keyword directories under ``<state_dir>/keyword/<store_id>``.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from vistack.api.protocols import ChunkMetadataValue, ScoredChunk, StoredChunk, VectorIOProvider
from vistack.rag.keyword_index import KeywordIndex
from vistack.rag.records import StoreRecord

__all__ = ["ChunkMetadata", "Embedder", "MetadataChange", "StoreIndex", "StoreIndexes", "Where"]

Where = dict[str, ChunkMetadataValue]
"""Equality on chunk metadata, e.g. ``{"file_id": "file-..."}``."""

ChunkMetadata = dict[str, ChunkMetadataValue]
Embedder = Callable[[StoreRecord, list[str]], Awaitable[list[list[float]]]]
"""A store's texts -> vectors of its dimension (``VectorStoreService.embed_for_store``): the dense search input."""

MetadataChange = Callable[[ChunkMetadata], ChunkMetadata]
"""Old chunk metadata -> new chunk metadata (must be pure: it may run on a retry)."""


class StoreIndex:
    """One vector store's chunks, dense and keyword copies kept in step."""

    def __init__(self, store_id: str, dense: VectorIOProvider, keyword: KeywordIndex) -> None:
        self.store_id = store_id
        self._dense = dense
        self._keyword = keyword

    # ----- writes (both copies) ------------------------------------------------------------------

    async def add(self, chunks: list[StoredChunk]) -> None:
        """Upsert ``chunks`` (with embeddings) by id into both copies."""
        if not chunks:
            return
        await self._dense.add_chunks(self.store_id, chunks)
        await asyncio.to_thread(self._keyword.add, chunks)

    async def delete(self, where: Where) -> None:
        """Delete every chunk matching ``where`` from both copies; ``drop`` is the way to empty a store."""
        if not where:
            raise ValueError("StoreIndex.delete needs a non-empty `where`; use StoreIndexes.drop for a whole store")
        await self._dense.delete_chunks(self.store_id, where)
        await asyncio.to_thread(self._keyword.delete, where)

    async def update_metadata(self, where: Where, change: MetadataChange) -> int:
        """Rewrite the metadata of the chunks matching ``where`` in both copies; returns how many.

        Text and embeddings are kept (read back from the dense copy), so
        nothing is re-embedded. Idempotent when ``change`` is: a retry after
        a failure half-way finishes the job.
        """
        chunks = await self._dense.get_chunks(self.store_id, where, include_embeddings=True)
        for chunk in chunks:
            chunk.metadata = change(dict(chunk.metadata))
        await self.add(chunks)
        return len(chunks)

    async def flush(self) -> None:
        """Make the keyword copy durable now (the dense copy persists on every write)."""
        await asyncio.to_thread(self._keyword.flush)

    # ----- reads ---------------------------------------------------------------------------------

    async def get(self, where: Where, include_embeddings: bool = False) -> list[StoredChunk]:
        """The chunks matching ``where`` (``{}``: all), in (page, chunk_index) order."""
        return await self._dense.get_chunks(self.store_id, where, include_embeddings)

    async def dense_search(self, embedding: list[float], k: int, filters: Any | None = None) -> list[ScoredChunk]:
        """Top-``k`` by cosine similarity to ``embedding``, restricted by OpenAI ``filters``."""
        return await self._dense.query(self.store_id, embedding, k, filters)

    async def keyword_search(self, query: str, k: int, filters: Any | None = None) -> list[ScoredChunk]:
        """Top-``k`` by BM25 score for ``query``, restricted by OpenAI ``filters``."""
        return await asyncio.to_thread(self._keyword.search, query, k, filters)

    def close(self) -> None:
        self._keyword.close()


class StoreIndexes:
    """The :class:`StoreIndex` of every store: created, looked up, dropped, closed."""

    def __init__(self, vector_io: Mapping[str, VectorIOProvider], keyword_dir: Path) -> None:
        self._vector_io = vector_io
        self._keyword_dir = keyword_dir
        self._open: dict[str, StoreIndex] = {}
        self._lock = threading.Lock()

    def of(self, store: StoreRecord) -> StoreIndex:
        """The index of ``store`` (opened on first use; opening does no I/O)."""
        store_id = store.object.id
        with self._lock:
            index = self._open.get(store_id)
            if index is None:
                keyword = KeywordIndex(self._keyword_dir / store_id)
                index = self._open[store_id] = StoreIndex(store_id, self._vector_io[store.provider_id], keyword)
            return index

    async def create(self, store: StoreRecord) -> StoreIndex:
        """Create the dense collection of a new store (the keyword copy appears on first write)."""
        await self._vector_io[store.provider_id].create_collection(store.object.id, store.embedding_dimension)
        return self.of(store)

    async def drop(self, store: StoreRecord) -> None:
        """Delete both copies of a store entirely, the BM25 directory included."""
        store_id = store.object.id
        await self._vector_io[store.provider_id].delete_collection(store_id)
        with self._lock:
            index = self._open.pop(store_id, None)
        if index is not None:
            await asyncio.to_thread(index.close)
        await asyncio.to_thread(shutil.rmtree, self._keyword_dir / store_id, True)

    def close(self) -> None:
        """Flush and release every open keyword copy (a later ``of`` reopens)."""
        with self._lock:
            indexes, self._open = list(self._open.values()), {}
        for index in indexes:
            index.close()
