"""The Chroma provider: vistack's vector_io protocol over one Chroma collection per store.

What it guarantees, whichever client (embedded or server) its config picks:

- Chroma's default embedding function (which downloads a model) is never
  used: collections are created with ``embedding_function=None`` and every
  add and query passes its vectors explicitly.
- Collections use cosine space; a score is ``1 - cosine distance``.
- The store's dimension is recorded on its collection and checked on every
  add and query (a mismatch is a 400, not a silent corruption).
- Filters are pushed down as a superset and post-checked with ``matches``
  (see :mod:`.filters`), over-fetching where the push-down was not exact.
- Nothing is deleted except by ``delete_collection`` / ``delete_chunks``.
- ``initialize`` never fails because Chroma is down; calls then answer 503.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from vistack.api import BadRequestError, ConfigError, HealthResponse, HealthStatus, NotFoundError, VistackError
from vistack.api.filters import matches
from vistack.api.protocols import ChunkMetadataValue, ScoredChunk, StoredChunk, VectorIOProvider

from .collection import DIMENSION_KEY, STORE_ID_KEY, collection_name, dimension_of, space_of
from .config import ChromaInlineConfig, ChromaRemoteConfig
from .connection import ChromaConnection
from .filters import NOTHING, coerce_filter, translate_filter, where_from_equalities
from .rows import check_embedding, clean_metadata, order_key, replacing_metadata, rows_to_chunks

if TYPE_CHECKING:  # pragma: no cover
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = ["ChromaVectorIOProvider"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_OVERFETCH = 4  # candidates per wanted hit when the pushed-down filter is only a superset


class ChromaVectorIOProvider(VectorIOProvider):
    """Vector stores as Chroma collections, embedded or on a Chroma server."""

    config: ChromaInlineConfig | ChromaRemoteConfig

    def __init__(self, config: BaseModel, deps: dict | None = None) -> None:
        if not isinstance(config, (ChromaInlineConfig, ChromaRemoteConfig)):
            raise ConfigError(
                f"ChromaVectorIOProvider needs ChromaInlineConfig or ChromaRemoteConfig, got {type(config).__name__}"
            )
        super().__init__(config, deps)
        self._connection = ChromaConnection(config, lambda: self.db_path, on_close=self._forget_all)
        self._collections: dict[str, tuple[Collection, int | None]] = {}
        self._cache_lock = threading.Lock()
        self._max_batch: int | None = None
        self._db_path: Path | None = None

    # ----- identity ------------------------------------------------------------------------------

    @property
    def is_inline(self) -> bool:
        return self._connection.is_inline

    @property
    def db_path(self) -> Path:
        """Where the embedded database lives (inline only)."""
        if self._db_path is None:
            assert isinstance(self.config, ChromaInlineConfig)
            if self.config.db_path:
                self._db_path = Path(self.config.db_path).expanduser()
            elif self.context is not None:
                self._db_path = Path(self.context.state_dir) / "chroma"
            else:
                raise ConfigError(
                    "inline::chromadb: config.db_path is not set and the provider has no state_dir; "
                    "set db_path in the distribution file"
                )
        return self._db_path

    @property
    def location(self) -> str:
        """Human-readable: the server URL or the database path."""
        return self._connection.location

    # ----- lifecycle -----------------------------------------------------------------------------

    async def initialize(self) -> None:
        if self.is_inline:
            _ = self.db_path  # resolve now: a missing path is a configuration error
        try:
            await asyncio.to_thread(self._connection.client)
        except VistackError as e:
            log.warning("vector_io chromadb (%s): %s", self.location, e.message)

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._connection.close)

    async def health(self) -> HealthResponse:
        try:
            await asyncio.to_thread(self._connection.heartbeat)
        except VistackError as e:
            return HealthResponse(status=HealthStatus.ERROR, message=e.message)
        except Exception as e:  # noqa: BLE001 - health reports, never raises
            return HealthResponse(status=HealthStatus.ERROR, message=f"Chroma at {self.location}: {e}")
        return HealthResponse(status=HealthStatus.OK)

    # ----- collection handles, cached per client ------------------------------------------------

    def _forget_all(self) -> None:
        """The client went: so do the collection handles and the batch size it gave."""
        with self._cache_lock:
            self._collections.clear()
        self._max_batch = None

    def _collection(self, client: ClientAPI, store_id: str) -> tuple[Collection, int | None]:
        name = collection_name(store_id)
        with self._cache_lock:
            hit = self._collections.get(name)
        if hit is not None:
            return hit
        import chromadb.errors as ce

        try:
            col = client.get_collection(name, embedding_function=None)
        except ce.NotFoundError:
            raise self._connection.not_found(store_id) from None
        except ValueError as e:  # older chromadb says "does not exist" with a ValueError
            if "does not exist" in str(e):
                raise self._connection.not_found(store_id) from None
            raise
        entry = (col, dimension_of(col))
        with self._cache_lock:
            self._collections[name] = entry
        return entry

    def _forget(self, store_id: str) -> None:
        with self._cache_lock:
            self._collections.pop(collection_name(store_id), None)

    def _on_collection(self, op: str, store_id: str, fn: Callable[[Collection, int | None], T]) -> T:
        """``fn(collection, dimension)``; a stale cached collection (deleted elsewhere) is looked up again."""
        import chromadb.errors as ce

        def call(client: ClientAPI) -> T:
            for attempt in (0, 1):
                col, dim = self._collection(client, store_id)
                try:
                    return fn(col, dim)
                except ce.NotFoundError:
                    self._forget(store_id)
                    if attempt:
                        raise self._connection.not_found(store_id) from None
            raise AssertionError("unreachable")

        return self._connection.call(op, store_id, call)

    def _batch(self, client: ClientAPI) -> int:
        if self._max_batch is None:
            try:
                self._max_batch = max(1, int(client.get_max_batch_size()))
            except Exception:  # noqa: BLE001 - an old server without the endpoint
                self._max_batch = 1000
        return max(1, min(self.config.batch_size, self._max_batch))

    # ----- collections ---------------------------------------------------------------------------

    async def create_collection(self, store_id: str, dimension: int) -> None:
        if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension <= 0:
            raise BadRequestError(f"vector store '{store_id}': dimension must be a positive integer, got {dimension!r}")
        name = collection_name(store_id)

        def create(client: ClientAPI) -> None:
            col = client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": self.config.hnsw_space}},
                metadata={DIMENSION_KEY: dimension, STORE_ID_KEY: store_id},
            )
            existing = dimension_of(col)
            if existing is not None and existing != dimension:
                raise BadRequestError(
                    f"vector store '{store_id}' already exists with dimension {existing}, not {dimension}",
                    code="dimension_mismatch",
                )
            space = space_of(col)
            if space not in (None, "cosine"):
                raise BadRequestError(
                    f"Chroma collection '{name}' already exists with distance '{space}'; vistack needs cosine. "
                    "Use another vector store id (nothing was changed)."
                )
            with self._cache_lock:
                self._collections[name] = (col, existing if existing is not None else dimension)

        await asyncio.to_thread(self._connection.call, "create_collection", store_id, create)

    async def delete_collection(self, store_id: str) -> None:
        import chromadb.errors as ce

        name = collection_name(store_id)

        def delete(client: ClientAPI) -> None:
            self._forget(store_id)
            try:
                client.delete_collection(name)
            except ce.NotFoundError:
                pass
            except ValueError as e:  # older chromadb
                if "does not exist" not in str(e):
                    raise

        await asyncio.to_thread(self._connection.call, "delete_collection", store_id, delete)

    # ----- chunks --------------------------------------------------------------------------------

    async def add_chunks(self, store_id: str, chunks: list[StoredChunk]) -> None:
        if not chunks:
            return
        # upsert semantics inside one call too: the last chunk with an id wins
        latest: dict[str, StoredChunk] = {}
        for chunk in chunks:
            latest.pop(chunk.id, None)
            latest[chunk.id] = chunk
        items = list(latest.values())
        for chunk in items:
            if not chunk.id:
                raise BadRequestError(f"vector store '{store_id}': every chunk needs a non-empty id")
        metadatas = [clean_metadata(c.id, dict(c.metadata)) for c in items]

        def add(col: Collection, dim: int | None) -> None:
            vectors = [check_embedding(store_id, f"chunk '{c.id}'", c.embedding, dim) for c in items]
            size = self._batch(self._connection.client())
            for start in range(0, len(items), size):
                part = slice(start, start + size)
                ids = [c.id for c in items[part]]
                col.upsert(
                    ids=ids,
                    embeddings=vectors[part],
                    documents=[c.text for c in items[part]],
                    metadatas=replacing_metadata(col, ids, metadatas[part]),
                )

        await self._on_collection_async("add_chunks", store_id, add)

    async def delete_chunks(self, store_id: str, where: dict[str, ChunkMetadataValue]) -> None:
        if not where:
            raise BadRequestError(
                f"delete_chunks on vector store '{store_id}' needs a non-empty `where`; "
                "use delete_collection to drop the whole store"
            )
        flt = where_from_equalities(where)
        chroma_where, _ = translate_filter(flt)
        if chroma_where is NOTHING:
            return

        def delete(col: Collection, dim: int | None) -> None:
            size = self._batch(self._connection.client())
            ids: list[str] = []
            offset = 0
            while True:  # collect first, then delete: paging must not shift under our feet
                page = col.get(where=chroma_where, include=["metadatas"], limit=size, offset=offset)
                got = page["ids"]
                for cid, md in zip(got, page["metadatas"] or [None] * len(got), strict=False):
                    if matches(flt, md or {}):
                        ids.append(cid)
                if len(got) < size:
                    break
                offset += size
            for start in range(0, len(ids), size):
                col.delete(ids=ids[start : start + size])

        try:
            await self._on_collection_async("delete_chunks", store_id, delete)
        except NotFoundError:
            return  # nothing to delete in a store that does not exist

    async def get_chunks(
        self, store_id: str, where: dict[str, ChunkMetadataValue], include_embeddings: bool = False
    ) -> list[StoredChunk]:
        flt = where_from_equalities(where)
        chroma_where, _ = translate_filter(flt)
        include = ["documents", "metadatas"] + (["embeddings"] if include_embeddings else [])

        def get(col: Collection, dim: int | None) -> list[StoredChunk]:
            if chroma_where is NOTHING:
                return []
            size = self._batch(self._connection.client())
            out: list[StoredChunk] = []
            offset = 0
            while True:
                page = col.get(where=chroma_where, include=include, limit=size, offset=offset)
                out.extend(c for c in rows_to_chunks(page, include_embeddings) if matches(flt, c.metadata))
                if len(page["ids"]) < size:
                    break
                offset += size
            return out

        chunks = await self._on_collection_async("get_chunks", store_id, get)
        chunks.sort(key=order_key)
        return chunks

    async def query(
        self, store_id: str, embedding: list[float], k: int, filters: Any | None = None
    ) -> list[ScoredChunk]:
        flt = coerce_filter(filters)
        chroma_where, exact = translate_filter(flt)

        def run(col: Collection, dim: int | None) -> list[ScoredChunk]:
            vec = check_embedding(store_id, "the query", embedding, dim)
            if k <= 0 or chroma_where is NOTHING:
                return []
            total: int | None = None
            n = k if exact else k * _OVERFETCH
            while True:
                res = col.query(
                    query_embeddings=[vec],
                    n_results=n,
                    where=chroma_where,
                    include=["documents", "metadatas", "distances"],
                )
                ids = (res.get("ids") or [[]])[0]
                docs = (res.get("documents") or [[None] * len(ids)])[0]
                mds = (res.get("metadatas") or [[None] * len(ids)])[0]
                dists = (res.get("distances") or [[None] * len(ids)])[0]
                hits = []
                for cid, doc, md, dist in zip(ids, docs, mds, dists, strict=False):
                    md = dict(md or {})
                    if not matches(flt, md):
                        continue
                    score = 1.0 - float(dist) if dist is not None else 0.0
                    hits.append(ScoredChunk(chunk=StoredChunk(id=cid, text=doc or "", metadata=md), score=score))
                if len(hits) >= k or len(ids) < n:
                    return hits[:k]
                if total is None:
                    total = col.count()
                if n >= total:
                    return hits[:k]
                n = min(n * _OVERFETCH, total)

        return await self._on_collection_async("query", store_id, run)

    async def count(self, store_id: str) -> int:
        return await self._on_collection_async("count", store_id, lambda col, dim: int(col.count()))

    async def _on_collection_async(self, op: str, store_id: str, fn: Callable[[Collection, int | None], T]) -> T:
        return await asyncio.to_thread(self._on_collection, op, store_id, fn)

