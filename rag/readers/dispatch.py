"""The readers' front door: classify a document, then hand it to its format's reader."""

from __future__ import annotations

import os
from collections.abc import Iterator

from .detect import detect_kind
from .image import extract_image, image_header
from .model import DocumentInfo, ExtractedPage, ExtractOptions
from .ocr import ocr_available
from .pdf import extract_pdf, pdf_info
from .text import text_pages

_HEAD_BYTES = 1024
_PDF_MAGIC = b"%PDF-"


def open_document(data: bytes, filename: str, options: ExtractOptions | None = None) -> DocumentInfo:
    """Validate a document up front: type, password, damage, page count, pixel bombs.

    Cheap compared to extraction (PDF text is sampled on the first pages
    only). Raises the same :class:`DocumentError` subclasses ``extract_pages``
    would raise for the whole document.
    """
    options = options or ExtractOptions()
    kind, mime = detect_kind(data, filename)
    ocr_ok = options.ocr and ocr_available(options.ocr_language, options.tessdata)
    if kind == "pdf":
        return pdf_info(data, filename, options, ocr_ok=ocr_ok)
    if kind == "image":
        image_header(data, mime, filename, options)
        return DocumentInfo(filename, kind, mime, 1, False, 1, 0, ocr_available=ocr_ok)
    pages = text_pages(data, filename, options)
    return DocumentInfo(filename, kind, mime, len(pages), True, len(pages), len(pages))


def extract_pages(
    data: bytes | os.PathLike, filename: str, options: ExtractOptions | None = None
) -> Iterator[ExtractedPage]:
    """Yield the document's pages in order, one at a time.

    ``data`` is the document's bytes or the path of a file holding them. From a
    path, a PDF is never read into memory as a whole (MuPDF reads the pages it
    needs); images and text files, small by nature, are read.

    Validation errors (empty, corrupt, encrypted, too many pages, pixel bomb,
    unsupported) are raised by the first ``next()``, before any page is
    yielded; a page that turns out to be damaged mid-way raises
    :class:`CorruptDocumentError` naming the page.
    """
    options = options or ExtractOptions()
    source = data
    if not isinstance(data, (bytes, bytearray, memoryview)):
        with open(data, "rb") as fh:
            data = fh.read(_HEAD_BYTES)  # enough for every signature detect_kind looks at first
        if _PDF_MAGIC not in data:
            with open(source, "rb") as fh:
                source = data = fh.read()
    kind, mime = detect_kind(data, filename)
    if kind == "pdf":
        yield from extract_pdf(source, filename, options)
    elif kind == "image":
        page = extract_image(data, mime, filename, options)
        page.of_pages = 1
        yield page
    else:
        for number, blocks in enumerate(text_pages(data, filename, options), start=1):
            yield ExtractedPage(number, 0.0, 0.0, blocks, None, has_text_layer=True)
