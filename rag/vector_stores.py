"""The Vector Stores service: OpenAI vector-store semantics over our providers.

Routes call this; it reaches files, vector_io and embeddings through the
providers the stack built (never importing a provider). Records live in the
shared metadata store; ingestion runs in background workers and resumes
after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vistack.access import SYSTEM, Action, Principal, require
from vistack.api import BadRequestError, ModelType, NotFoundError, ServiceUnavailableError
from vistack.api.filters import parse_filter
from vistack.api.protocols import FilesProvider, ScoredChunk, StoredChunk, VectorIOProvider
from vistack.api.vector_stores import (
    AttachFileRequest,
    ChunkingStrategy,
    ChunkingStrategyAuto,
    ChunkingStrategyStatic,
    ContentItem,
    CreateFileBatchRequest,
    CreateVectorStoreRequest,
    FileBatchObject,
    FileContentResponse,
    IngestionProgress,
    InsertChunksRequest,
    IOChunk,
    LastError,
    ListResponse,
    QueryChunksRequest,
    QueryChunksResponse,
    RankingOptions,
    SearchRequest,
    SearchResponsePage,
    SearchResult,
    StaticChunkingConfig,
    UpdateVectorStoreRequest,
    VectorStoreDeleteResponse,
    VectorStoreFileDeleteResponse,
    VectorStoreFileObject,
    VectorStoreObject,
)
from vistack.config import VectorStoresDefaults
from vistack.context import set_principal
from vistack.inference import InferenceRouter
from vistack.pagination import Order, paginate
from vistack.rag.chunking import resolve_chunking
from vistack.rag.contextual import check_chunking_strategy
from vistack.rag.index import StoreIndexes
from vistack.rag.ingestion import IngestionCancelled, Ingestor, failure, restamp
from vistack.rag.passages import chunk_passage_bbox
from vistack.rag.records import BatchRecord, FileRecord, Records, StoreRecord, count_files
from vistack.rag.rerank import CrossEncoderReranker
from vistack.rag.search import HybridSearcher

log = logging.getLogger(__name__)

_SYSTEM_METADATA = ("provider_id", "provider_vector_store_id", "embedding_model", "embedding_dimension")


def _now() -> int:
    return int(time.time())


class VectorStoreService:
    def __init__(
        self,
        *,
        records: Records,
        files: FilesProvider,
        vector_io: dict[str, VectorIOProvider],
        inference: InferenceRouter,
        settings: VectorStoresDefaults,
        state_dir: Path,
    ) -> None:
        self.records = records
        self.files = files
        self.vector_io = vector_io
        self.inference = inference
        self.settings = settings
        self.indexes = StoreIndexes(vector_io, state_dir / "keyword")
        reranker = CrossEncoderReranker(settings.reranker_model) if settings.reranker_model else None
        self.searcher = HybridSearcher(self.indexes, self.embed_for_store, reranker)
        self._progress: dict[tuple[str, str], IngestionProgress] = {}  # live, for files being ingested
        self.ingestor = Ingestor(files, self.indexes, self.embed_for_store, settings, records, inference=inference,
                                 on_progress=self._note_progress)
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._workers: list[asyncio.Task] = []
        self._cancel_flags: dict[tuple[str, str], threading.Event] = {}
        self._record_locks: dict[str, asyncio.Lock] = {}
        # Lock order: a store's ownership lock (who owns deduplicated content), then file locks.
        self._ownership_locks: dict[str, asyncio.Lock] = {}
        self._settled = asyncio.Condition()  # notified whenever a file's ingestion ends (any outcome)

    # ----- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start workers and re-queue files a previous run left unfinished."""
        reranker = self.searcher.reranker
        if reranker is not None and (problem := reranker.problem()):  # said now, not at the first search
            log.error("%s: searches will fail with 503 until vector_stores.reranker_model is fixed", problem)
        for i in range(self.settings.ingestion_workers):
            self._workers.append(asyncio.create_task(self._worker(), name=f"ingest-worker-{i}"))
        for interrupted in await self.records.list_stores(None, deleting=True):
            log.info("finishing the deletion of vector store %s", interrupted.object.id)
            try:
                await self._finish_delete(interrupted)
            except Exception as e:  # noqa: BLE001 - a backend down now: it stays invisible, tried at next start
                log.warning("could not finish deleting vector store %s: %s", interrupted.object.id, e)
        for rec, _owner in await self.records.all_files():
            if rec.detaching:
                found = await self.records.get_store(rec.object.vector_store_id)
                try:
                    if found is None:
                        await self.records.delete_file(rec.object.vector_store_id, rec.object.id)
                    else:
                        log.info("finishing the detach of %s from %s", rec.object.id, rec.object.vector_store_id)
                        await self._finish_detach(found[0], rec)
                except Exception as e:  # noqa: BLE001 - a backend down now: still invisible, tried at next start
                    log.warning("could not finish detaching %s: %s", rec.object.id, e)
        for rec, _owner in await self.records.all_files():
            if rec.detaching or rec.object.status != "in_progress":
                continue
            if rec.duplicate_of is not None:  # a copy is never ingested itself: its original's outcome is its own
                await self._resume_copy(rec)
                continue
            log.info("resuming ingestion of %s into %s", rec.object.id, rec.object.vector_store_id)
            self._enqueue(rec.object.vector_store_id, rec.object.id)

    async def _resume_copy(self, copy: FileRecord) -> None:
        """An in-progress copy at start: its original, still ingesting, settles it when it ends; one that
        ended without settling it (a crash in between) settles it now; with no original left, it becomes one."""
        store_id = copy.object.vector_store_id
        original = await self.records.get_file(store_id, copy.duplicate_of or "")
        if original is not None and original.object.status == "in_progress":
            return
        if original is not None:
            await self._settle_copies(store_id, original.object.id, original)
            return
        copy.duplicate_of = None
        await self.records.put_file(copy, SYSTEM)
        self._enqueue(store_id, copy.object.id)

    async def stop(self) -> None:
        for flag in self._cancel_flags.values():
            flag.set()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self.indexes.close()

    async def embed_for_store(self, store: StoreRecord, texts: list[str]) -> list[list[float]]:
        """Embed with the store's model, asking for the store's dimension when it is not the model's own."""
        native = self.inference.embedding_dimension(store.embedding_model)
        dimensions = store.embedding_dimension if native and native != store.embedding_dimension else None
        return await self.inference.embed(store.embedding_model, texts, dimensions)

    # ----- stores -------------------------------------------------------------------------------

    async def create_store(self, req: CreateVectorStoreRequest, owner: Principal) -> VectorStoreObject:
        # a contextual strategy without a usable model: 400 before anything is stored
        check_chunking_strategy(req.chunking_strategy, self.inference, self.settings.contextual_retrieval_params)
        metadata = dict(req.metadata or {})
        model_id = req.embedding_model or metadata.get("embedding_model") or self.settings.default_embedding_model
        entry = self._embedding_model(model_id)
        dimension = req.embedding_dimension or _int_or_none(metadata.get("embedding_dimension"))
        dimension = dimension or self.inference.embedding_dimension(entry.model.identifier)
        if dimension is None:
            dimension = len((await self.inference.embed(entry.model.identifier, ["dimension probe"]))[0])
        provider_id = self._vector_provider_id(req.provider_id or metadata.get("provider_id"))
        store_id = f"vs_{uuid.uuid4()}"
        now = _now()
        metadata.update(
            provider_id=provider_id,
            provider_vector_store_id=store_id,
            embedding_model=entry.model.identifier,
            embedding_dimension=str(dimension),
        )
        obj = VectorStoreObject(
            id=store_id,
            created_at=now,
            name=req.name,
            expires_after=req.expires_after,
            last_active_at=now,
            metadata=metadata,
        )
        record = StoreRecord(
            object=obj,
            provider_id=provider_id,
            embedding_model=entry.model.identifier,
            embedding_dimension=dimension,
            chunking_strategy=req.chunking_strategy or ChunkingStrategyAuto(),
        )
        await self.indexes.create(record)
        await self.records.put_store(record, owner)
        file_ids = list(dict.fromkeys(req.file_ids or []))
        for file_id in file_ids:
            await self.attach_file(store_id, AttachFileRequest(file_id=file_id), owner, wait=False,
                                   unknown_fails=True)
        await self._wait_settled(store_id, file_ids)
        return await self.get_store(store_id, owner)

    def _embedding_model(self, model_id: str | None):
        if model_id is None:
            candidates = [e for e in self.inference.catalog.list() if e.model.model_type == ModelType.embedding]
            if not candidates:
                raise BadRequestError(
                    "no embedding model is configured: pass extra_body={'embedding_model': ...} or set "
                    "vector_stores.default_embedding_model in the distribution",
                    param="embedding_model",
                )
            return candidates[0]
        return self.inference.resolve(model_id, ModelType.embedding, param="embedding_model", purpose="a vector store")

    def _vector_provider_id(self, requested: str | None) -> str:
        if requested:
            if requested not in self.vector_io:
                raise BadRequestError(
                    f"unknown vector_io provider '{requested}'; configured: {', '.join(sorted(self.vector_io))}",
                    param="provider_id",
                )
            return requested
        if self.settings.default_provider_id:
            return self.settings.default_provider_id
        if len(self.vector_io) == 1:
            return next(iter(self.vector_io))
        raise BadRequestError(
            f"several vector_io providers are configured ({', '.join(sorted(self.vector_io))}); "
            "pass extra_body={'provider_id': ...}",
            param="provider_id",
        )

    async def _store(self, store_id: str, owner: Principal, action: Action = Action.read) -> StoreRecord:
        """The store when ``owner`` (the caller) may ``action`` it; otherwise the same 404 as an unknown id."""
        found = await self.records.get_store(store_id)
        missing = NotFoundError(f"vector store '{store_id}' not found", code="vector_store_not_found")
        if found is None or found[0].deleting:
            raise missing
        require(owner, action, found[1].resource("vector_store"), missing)
        return found[0]

    async def _public(self, record: StoreRecord) -> VectorStoreObject:
        files = await self.records.list_files(record.object.id)
        counts = count_files(files)
        return record.object.model_copy(
            update={
                "file_counts": counts,
                "status": "in_progress" if counts.in_progress else "completed",
                "usage_bytes": sum(f.object.usage_bytes for f in files),
            }
        )

    async def get_store(self, store_id: str, owner: Principal) -> VectorStoreObject:
        return await self._public(await self._store(store_id, owner))

    async def list_stores(
        self, owner: Principal, limit: int, order: Order, after: str | None, before: str | None
    ) -> ListResponse:
        records = await self.records.list_stores(owner)
        page, has_more = _page(records, limit, order, after, before)
        return _list_response([await self._public(r) for r in page], has_more)

    async def update_store(self, store_id: str, req: UpdateVectorStoreRequest, owner: Principal) -> VectorStoreObject:
        record = await self._store(store_id, owner, Action.update)
        obj = record.object
        if req.metadata is not None:
            changed = [
                k for k in _SYSTEM_METADATA if k in req.metadata and str(req.metadata[k]) != str(obj.metadata.get(k))
            ]
            if changed:
                raise BadRequestError(f"metadata keys {changed} are set by the server and cannot be changed")
            obj.metadata = {**req.metadata, **{k: obj.metadata[k] for k in _SYSTEM_METADATA if k in obj.metadata}}
        if req.name is not None:
            obj.name = req.name
        if req.expires_after is not None:
            obj.expires_after = req.expires_after
        obj.last_active_at = _now()
        await self.records.put_store(record, owner)
        return await self._public(record)

    async def delete_store(self, store_id: str, owner: Principal) -> VectorStoreDeleteResponse:
        record = await self._store(store_id, owner, Action.delete)
        record.deleting = True
        await self.records.put_store(record, owner)  # one write: gone for every caller from here on
        await self._finish_delete(record)
        return VectorStoreDeleteResponse(id=store_id)

    async def _finish_delete(self, record: StoreRecord) -> None:
        """Remove a deleting store's files, page images, index and batches, then its record; a crash part way
        leaves it ``deleting`` (invisible), and ``start`` finishes the job."""
        store_id = record.object.id
        for rec in await self.records.list_files(store_id, include_detaching=True):
            self._cancel(store_id, rec.object.id)
            await self.ingestor.delete_page_images(rec)
            await self.records.forget_page_images(store_id, rec.object.id)
            await self.records.delete_file(store_id, rec.object.id)
        await self.indexes.drop(record)
        await self.records.delete_batches_of(store_id)
        await self.records.delete_store(store_id)

    # ----- files --------------------------------------------------------------------------------

    async def attach_file(
        self, store_id: str, req: AttachFileRequest, owner: Principal, batch_id: str | None = None,
        *, wait: bool = True, unknown_fails: bool = False,
    ) -> VectorStoreFileObject:
        """Attach and, with ``wait``, give ingestion up to ``attach_wait_s`` to finish (small files come back
        ``completed`` or ``failed``; big ones ``in_progress``, as OpenAI documents).

        An unknown file id is a 404, or with ``unknown_fails`` (ids listed at store or batch creation, where
        the other files must still be attached) a ``failed`` file with ``last_error`` ``invalid_file``.
        """
        record = await self._store(store_id, owner, Action.update)
        check_chunking_strategy(
            req.chunking_strategy or record.chunking_strategy, self.inference, self.settings.contextual_retrieval_params
        )
        async with self._ownership_lock(store_id):  # the original found here must not be leaving meanwhile
            obj = await self._attach_file(record, req, owner, batch_id, unknown_fails)
        if not wait or obj.status != "in_progress":
            return self._live(obj)
        await self._wait_settled(store_id, [req.file_id])
        current = await self.records.get_file(store_id, req.file_id)
        return self._live(current.object if current is not None else obj)

    async def _wait_settled(self, store_id: str, file_ids: list[str]) -> None:
        """Wait until none of ``file_ids`` is ``in_progress`` in the store, at most ``attach_wait_s``."""
        if self.settings.attach_wait_s <= 0:
            return
        deadline = time.monotonic() + self.settings.attach_wait_s
        pending = set(file_ids)
        while pending:
            if len(pending) == 1:
                rec = await self.records.get_file(store_id, next(iter(pending)))
                in_progress = {rec.object.id} if rec is not None and rec.object.status == "in_progress" else set()
            else:  # one read of the store's files, not one per file (batches hold up to 2,000)
                in_progress = {f.object.id for f in await self.records.list_files(store_id)
                               if f.object.status == "in_progress"}
            pending &= in_progress
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                return
            async with self._settled:
                # re-checked at least every half second: an outcome this condition does not hear of
                # (a detach, a cancelled batch) still ends the wait promptly
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settled.wait(), min(remaining, 0.5))

    async def _attach_file(
        self, record: StoreRecord, req: AttachFileRequest, owner: Principal, batch_id: str | None,
        unknown_fails: bool = False,
    ) -> VectorStoreFileObject:
        store_id = record.object.id
        existing = await self.records.get_file(store_id, req.file_id)
        if existing is not None:
            return existing.object
        strategy = _as_stored(req.chunking_strategy or record.chunking_strategy)
        try:
            info = await self.files.get_file(req.file_id, owner)
        except NotFoundError as e:
            if not unknown_fails:
                raise
            failed = VectorStoreFileObject(
                id=req.file_id, vector_store_id=store_id, created_at=_now(), attributes=req.attributes or {},
                status="failed", chunking_strategy=strategy, last_error=LastError(code="invalid_file", message=e.message),
            )
            await self.records.put_file(FileRecord(object=failed, batch_id=batch_id), owner)
            return failed
        duplicate = next(
            (
                f
                for f in await self.records.list_files(store_id)
                if f.sha256 == info.sha256
                and f.object.status in ("completed", "in_progress")
                and f.duplicate_of is None
                and f.object.chunking_strategy == strategy  # other chunks, other content: not a copy
                and not self._cancelling(store_id, f.object.id)  # being cancelled: it will not complete
            ),
            None,
        )
        obj = VectorStoreFileObject(
            id=req.file_id,
            vector_store_id=store_id,
            created_at=_now(),
            attributes=req.attributes or {},
            status=duplicate.object.status if duplicate else "in_progress",  # a copy follows its original
            chunking_strategy=strategy,
            usage_bytes=0 if duplicate else info.file.bytes,
        )
        rec = FileRecord(
            object=obj,
            filename=info.file.filename,
            sha256=info.sha256,
            batch_id=batch_id,
            duplicate_of=duplicate.object.id if duplicate else None,
        )
        await self.records.put_file(rec, owner)
        if duplicate is None:
            self._enqueue(store_id, req.file_id)
        return obj

    async def _file(self, store_id: str, file_id: str, owner: Principal,
                    action: Action = Action.read) -> tuple[StoreRecord, FileRecord]:
        store = await self._store(store_id, owner, action)
        rec = await self.records.get_file(store_id, file_id)
        if rec is None:
            raise NotFoundError(f"file '{file_id}' is not attached to vector store '{store_id}'", code="file_not_found")
        return store, rec

    async def get_file(self, store_id: str, file_id: str, owner: Principal) -> VectorStoreFileObject:
        return self._live((await self._file(store_id, file_id, owner))[1].object)

    def _note_progress(self, store_id: str, file_id: str, done: int, total: int | None) -> None:
        self._progress[(store_id, file_id)] = IngestionProgress(pages_done=done, pages_total=total)

    def _live(self, obj: VectorStoreFileObject) -> VectorStoreFileObject:
        """The file object with its ingestion progress while it is in progress."""
        if obj.status != "in_progress":
            return obj
        progress = self._progress.get((obj.vector_store_id, obj.id), IngestionProgress(pages_done=0))
        return obj.model_copy(update={"progress": progress})

    async def list_files(
        self,
        store_id: str,
        owner: Principal,
        limit: int,
        order: Order,
        after: str | None,
        before: str | None,
        status: str | None,
        batch_id: str | None = None,
    ) -> ListResponse:
        await self._store(store_id, owner)
        files = [
            f
            for f in await self.records.list_files(store_id)
            if (status is None or f.object.status == status) and (batch_id is None or f.batch_id == batch_id)
        ]
        page, has_more = _page(files, limit, order, after, before)
        return _list_response([self._live(f.object) for f in page], has_more)

    async def file_content(
        self, store_id: str, file_id: str, owner: Principal, include_embeddings: bool, include_metadata: bool
    ) -> FileContentResponse:
        store, rec = await self._file(store_id, file_id, owner)
        source = rec.duplicate_of or file_id
        chunks = await self.indexes.of(store).get({"file_id": source}, include_embeddings)
        return FileContentResponse(
            data=[
                ContentItem(
                    text=c.text,
                    embedding=c.embedding if include_embeddings else None,
                    metadata=dict(c.metadata) if include_metadata else None,
                    chunk_metadata={"chunk_id": c.id, "document_id": source} if include_metadata else None,
                )
                for c in chunks
            ]
        )

    async def update_file_attributes(
        self, store_id: str, file_id: str, attributes: dict, owner: Principal
    ) -> VectorStoreFileObject:
        store, _ = await self._file(store_id, file_id, owner, Action.update)
        async with self._lock_for(store_id, file_id):
            rec = (await self._file(store_id, file_id, owner, Action.update))[1]  # re-read: a hand-over may have changed it
            old_attributes = rec.object.attributes
            rec.object.attributes = dict(attributes)
            await self.records.put_file(rec, owner)
            if rec.object.status == "completed" and rec.duplicate_of is None:
                await self.indexes.of(store).update_metadata({"file_id": file_id}, restamp(old_attributes, attributes))
        return rec.object

    async def delete_file(self, store_id: str, file_id: str, owner: Principal) -> VectorStoreFileDeleteResponse:
        store, _ = await self._file(store_id, file_id, owner, Action.update)
        self._cancel(store_id, file_id)
        async with self._ownership_lock(store_id), self._lock_for(store_id, file_id):
            rec = await self.records.get_file(store_id, file_id)  # re-read under the locks
            if rec is None:  # deleted meanwhile by a concurrent request
                return VectorStoreFileDeleteResponse(id=file_id)
            rec.detaching = True
            await self.records.put_file(rec, owner)  # one write: gone for every caller from here on
            await self._finish_detach(store, rec)
        return VectorStoreFileDeleteResponse(id=file_id)

    async def _finish_detach(self, store: StoreRecord, rec: FileRecord) -> None:
        """Hand the content to a duplicate or remove it, then drop the record; a crash part way leaves the file
        ``detaching`` (invisible) and ``start`` finishes the job."""
        store_id, file_id = store.object.id, rec.object.id
        if rec.duplicate_of is None:
            heirs = [f for f in await self.records.list_files(store_id) if f.duplicate_of == file_id]
            if heirs:
                await self._hand_over(store, rec, [h.object.id for h in heirs], SYSTEM)
            else:
                await self.ingestor.cleanup(store, rec)
        await self.records.delete_file(store_id, file_id)

    async def _hand_over(self, store: StoreRecord, original: FileRecord, heir_ids: list[str], owner: Principal) -> None:
        """Make the oldest duplicate of a leaving original the owner of the shared content.

        A completed original's chunks are re-keyed in place to the heir
        (``file_id``, ``filename``, the heir's attributes instead of the
        original's) and its page images, page and chunk counts pass to the
        heir, so nothing is re-extracted or re-embedded and search, file
        content and usage stay right. An original still ingesting (or one
        that never completed) has no complete chunks to hand over: its
        partial chunks are removed and the heir is ingested afresh. The other
        duplicates then point at the heir. Re-keying first and touching the
        records last means a failure half-way leaves the original in charge,
        and deleting it again finishes the job.
        """
        store_id, heir_id = store.object.id, heir_ids[0]
        async with self._lock_for(store_id, heir_id):
            heir = await self.records.get_file(store_id, heir_id)
            if heir is None:
                raise RuntimeError(f"duplicate '{heir_id}' vanished while its original was being deleted")
            reingest = original.object.status != "completed"
            if reingest:
                await self.ingestor.cleanup(store, original)
                heir.object.status = "in_progress"
                heir.object.last_error = None
            else:
                await self.indexes.of(store).update_metadata(
                    {"file_id": original.object.id},
                    restamp(
                        original.object.attributes, heir.object.attributes, file_id=heir_id, filename=heir.filename
                    ),
                )
                heir.page_image_file_ids = original.page_image_file_ids
                heir.page_count = original.page_count
                heir.chunk_count = original.chunk_count
            heir.duplicate_of = None
            heir.object.usage_bytes = original.object.usage_bytes
            await self.records.put_file(heir, owner)
        if reingest:
            self._enqueue(store_id, heir_id)
        for other_id in heir_ids[1:]:
            async with self._lock_for(store_id, other_id):
                other = await self.records.get_file(store_id, other_id)
                if other is not None:
                    other.duplicate_of = heir_id
                    await self.records.put_file(other, owner)

    # ----- batches ------------------------------------------------------------------------------

    async def create_batch(self, store_id: str, req: CreateFileBatchRequest, owner: Principal) -> FileBatchObject:
        store = await self._store(store_id, owner, Action.update)
        # checked before the batch is saved (the store's own strategy too): no batch left half attached
        check_chunking_strategy(
            req.chunking_strategy or store.chunking_strategy, self.inference, self.settings.contextual_retrieval_params
        )
        batch = BatchRecord(
            id=f"vsfb_{uuid.uuid4().hex}",
            vector_store_id=store_id,
            created_at=_now(),
            file_ids=list(dict.fromkeys(req.file_ids)),
        )
        await self.records.put_batch(batch, owner)
        for file_id in batch.file_ids:
            await self.attach_file(
                store_id,
                AttachFileRequest(file_id=file_id, attributes=req.attributes, chunking_strategy=req.chunking_strategy),
                owner,
                batch.id,
                wait=False,
                unknown_fails=True,
            )
        await self._wait_settled(store_id, batch.file_ids)
        return await self.get_batch(store_id, batch.id, owner)

    async def _batch(self, store_id: str, batch_id: str, owner: Principal,
                     action: Action = Action.read) -> BatchRecord:
        await self._store(store_id, owner, action)
        batch = await self.records.get_batch(batch_id)
        if batch is None or batch.vector_store_id != store_id:
            raise NotFoundError(
                f"file batch '{batch_id}' not found in vector store '{store_id}'", code="batch_not_found"
            )
        return batch

    async def get_batch(self, store_id: str, batch_id: str, owner: Principal) -> FileBatchObject:
        batch = await self._batch(store_id, batch_id, owner)
        files = [f for f in await self.records.list_files(store_id) if f.object.id in set(batch.file_ids)]
        counts = count_files(files)
        if counts.in_progress:
            status = "in_progress"
        elif batch.cancelled:
            status = "cancelled"
        elif counts.total and counts.failed == counts.total:
            status = "failed"
        else:
            status = "completed"
        return FileBatchObject(
            id=batch.id, created_at=batch.created_at, vector_store_id=store_id, status=status, file_counts=counts
        )

    async def cancel_batch(self, store_id: str, batch_id: str, owner: Principal) -> FileBatchObject:
        batch = await self._batch(store_id, batch_id, owner, Action.update)
        batch.cancelled = True
        await self.records.put_batch(batch, owner)
        store = await self._store(store_id, owner)
        running = []
        for file_id in batch.file_ids:
            rec = await self.records.get_file(store_id, file_id)
            if rec is not None and rec.object.status == "in_progress":
                self._cancel(store_id, file_id)  # flag them all first, so none runs on while another stops
                running.append(file_id)
        for file_id in running:
            async with self._lock_for(store_id, file_id):  # held by the worker until it has stopped
                rec = await self.records.get_file(store_id, file_id)  # re-read: it may have completed meanwhile
                if rec is None or rec.object.status != "in_progress":
                    continue
                await self.ingestor.cleanup(store, rec)
                rec.object.status = "cancelled"
                await self.records.put_file(rec, owner)
        async with self._ownership_lock(store_id):  # copies attached meanwhile are listed too
            for file_id in running:
                rec = await self.records.get_file(store_id, file_id)
                if rec is not None and rec.object.status == "cancelled" and rec.duplicate_of is None:
                    await self._settle_copies(store_id, file_id, rec)
        return await self.get_batch(store_id, batch_id, owner)

    # ----- search -------------------------------------------------------------------------------

    async def search(self, store_id: str, req: SearchRequest, owner: Principal) -> SearchResponsePage:
        store = await self._store(store_id, owner)
        if req.rewrite_query:
            raise BadRequestError(
                "rewrite_query is not supported by this server; send the query as you want it searched",
                param="rewrite_query",
            )
        queries = [req.query] if isinstance(req.query, str) else list(req.query)
        text = " ".join(q for q in queries if q.strip())
        if not text:
            raise BadRequestError("query must not be empty", param="query")
        try:
            flt = parse_filter(req.filters)
        except ValidationError as e:
            raise BadRequestError(
                f"invalid filters: {e.errors()[0]['msg']} at {e.errors()[0]['loc']}", param="filters"
            ) from None
        mode = req.search_mode or self.settings.default_search_mode
        hits = await self.searcher.search(store, text, req.max_num_results, mode, flt, req.ranking_options)
        return SearchResponsePage(search_query=queries, data=[_result(h, text) for h in hits])

    # ----- /v1/vector-io ------------------------------------------------------------------------

    async def insert_chunks(self, req: InsertChunksRequest, owner: Principal) -> None:
        store = await self._store(req.vector_store_id, owner, Action.update)
        chunks: list[StoredChunk] = []
        missing: list[int] = []
        for i, c in enumerate(req.chunks):
            if c.embedding is not None and len(c.embedding) != store.embedding_dimension:
                raise BadRequestError(
                    f"chunks[{i}].embedding has dimension {len(c.embedding)}, but vector store "
                    f"'{store.object.id}' was created with dimension {store.embedding_dimension}",
                    param="chunks",
                )
            chunk_id = c.chunk_id or (c.chunk_metadata or {}).get("chunk_id") or f"chunk-{uuid.uuid4().hex}"
            meta = {k: _scalar(v) for k, v in c.metadata.items()}
            meta.setdefault("document_id", (c.chunk_metadata or {}).get("document_id") or "")
            chunks.append(StoredChunk(id=chunk_id, text=_content_text(c.content), metadata=meta, embedding=c.embedding))
            if c.embedding is None:
                missing.append(i)
        if missing:
            vectors = await self.embed_for_store(store, [chunks[i].text for i in missing])
            for i, v in zip(missing, vectors, strict=True):
                chunks[i].embedding = v
        await self.indexes.of(store).add(chunks)

    async def query_chunks(self, req: QueryChunksRequest, owner: Principal) -> QueryChunksResponse:
        store = await self._store(req.vector_store_id, owner)
        params = req.params or {}
        mode = params.get("mode") or self.settings.default_search_mode
        if mode not in ("vector", "keyword", "hybrid"):
            raise BadRequestError(f"params.mode must be vector, keyword or hybrid, got {mode!r}", param="params.mode")
        try:
            k = int(params.get("max_chunks", 3))
            flt = parse_filter(params.get("filters"))
            ranking = {"score_threshold": params.get("score_threshold") or None}
            if params.get("reranker_type") in ("rrf", "weighted"):
                ranking["ranker"] = params["reranker_type"]
            ranking.update(
                {k2: v for k2, v in (params.get("reranker_params") or {}).items() if k2 in ("alpha", "impact_factor")}
            )
            options = RankingOptions.model_validate(ranking)
        except (ValidationError, ValueError, TypeError) as e:
            raise BadRequestError(f"invalid params: {e}", param="params") from None
        hits = await self.searcher.search(store, _content_text(req.query), k, mode, flt, options)
        return QueryChunksResponse(
            chunks=[IOChunk(content=h.chunk.text, chunk_id=h.chunk.id, metadata=dict(h.chunk.metadata)) for h in hits],
            scores=[h.score for h in hits],
        )

    # ----- ingestion workers --------------------------------------------------------------------

    def _enqueue(self, store_id: str, file_id: str) -> None:
        self._cancel_flags[(store_id, file_id)] = threading.Event()
        self._queue.put_nowait((store_id, file_id))

    def _cancel(self, store_id: str, file_id: str) -> None:
        flag = self._cancel_flags.get((store_id, file_id))
        if flag is not None:
            flag.set()

    def _lock_for(self, store_id: str, file_id: str) -> asyncio.Lock:
        return self._record_locks.setdefault(f"{store_id}/{file_id}", asyncio.Lock())

    def _cancelling(self, store_id: str, file_id: str) -> bool:
        flag = self._cancel_flags.get((store_id, file_id))
        return flag is not None and flag.is_set()

    def _ownership_lock(self, store_id: str) -> asyncio.Lock:
        """Held while deciding or changing which file owns a store's deduplicated content."""
        return self._ownership_locks.setdefault(store_id, asyncio.Lock())

    async def _worker(self) -> None:
        while True:
            store_id, file_id = await self._queue.get()
            try:
                await self._process(store_id, file_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # a worker must survive any single file
                log.exception("ingestion of %s into %s crashed", file_id, store_id)
            finally:
                self._progress.pop((store_id, file_id), None)
                self._queue.task_done()
            async with self._settled:
                self._settled.notify_all()

    async def _process(self, store_id: str, file_id: str) -> None:
        cancelled = self._cancel_flags.setdefault((store_id, file_id), threading.Event())
        if cancelled.is_set():
            return
        found = await self.records.get_store(store_id)
        rec = await self.records.get_file(store_id, file_id)
        if (found is None or found[0].deleting or rec is None or rec.object.status != "in_progress"
                or rec.duplicate_of is not None):  # a copy takes its original's outcome, never its own run
            return
        store, owner = found[0], found[1].owner_principal  # the work is done as (and stored for) the store's owner
        set_principal(owner)  # this worker task's context: lookups during ingestion act as the store's owner
        lock = self._lock_for(store_id, file_id)
        async with lock:
            try:
                await self.ingestor.cleanup(store, rec)
                rec.page_image_file_ids = []
                result = await self.ingestor.ingest(store, rec, owner, cancelled)
            except IngestionCancelled:
                return
            except ServiceUnavailableError as e:
                rec.attempts += 1
                if rec.attempts <= self.settings.max_retries and not cancelled.is_set():
                    await self.records.put_file(rec, owner)
                    delay = min(2**rec.attempts, 30)
                    log.warning(
                        "ingestion of %s: backend unavailable (%s); retry %d in %ss", file_id, e, rec.attempts, delay
                    )
                    asyncio.get_running_loop().call_later(delay, self._queue.put_nowait, (store_id, file_id))
                    return
                await self._fail(store_id, file_id, owner, e)
                return
            except Exception as e:  # noqa: BLE001 - any other failure fails this file, not the worker
                await self._fail(store_id, file_id, owner, e)
                return
            current = await self.records.get_file(store_id, file_id)
            if current is None or cancelled.is_set() or current.object.status != "in_progress":
                await self.ingestor.cleanup(
                    store, rec.model_copy(update={"page_image_file_ids": result.page_image_file_ids})
                )
                return
            current.object.status = "completed"
            current.object.last_error = None
            current.page_image_file_ids = result.page_image_file_ids
            current.page_count = result.page_count
            current.chunk_count = result.chunk_count
            await self.records.put_file(current, owner)
            await self.records.forget_page_images(store_id, file_id)  # the file record holds them now
            await self._settle_copies(store_id, file_id, current)
            self._cancel_flags.pop((store_id, file_id), None)

    async def _fail(self, store_id: str, file_id: str, owner: Principal, e: BaseException) -> None:
        if not isinstance(e, ServiceUnavailableError):
            log.info("ingestion of %s failed: %s", file_id, e)
        current = await self.records.get_file(store_id, file_id)
        if current is None:
            return
        current.object.status = "failed"
        current.object.last_error = failure(e)
        await self.records.put_file(current, owner)
        await self._settle_copies(store_id, file_id, current)
        self._cancel_flags.pop((store_id, file_id), None)

    async def _settle_copies(self, store_id: str, file_id: str, original: FileRecord) -> None:
        """Copies attached while their original was ingesting end as it did (completed, or failed with its
        error): a copy of a broken file must not look searchable. A cancelled original hands its content
        to its oldest in-progress copy, which is then ingested as an original (the copies were not cancelled)."""
        if original.object.status == "cancelled":
            heirs = [f.object.id for f in await self.records.list_files(store_id)
                     if f.duplicate_of == file_id and f.object.status == "in_progress"]
            found = await self.records.get_store(store_id)
            if heirs and found is not None:
                await self._hand_over(found[0], original, heirs, SYSTEM)
            return
        for copy in await self.records.list_files(store_id):
            if copy.duplicate_of == file_id and copy.object.status == "in_progress":
                copy.object.status = original.object.status
                copy.object.last_error = original.object.last_error
                await self.records.put_file(copy, SYSTEM)  # an update keeps the copy's own owner and tenant

    async def wait_idle(self, timeout_s: float = 300.0) -> None:
        """Wait until the queue is drained (tests, the in-process CLI)."""
        await asyncio.wait_for(self._queue.join(), timeout_s)


def _as_stored(strategy: ChunkingStrategy) -> ChunkingStrategy:
    """``auto`` is recorded as the ``static`` sizes it stands for (as OpenAI's file objects show it), so a
    client sees how its file was chunked."""
    if strategy.type != "auto":
        return strategy
    max_tokens, overlap = resolve_chunking(strategy)
    return ChunkingStrategyStatic(
        static=StaticChunkingConfig(max_chunk_size_tokens=max_tokens, chunk_overlap_tokens=overlap)
    )


def _page(records: list, limit: int, order: Order, after: str | None, before: str | None) -> tuple[list, bool]:
    """Records come from storage oldest first (to the sub-second), which is the list order."""
    return paginate(records, ident=lambda r: r.object.id, limit=limit, order=order, after=after, before=before)


def _list_response(data: list, has_more: bool) -> ListResponse:
    return ListResponse(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None,
                        has_more=has_more)


def _result(hit: ScoredChunk, query: str) -> SearchResult:
    meta = hit.chunk.metadata
    return SearchResult(
        file_id=str(meta.get("file_id") or meta.get("document_id") or ""),
        filename=str(meta.get("filename") or ""),
        score=hit.score,
        attributes={k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))},
        content=[ContentItem(text=hit.chunk.text)],
        passage_bbox=chunk_passage_bbox(hit.chunk.text, meta, query),
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _scalar(value: Any) -> str | int | float | bool:
    if isinstance(value, (str, int, float, bool)):
        return value
    import json

    return json.dumps(value, default=str)


def _content_text(content: Any) -> str:
    """Llama Stack interleaved content as text (images are not searchable text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", "")) if content.get("type", "text") == "text" else ""
    if isinstance(content, list):
        return " ".join(t for t in (_content_text(c) for c in content) if t)
    return str(content)
