"""Background ingestion: file -> pages -> chunks -> embeddings -> the store's index.

Three stages overlap, so both cores stay busy end to end:

1. a producer thread extracts and renders pages with PyMuPDF, one page at a
   time from the file on disk (a PDF is never read into memory as a whole;
   at most ``_PAGES_AHEAD`` pages wait for the consumer);
2. the event loop stores each page image through the Files provider and cuts
   the page into chunks;
3. every ``embedding_batch_size`` chunks, a batch is embedded (in the
   embedding provider's own worker thread) while the previous batch is
   written to the store's index (Chroma and BM25), at most
   ``_BATCHES_IN_FLIGHT`` batches at once, in order.

With a ``contextual`` chunking strategy, stage 3 starts after the last page:
every chunk's context is written by an LLM that reads the whole document
(:mod:`vistack.rag.contextual`), so the chunks and the pages' text are kept
until then (text only; page images are stored as they come).

Work is resumable: a file record stays ``in_progress`` until it is done, and
the stack re-queues such files after a restart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Protocol

from vistack.access import Principal
from vistack.api import ServiceUnavailableError
from vistack.api.files import FilePurpose, new_file_id
from vistack.api.protocols import ChunkMetadataValue, FilesProvider, StoredChunk
from vistack.api.vector_stores import LastError
from vistack.config import VectorStoresDefaults
from vistack.metrics import current as current_metrics
from vistack.rag.chunking import chunk_page, resolve_chunking
from vistack.rag.contextual import (
    CONTEXT_KEY,
    ContextualizationError,
    Contextualizer,
    PageText,
    contextual_config,
    page_text,
)
from vistack.rag.index import ChunkMetadata, Embedder, MetadataChange, StoreIndexes
from vistack.rag.passages import bbox_text, encode_passages
from vistack.rag.readers import MUPDF_LOCK, DocumentError, ExtractedPage, ExtractOptions, extract_pages
from vistack.rag.records import FileRecord, Records, StoreRecord

if TYPE_CHECKING:
    from vistack.inference import InferenceRouter

log = logging.getLogger(__name__)

_END = object()

# Metadata keys the server writes on every chunk; a file's attributes never override them.
CHUNK_SYSTEM_KEYS = frozenset(
    {"file_id", "filename", "page", "page_image_file_id", "text_layer", "chunk_type", "chunk_index", "bbox",
     "page_size", "passage_boxes", "document_id", CONTEXT_KEY}
)
_PAGES_AHEAD = 4
"""Extracted pages (with their PNGs) waiting for the event loop: bounds memory, whatever the file's size."""
_BATCHES_IN_FLIGHT = 2
"""Chunk batches being embedded or written at once: one embedding while the previous one is written."""


def restamp(
    old_attributes: Iterable[str], attributes: Mapping[str, Any], **system: ChunkMetadataValue
) -> MetadataChange:
    """A chunk metadata change for a file whose attributes (or owner) changed.

    The keys of ``old_attributes`` go (a removed attribute must stop
    matching filters), ``attributes`` come in, and ``system`` keys (e.g. a
    new ``file_id`` and ``filename``) are set; other system keys are kept,
    as attributes never override them.
    """
    old = set(old_attributes)

    def change(metadata: ChunkMetadata) -> ChunkMetadata:
        kept = {k: v for k, v in metadata.items() if k not in old or k in CHUNK_SYSTEM_KEYS}
        kept.update({k: v for k, v in attributes.items() if k not in CHUNK_SYSTEM_KEYS})
        return {**kept, **system}

    return change


@dataclass
class IngestResult:
    page_count: int
    chunk_count: int
    page_image_file_ids: list[str]


