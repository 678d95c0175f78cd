"""``inline::vistack-pdf``: Llama Stack's ``file_processors`` API over vistack's page reader.

Llama Stack 0.7 turns files into chunks with a ``file_processors`` provider (``POST
/v1alpha/file-processors/process``, and, when a vector_io provider is handed this API, attaching a file
to a vector store). This one reads PDFs, PNG/JPEG scans and text the way vistack ingests them
(``vistack.rag.readers``): PyMuPDF text blocks with bounding boxes, ruled tables as markdown, OCR for
pages without a text layer, and a rendered PNG of every page, stored through Llama Stack's Files API
(purpose ``assistants``) so an agent can show the vision model the page a chunk came from. Chunks are
vistack's: page-bounded, tables on their own, and each carries ``page``, ``bbox`` ("x0,y0,x1,y1" in PDF
points), ``chunk_type``, ``chunk_index``, ``text_layer`` and ``page_image_file_id`` in its metadata.

Without a ``chunking_strategy`` the chunks are vistack's ``auto`` size (sized for a MiniLM-class
embedder), not one chunk for the whole file: a chunk never crosses a page, so citations name a page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from fastapi import UploadFile
from llama_stack_api import (
    Api,
    Chunk,
    ChunkMetadata,
    DeleteFileRequest,
    OpenAIFilePurpose,
    RetrieveFileContentRequest,
    RetrieveFileRequest,
    UploadFileRequest,
)
from llama_stack_api.common.upload_safety import PreReadUploadFile
from llama_stack_api.file_processors import ProcessFileRequest, ProcessFileResponse
from pydantic import BaseModel, ConfigDict, Field

from vistack.api.protocols import StoredChunk
from vistack.config import VectorStoresDefaults
from vistack.rag.chunking import count_tokens, resolve_chunking
from vistack.rag.ingestion import extract_options, page_chunks
from vistack.rag.readers import MUPDF_LOCK, DocumentError, ExtractedPage, extract_pages

log = logging.getLogger(__name__)

_INGESTION = VectorStoresDefaults.model_fields  # vistack's ingestion settings: same defaults and limits


class VistackPdfProcessorConfig(BaseModel):
    """How pages are read and rendered; the fields and defaults of vistack's ``vector_stores`` ingestion settings."""

    model_config = ConfigDict(extra="forbid")

    page_images: bool = Field(True, description="render each page and store the PNG through the Files API")
    page_image_dpi: int = _INGESTION["page_image_dpi"]
    max_pages: int = _INGESTION["max_pages"]
    max_page_pixels: int = _INGESTION["max_page_pixels"]
    max_image_pixels: int = _INGESTION["max_image_pixels"]
    max_page_content_bytes: int = _INGESTION["max_page_content_bytes"]
    ocr: bool = _INGESTION["ocr"]
    ocr_language: str = _INGESTION["ocr_language"]
    max_file_size_bytes: int = Field(100 * 1024 * 1024, ge=1, description="larger uploads are refused (400)")


async def get_provider_impl(config: VistackPdfProcessorConfig, deps: dict[Api, Any]) -> VistackPdfFileProcessor:
    return VistackPdfFileProcessor(config, deps.get(Api.files))


