"""What every reader produces and takes: pages, blocks, options, document info.

Shared by all formats so ingestion and chunking see one shape whatever the
file was. Coordinates: PDF pages are measured in points (1/72 inch) in the
page's *displayed* orientation, image documents in pixels of the
EXIF-oriented image; text documents have no geometry (all zeros).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vistack.images import DEFAULT_MAX_IMAGE_PIXELS  # uploaded PNG/JPEG cap: the same as for chat images

DocumentKind = Literal["pdf", "image", "text"]
BlockKind = Literal["text", "table", "ocr"]
TextLayer = Literal["native", "ocr", "none"]
TableStrategy = Literal["lines", "layout", "none"]

DEFAULT_DPI = 110
"""A US-letter page at 110 dpi is 935 x 1210 px: legible for a vision model, which sees at most 1120 x 1120."""

DEFAULT_MAX_PAGES = 2000
DEFAULT_MAX_PAGE_PIXELS = 8_000_000
"""Rendered page image cap (an A2 poster at ~100 dpi). Bigger pages are rendered at a lower dpi."""

DEFAULT_MIN_DPI = 9.0
"""If fitting a page under ``max_page_pixels`` needs a lower dpi than this, the page is a pixel bomb."""

DEFAULT_TEXT_PAGE_CHARS = 3000

DEFAULT_MAX_CONTENT_BYTES = 64 * 1024 * 1024
"""Drawing instructions per PDF page, decompressed and with nested forms expanded (see ``content.py``):
business pages use kilobytes, a dense CAD drawing a few MB; more is a decompression or expansion bomb."""

MIME_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "text": "text/plain",
    "markdown": "text/markdown",
}


@dataclass(frozen=True)
class ExtractOptions:
    """How to read a document. The defaults suit business reports and a Llama 3.2 Vision reader."""

    dpi: float = DEFAULT_DPI
    max_pages: int = DEFAULT_MAX_PAGES
    max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    ocr: bool = True
    ocr_language: str = "eng"
    render_images: bool = True
    ocr_dpi: float = 200
    """Tesseract wants text ~20-30 px high; 200 dpi gets 10 pt type there."""
    min_dpi: float = DEFAULT_MIN_DPI
    tables: TableStrategy = "lines"
    """``lines``: ruled tables (fast, ~30 ms on a page with vector graphics, 0 without).
    ``layout``: PyMuPDF's layout model also finds borderless tables, at ~0.3-0.5 s a page on CPU.
    ``none``: no table detection (tables stay text)."""
    text_page_chars: int = DEFAULT_TEXT_PAGE_CHARS
    max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES
    """A PDF page whose content streams, decompressed and with every form XObject counted each time it is
    drawn, exceed this is refused (``ImageTooLargeError``) before MuPDF reads it."""
    tessdata: str | None = None
    """Tesseract language-data folder; None: ``TESSDATA_PREFIX`` or the installed tesseract's."""

    def __post_init__(self) -> None:
        for name in ("dpi", "ocr_dpi", "min_dpi"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExtractOptions.{name} must be positive")
        for name in ("max_pages", "max_page_pixels", "max_image_pixels", "text_page_chars", "max_content_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"ExtractOptions.{name} must be at least 1")
        if self.tables not in ("lines", "layout", "none"):
            raise ValueError("ExtractOptions.tables must be 'lines', 'layout' or 'none'")


@dataclass(frozen=True)
class Block:
    """One piece of page content in reading order.

    ``bbox`` is ``(x0, y0, x1, y1)`` in page coordinates (see the module doc).
    ``kind`` is ``text`` (the PDF's text layer or a text file), ``table``
    (markdown from a detected table), or ``ocr`` (recognized from pixels).
    """

    text: str
    bbox: tuple[float, float, float, float]
    kind: BlockKind = "text"


@dataclass
class ExtractedPage:
    """One page: 1-based ``number``, its size, blocks, and (optionally) a rendered PNG."""

    number: int
    width: float
    height: float
    blocks: list[Block]
    image_png: bytes | None
    has_text_layer: bool
    ocr_used: bool = False
    dpi: float | None = None
    """The dpi ``image_png`` was rendered at (lower than asked when capped); None without an image."""
    of_pages: int | None = None
    """How many pages the document has (known up front for PDFs and images, not for text): progress."""

    @property
    def text_layer(self) -> TextLayer:
        """``ocr`` (text recognized from pixels, maybe next to a little native text such as a scanner's
        stamp), ``native`` (the file's own text only), or ``none`` (an image-only page)."""
        if self.ocr_used:
            return "ocr"
        return "native" if self.has_text_layer else "none"

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


@dataclass(frozen=True)
class DocumentInfo:
    """What ``open_document`` learned without extracting every page."""

    filename: str
    kind: DocumentKind
    mime_type: str
    page_count: int
    has_text_layer: bool
    """True when any sampled page has extractable text (OCR is not counted)."""
    pages_sampled: int = 0
    pages_with_text: int = 0
    """Of ``pages_sampled`` (the first up-to-``TEXT_LAYER_SAMPLE`` pages), how many have text."""
    ocr_available: bool = False
    repaired: bool = False
    """PyMuPDF had to repair the PDF's cross-reference table (a damaged or truncated file)."""


TEXT_LAYER_SAMPLE = 20