class IngestionCancelled(Exception):
    pass


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Ingestor:
    """Turns one attached file into stored chunks; raises DocumentError for bad input."""

    def __init__(
        self,
        files: FilesProvider,
        indexes: StoreIndexes,
        embed: Embedder,
        settings: VectorStoresDefaults,
        records: Records | None = None,
        inference: InferenceRouter | None = None,
        on_progress: Callable[[str, str, int, int | None], None] | None = None,
    ) -> None:
        self.on_progress = on_progress  # (store id, file id, pages read, pages in all or None): live progress
        self.files = files
        self.indexes = indexes
        self.embed = embed
        self.settings = settings
        self.records = records  # page images are noted there as they are stored, so a crash cannot orphan them
        self.inference = inference  # the LLM of contextual chunking is reached through it

    def contextualizer(self) -> Contextualizer:
        if self.inference is None:
            raise ContextualizationError("contextual chunking needs an inference router; this ingestor has none")
        return Contextualizer(self.inference, self.settings.contextual_retrieval_params)

    async def cleanup(self, store: StoreRecord, rec: FileRecord) -> None:
        """Remove what an earlier (partial) run or the file itself left: its chunks and page images.

        A run killed mid-file (``kill -9``) never put its page images in the file record: each was noted in
        the records as it was stored (and the chunks name them), so they are found and deleted too.
        """
        index = self.indexes.of(store)
        try:
            chunks = await index.get({"file_id": rec.object.id})
        except Exception as e:  # noqa: BLE001 - a backend that cannot list still gets the delete below
            log.debug("could not list chunks of %s before cleanup: %s", rec.object.id, e)
            chunks = []
        indexed = {str(c.metadata.get("page_image_file_id")) for c in chunks if c.metadata.get("page_image_file_id")}
        noted = set(await self.records.pending_page_images(store.object.id, rec.object.id)) if self.records else set()
        await index.delete({"file_id": rec.object.id})
        rec = rec.model_copy(update={"page_image_file_ids": sorted(set(rec.page_image_file_ids) | indexed | noted)})
        await self.delete_page_images(rec)
        if self.records is not None:
            await self.records.forget_page_images(store.object.id, rec.object.id)

    async def delete_page_images(self, rec: FileRecord) -> None:
        for image_id in rec.page_image_file_ids:
            try:
                await self.files.delete_file(image_id)
            except Exception as e:  # noqa: BLE001 - a page image already gone is fine
                log.debug("page image %s not deleted: %s", image_id, e)

    async def ingest(self, store: StoreRecord, rec: FileRecord, owner: Principal, cancelled: threading.Event) -> IngestResult:
        file_id = rec.object.id
        started = time.monotonic()
        try:
            async with self._local_copy(file_id) as path:
                result = await self._ingest(store, rec, owner, cancelled, path)
        except BaseException as e:
            _record_ingestion(e, 0, time.monotonic() - started)
            raise
        _record_ingestion(None, result.page_count, time.monotonic() - started)
        return result

    @contextlib.asynccontextmanager
    async def _local_copy(self, file_id: str) -> AsyncIterator[Path]:
        """A path holding the file's bytes: the Files provider's own file when it exposes one
        (``local_path``), else a temporary copy streamed chunk by chunk (never the whole file in memory)."""
        found = await self.files.local_path(file_id)
        if found is not None:
            yield Path(found)
            return
        stream = await self.files.iter_content(file_id)
        fd, name = tempfile.mkstemp(prefix="vistack-ingest-", suffix=".bin")
        try:
            with os.fdopen(fd, "wb") as out:
                async for block in stream:
                    await asyncio.to_thread(out.write, block)
            yield Path(name)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    async def _ingest(
        self, store: StoreRecord, rec: FileRecord, owner: Principal, cancelled: threading.Event, path: Path
    ) -> IngestResult:
        file_id = rec.object.id
        max_tokens, overlap = resolve_chunking(rec.object.chunking_strategy)
        contextual = contextual_config(rec.object.chunking_strategy)
        document: list[PageText] = []  # the pages' text, for contextual chunking only
        index = self.indexes.of(store)
        attributes = dict(rec.object.attributes)
        stem = PurePath(rec.filename or file_id).stem or file_id

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=_PAGES_AHEAD)
        options = extract_options(self.settings)

        stop = threading.Event()

        def put(item: object) -> bool:
            """Hand one item to the loop; gives up when the consumer has stopped."""
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while True:
                try:
                    future.result(timeout=0.5)
                    return True
                except concurrent.futures.TimeoutError:
                    if stop.is_set():
                        future.cancel()
                        return False

        def produce() -> None:
            """Always ends with a terminal item (_END, an exception) unless the consumer is gone."""
            try:
                pages = extract_pages(path, rec.filename, options)
                try:
                    while not stop.is_set():
                        if cancelled.is_set():
                            put(IngestionCancelled())
                            return
                        with MUPDF_LOCK:  # MuPDF must not run on two threads at once
                            page = next(pages, _END)
                        if not put(page) or page is _END:
                            return
                finally:
                    with MUPDF_LOCK:
                        pages.close()  # closes the document now, on this thread
            except BaseException as e:  # noqa: BLE001 - every failure goes to the consumer, which raises it
                put(e)

        producer = threading.Thread(target=produce, name=f"ingest-{file_id}", daemon=True)
        producer.start()

        result = IngestResult(0, 0, [])
        pending: list[StoredChunk] = []
        in_flight: deque[asyncio.Task] = deque()

        async def embed_and_add(batch: list[StoredChunk], previous: asyncio.Task | None) -> None:
            vectors = await self.embed(store, [c.text for c in batch])  # overlaps the previous batch's write
            for chunk, vector in zip(batch, vectors, strict=True):
                chunk.embedding = vector
            if previous is not None:
                await previous  # writes stay in order
            await index.add(batch)
            result.chunk_count += len(batch)

        async def flush() -> None:
            if not pending:
                return
            while len(in_flight) >= _BATCHES_IN_FLIGHT:
                await in_flight.popleft()
            previous = in_flight[-1] if in_flight else None
            in_flight.append(asyncio.create_task(embed_and_add(list(pending), previous)))
            pending.clear()

        try:
            while True:
                item = await self._next_item(queue, producer)
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                if cancelled.is_set():
                    raise IngestionCancelled()
                page: ExtractedPage = item
                result.page_count += 1
                if self.on_progress is not None:
                    self.on_progress(store.object.id, file_id, result.page_count, page.of_pages)
                image_id = ""
                if page.image_png:
                    image_id = new_file_id()
                    if self.records is not None:  # noted before it exists: a crash cannot leave it unrecorded
                        await self.records.note_page_image(store.object.id, file_id, image_id, owner)
                    await self.files.create_file(
                        filename=f"{stem}.page-{page.number:04d}.png",
                        purpose=FilePurpose.vision,
                        chunks=_one_chunk(page.image_png),
                        owner=owner,
                        content_type="image/png",
                        file_id=image_id,
                    )
                    result.page_image_file_ids.append(image_id)
                pending.extend(page_chunks(file_id, rec.filename, page, image_id, attributes, max_tokens, overlap))
                if contextual is not None:
                    document.append((page.number, page_text(page.blocks)))
                elif len(pending) >= self.settings.embedding_batch_size:
                    await flush()
            if contextual is not None and pending:

                def check() -> None:
                    if cancelled.is_set():
                        raise IngestionCancelled()

                # an image-only page's chunk is a placeholder naming the page, not text to situate
                texts = [c for c in pending if c.metadata.get("chunk_type") != "image"]
                if texts:
                    await self.contextualizer().contextualize(contextual, document, texts, check)
                chunks, size = list(pending), self.settings.embedding_batch_size
                pending.clear()
                for start in range(0, len(chunks), size):
                    pending.extend(chunks[start : start + size])
                    await flush()
            await flush()
            while in_flight:
                await in_flight.popleft()
            # persist the BM25 index now, so the first search after a big ingest does not pay for it
            await index.flush()
        except BaseException:
            # page images are recorded on the file only when it completes: a run that stops early deletes its own
            await self.delete_page_images(rec.model_copy(update={"page_image_file_ids": result.page_image_file_ids}))
            raise
        finally:
            stop.set()
            for task in in_flight:  # a failure: the batches still running are abandoned (cleanup removes them)
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
            while producer.is_alive():  # it ends after the page it is on
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                await asyncio.sleep(0.01)
        return result

    @staticmethod
    async def _next_item(queue: asyncio.Queue, producer: threading.Thread) -> object:
        """The next page; a producer that died without a word is an error, never a hang."""
        while True:
            try:
                return await asyncio.wait_for(queue.get(), timeout=1.0)
            except TimeoutError:
                if not producer.is_alive() and queue.empty():
                    raise RuntimeError("page extraction stopped unexpectedly") from None


