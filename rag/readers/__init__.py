"""Document readers: PDF, PNG/JPEG and plain-text/markdown files become pages.

Every document is read as a sequence of :class:`ExtractedPage` objects, each
with its text blocks (with bounding boxes), its tables (as markdown), and a
rendered page image, so retrieval can cite a page and the vision model can
look at it. Nothing here talks to a server: it is pure, synchronous code over
bytes, and every failure a user can cause is a named :class:`DocumentError`
whose message is fit to show as a vector-store file's ``last_error``.

Threading: PyMuPDF must not be used from several threads at once. Run one
extraction per worker thread/process; ``extract_pages`` is a generator so the
caller can embed page *n* while page *n+1* is extracted.

Modules: ``dispatch`` (``extract_pages``, ``open_document``: classify, then
hand to a reader), ``detect`` (content sniffing, text decoding), ``model``
(pages, blocks, options), ``errors`` (the named failures), one reader per
format (``pdf``, ``image``, ``text``), and what they share: ``layout`` (text
lines -> blocks with boxes, in reading order), ``tables`` (PDF tables as
markdown) and ``ocr`` (MuPDF's Tesseract, for pages without a text layer).
"""

import threading

from .detect import detect_kind
from .dispatch import extract_pages, open_document
from .errors import (
    CorruptDocumentError,
    DocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    ImageTooLargeError,
    TooManyPagesError,
    UnsupportedDocumentError,
)
from .model import (
    DEFAULT_DPI,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_PAGE_PIXELS,
    DEFAULT_MAX_PAGES,
    Block,
    BlockKind,
    DocumentInfo,
    DocumentKind,
    ExtractedPage,
    ExtractOptions,
)
from .ocr import ocr_available

MUPDF_LOCK = threading.Lock()
"""One per process, around every step of a PDF's page generator: PyMuPDF must not run on two threads at once."""

__all__ = [
    "MUPDF_LOCK",
    "DEFAULT_DPI",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MAX_PAGE_PIXELS",
    "Block",
    "BlockKind",
    "CorruptDocumentError",
    "DocumentError",
    "DocumentInfo",
    "DocumentKind",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "ExtractOptions",
    "ExtractedPage",
    "ImageTooLargeError",
    "TooManyPagesError",
    "UnsupportedDocumentError",
    "detect_kind",
    "extract_pages",
    "ocr_available",
    "open_document",
]