class VistackPdfFileProcessor:
    """``process_file``: a document (uploaded, or a Files API id) -> vistack's page chunks as Llama Stack chunks."""

    def __init__(self, config: VistackPdfProcessorConfig, files_api: Any | None = None) -> None:
        self.config = config
        self.files_api = files_api

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_file(self, request: ProcessFileRequest, file: UploadFile | None = None) -> ProcessFileResponse:
        started = time.monotonic()
        data, filename = await self._read(request, file)
        document_id = request.file_id or f"doc-{uuid.uuid4().hex}"
        try:
            max_tokens, overlap = resolve_chunking(request.chunking_strategy)
        except ValueError as e:
            raise ValueError(f"chunking_strategy: {e}") from None
        render = self.config.page_images and self.files_api is not None
        pages = extract_pages(data, filename, extract_options(self.config, render))
        chunks: list[Chunk] = []
        image_ids: list[str] = []
        page_count = ocr_pages = 0
        try:
            while (page := await asyncio.to_thread(_next_page, pages)) is not None:
                page_count += 1
                ocr_pages += page.ocr_used
                image_id = await self._store_page_image(filename, page) if page.image_png and render else ""
                if image_id:
                    image_ids.append(image_id)
                for stored in page_chunks(document_id, filename, page, image_id, {}, max_tokens, overlap):
                    chunks.append(self._chunk(stored, document_id, filename, request.file_id is not None))
        except DocumentError as e:
            await self._delete(image_ids)
            raise ValueError(str(e)) from None  # names the file and the fix
        except BaseException:
            await self._delete(image_ids)
            raise
        finally:
            await asyncio.to_thread(_close, pages)
        metadata = {
            "processor": "vistack",
            "extraction_method": "pymupdf+ocr" if ocr_pages else "pymupdf",
            "processing_time_ms": int((time.monotonic() - started) * 1000),
            "page_count": page_count,
            "ocr_page_count": ocr_pages,
            "page_image_file_ids": image_ids,
            "file_size_bytes": len(data),
            "filename": filename,
        }
        return ProcessFileResponse(chunks=chunks, metadata=metadata)

    async def _read(self, request: ProcessFileRequest, file: UploadFile | None) -> tuple[bytes, str]:
        if (file is None) == (request.file_id is None):
            raise ValueError("exactly one of file or file_id must be given")
        if file is not None:
            data = await file.read()
            filename = file.filename or "document"
        else:
            if self.files_api is None:
                raise ValueError("file_id needs the files API: add a files provider to the distribution")
            info = await self.files_api.openai_retrieve_file(RetrieveFileRequest(file_id=request.file_id))
            content = await self.files_api.openai_retrieve_file_content(
                RetrieveFileContentRequest(file_id=request.file_id))
            data, filename = content.body, info.filename
        if len(data) > self.config.max_file_size_bytes:
            raise ValueError(f"{filename} is {len(data)} bytes; this processor takes at most "
                             f"{self.config.max_file_size_bytes} (max_file_size_bytes)")
        return data, filename

    async def _store_page_image(self, filename: str, page: ExtractedPage) -> str:
        name = f"{PurePath(filename).stem or 'document'}.page-{page.number:04d}.png"
        upload = PreReadUploadFile(page.image_png or b"", filename=name, content_type="image/png")
        stored = await self.files_api.openai_upload_file(UploadFileRequest(purpose=OpenAIFilePurpose.ASSISTANTS),
                                                         upload)
        return stored.id

    async def _delete(self, image_ids: list[str]) -> None:
        """Page images of a document that failed half-way are not left behind."""
        for image_id in image_ids:
            try:
                await self.files_api.openai_delete_file(DeleteFileRequest(file_id=image_id))
            except Exception as e:  # noqa: BLE001 - best effort; the failure being raised matters more
                log.warning("page image %s not deleted: %s", image_id, e)

    @staticmethod
    def _chunk(stored: StoredChunk, document_id: str, filename: str, from_files_api: bool) -> Chunk:
        metadata: dict[str, Any] = {**stored.metadata, "document_id": document_id}
        if not from_files_api:
            metadata.pop("file_id", None)  # an upload has no file id; document_id names it
        return Chunk(
            content=stored.text,
            chunk_id=stored.id,
            metadata=metadata,
            chunk_metadata=ChunkMetadata(chunk_id=stored.id, document_id=document_id, source=filename,
                                         created_timestamp=int(time.time()), chunk_tokenizer="vistack.count_tokens",
                                         content_token_count=count_tokens(stored.text)),
        )


def _next_page(pages: Iterator[ExtractedPage]) -> ExtractedPage | None:
    with MUPDF_LOCK:
        return next(pages, None)


def _close(pages: Iterator[ExtractedPage]) -> None:
    with MUPDF_LOCK, contextlib.suppress(Exception):
        pages.close()  # type: ignore[attr-defined]