class _ReadingSettings(Protocol):
    page_image_dpi: int
    max_pages: int
    max_page_pixels: int
    max_image_pixels: int
    max_page_content_bytes: int
    ocr: bool
    ocr_language: str


def extract_options(settings: _ReadingSettings, render_images: bool = True) -> ExtractOptions:
    """How pages are read, from the ``vector_stores`` settings (or the Llama Stack file processor's copy of them)."""
    return ExtractOptions(
        dpi=settings.page_image_dpi,
        max_pages=settings.max_pages,
        max_page_pixels=settings.max_page_pixels,
        max_image_pixels=settings.max_image_pixels,
        ocr=settings.ocr,
        ocr_language=settings.ocr_language,
        max_content_bytes=settings.max_page_content_bytes,
        render_images=render_images,
    )


def page_chunks(
    file_id: str,
    filename: str,
    page: ExtractedPage,
    image_id: str,
    attributes: dict,
    max_tokens: int,
    overlap: int,
) -> list[StoredChunk]:
    """One page's chunks with the metadata every stored chunk carries (file, page, bbox, page image, type)."""
    base = {
        **{k: v for k, v in attributes.items() if k != CONTEXT_KEY},  # set by contextual chunking only
        "file_id": file_id,
        "filename": filename,
        "page": page.number,
        "page_image_file_id": image_id,
        "text_layer": "yes" if page.has_text_layer else ("ocr" if page.ocr_used else "none"),
    }
    if page.width and page.height:  # "w,h" in PDF points: the frame of bbox, so a client can draw it on the image
        base["page_size"] = f"{page.width:g},{page.height:g}"
    pieces = chunk_page(page, max_tokens, overlap)
    if not pieces:
        # An image-only page (no text layer, no OCR) stays findable by name and
        # keeps its page image for the vision model.
        return [
            StoredChunk(
                id=f"{file_id}:p{page.number}:c0",
                text=f"{filename} page {page.number}: image-only page without a text layer",
                metadata={
                    **base,
                    "chunk_type": "image",
                    "chunk_index": 0,
                    "bbox": bbox_text((0.0, 0.0, page.width, page.height)),
                },
            )
        ]
    return [
        StoredChunk(
            id=f"{file_id}:p{page.number}:c{piece.index_on_page}",
            text=piece.text,
            metadata={
                **base,
                "chunk_type": piece.chunk_type,
                "chunk_index": piece.index_on_page,
                "bbox": bbox_text(piece.bbox),
                **({"passage_boxes": encode_passages(piece.passages)} if piece.passages else {}),
            },
        )
        for piece in pieces
    ]


def failure(e: BaseException) -> LastError:
    """The user-facing reason a file failed."""
    if isinstance(e, DocumentError):
        return LastError(code=e.code, message=str(e))  # type: ignore[arg-type]
    if isinstance(e, ServiceUnavailableError):
        return LastError(code="server_error", message=e.message)
    if isinstance(e, ContextualizationError):
        return LastError(code="server_error", message=str(e))
    return LastError(code="server_error", message=f"ingestion failed: {type(e).__name__}: {e}")


def _record_ingestion(error: BaseException | None, pages: int, seconds: float) -> None:
    """Observability (vistack.metrics): one file's ingestion run ended; a cancelled one is not counted.

    ``unavailable``: a backend was down (ServiceUnavailableError); the service may retry the file.
    """
    if error is None:
        status = "completed"
    elif isinstance(error, IngestionCancelled | asyncio.CancelledError):
        return
    elif isinstance(error, ServiceUnavailableError):
        status = "unavailable"
    elif isinstance(error, Exception):
        status = "failed"
    else:  # KeyboardInterrupt, SystemExit
        return
    current_metrics().ingestion(status, pages, seconds)
