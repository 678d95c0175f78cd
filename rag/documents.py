"""Page extraction: PDF, PNG/JPEG and plain-text/markdown files become pages.

Every document is read as a sequence of :class:`ExtractedPage` objects, each
with its text blocks (with bounding boxes), its tables (as markdown), and a
rendered page image, so retrieval can cite a page and the vision model can
look at it. Nothing here talks to a server: it is pure, synchronous code over
bytes, and every failure a user can cause is a named :class:`DocumentError`
whose message is fit to show as a vector-store file's ``last_error``.

What does the work:

* PDF: PyMuPDF. ``page.get_text("dict")`` for text blocks,
  ``page.find_tables()`` for tables (``Table.to_markdown()``),
  ``page.get_pixmap()`` for the page image, ``page.get_textpage_ocr()`` for
  pages without a text layer, or scans whose only text is a stamp (fewer
  than 200 characters on a page mostly covered by images).
* PNG/JPEG: Pillow reads the header first (pixel-bomb check before any pixel
  is decompressed), then decodes; the image itself is the page image. Its text
  comes from OCR (MuPDF's built-in Tesseract) when language data is installed.
* Text/markdown: split into "pages" of about ``text_page_chars`` characters at
  paragraph boundaries (markdown pipe tables become table blocks); no image.

Coordinates: PDF pages are measured in points (1/72 inch) in the page's
*displayed* orientation (``page.rect``; rotation applied), so a bbox lines up
with the rendered image: multiply by ``dpi / 72`` to get pixels. Image
documents are measured in pixels of the EXIF-oriented image. Text documents
have no geometry: width, height and every bbox are zero.

Threading: PyMuPDF must not be used from several threads at once. Run one
extraction per worker thread/process; ``extract_pages`` is a generator so the
caller can embed page *n* while page *n+1* is extracted.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import io
import logging
import math
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pymupdf
from PIL import Image, ImageOps, UnidentifiedImageError

from vistack.images import DEFAULT_MAX_IMAGE_PIXELS  # uploaded PNG/JPEG cap: the same as for chat images
from vistack.rag.ocr import ocr_available, ocr_image, ocr_pdf_page

logger = logging.getLogger(__name__)

# PyMuPDF 2.x prints an advert for its layout package when find_tables runs without it.
os.environ.setdefault("PYMUPDF_SUGGEST_LAYOUT_ANALYZER", "0")

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

MIME_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "text": "text/plain",
    "markdown": "text/markdown",
}

_PDF_EXTENSIONS = {".pdf"}
_IMAGE_EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG"}
_MARKDOWN_EXTENSIONS = {".md", ".markdown", ".mdown", ".mkd"}
# Binary formats users commonly try; named in the error so the fix is obvious.
_KNOWN_UNSUPPORTED = {
    b"PK\x03\x04": "a ZIP container (e.g. DOCX, XLSX, PPTX)",
    b"\xd0\xcf\x11\xe0": "a legacy Office document (DOC, XLS, PPT)",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"BM": "a BMP image",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"\x7fELF": "an executable",
    b"MZ": "an executable",
}
_SUPPORTED_HINT = "Supported: PDF, PNG, JPEG, plain text and markdown."


# ----- errors ------------------------------------------------------------------------------------


class DocumentError(Exception):
    """A file that cannot be ingested; ``str(e)`` is a message for the user.

    ``code`` is ``"invalid_file"`` (the file is broken or too big) or
    ``"unsupported_file"`` (the format is not one we read).
    """

    code: str = "invalid_file"

    def __init__(self, message: str, *, filename: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename


class EmptyDocumentError(DocumentError):
    """Zero bytes, or a text file with nothing but whitespace."""


class CorruptDocumentError(DocumentError):
    """The bytes cannot be read as the format they claim to be."""


class EncryptedDocumentError(DocumentError):
    """A PDF that needs a password to open."""


class TooManyPagesError(DocumentError):
    """More pages than ``ExtractOptions.max_pages``."""


class ImageTooLargeError(DocumentError):
    """A pixel bomb: an image or page too large to decode or render safely."""


class UnsupportedDocumentError(DocumentError):
    """Not a PDF, PNG, JPEG or text file."""

    code = "unsupported_file"


# ----- data --------------------------------------------------------------------------------------


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
    tessdata: str | None = None
    """Tesseract language-data folder; None: ``TESSDATA_PREFIX`` or the installed tesseract's."""

    def __post_init__(self) -> None:
        for name in ("dpi", "ocr_dpi", "min_dpi"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExtractOptions.{name} must be positive")
        for name in ("max_pages", "max_page_pixels", "max_image_pixels", "text_page_chars"):
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


# ----- public API --------------------------------------------------------------------------------


def detect_kind(data: bytes, filename: str) -> tuple[DocumentKind, str]:
    """Classify by content first, extension second. Returns ``(kind, mime_type)``.

    Raises :class:`EmptyDocumentError`, :class:`CorruptDocumentError` (the
    extension promises a PDF/PNG/JPEG the bytes are not) or
    :class:`UnsupportedDocumentError`.
    """
    name = _display_name(filename)
    if not data:
        raise EmptyDocumentError(f"{name} is empty (0 bytes); upload the file again.", filename=filename)
    ext = os.path.splitext(filename or "")[1].lower()
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf", MIME_TYPES["pdf"]
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", MIME_TYPES["png"]
    if data.startswith(b"\xff\xd8\xff"):
        return "image", MIME_TYPES["jpeg"]
    if ext in _PDF_EXTENSIONS:
        raise CorruptDocumentError(
            f"{name} is not a valid PDF (no %PDF header); the file may be damaged or mislabeled.", filename=filename
        )
    if ext in _IMAGE_EXTENSIONS:
        expected = _IMAGE_EXTENSIONS[ext]
        raise CorruptDocumentError(
            f"{name} is not a valid {expected} image (wrong file signature); the file may be damaged or mislabeled.",
            filename=filename,
        )
    for magic, what in _KNOWN_UNSUPPORTED.items():
        if data.startswith(magic):
            raise UnsupportedDocumentError(
                f"{name} is {what}, which is not supported. {_SUPPORTED_HINT}", filename=filename
            )
    if _decode_text(data) is not None:
        if ext in _MARKDOWN_EXTENSIONS:
            return "text", MIME_TYPES["markdown"]
        return "text", MIME_TYPES["text"]
    raise UnsupportedDocumentError(
        f"{name} is not a supported file type (binary content that is not a PDF, PNG or JPEG). {_SUPPORTED_HINT}",
        filename=filename,
    )


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
        doc = _open_pdf(data, filename, options)
        try:
            sampled = min(doc.page_count, TEXT_LAYER_SAMPLE)
            with_text = 0
            for i in range(sampled):
                try:
                    if _has_text(doc.load_page(i).get_text("text", flags=pymupdf.TEXTFLAGS_TEXT)):
                        with_text += 1
                except Exception as e:  # MuPDF raises its own types on damaged content streams
                    raise _damaged_page(filename, i + 1, e) from e
            return DocumentInfo(
                filename=filename,
                kind=kind,
                mime_type=mime,
                page_count=doc.page_count,
                has_text_layer=with_text > 0,
                pages_sampled=sampled,
                pages_with_text=with_text,
                ocr_available=ocr_ok,
                repaired=bool(getattr(doc, "is_repaired", False)),
            )
        finally:
            doc.close()
    if kind == "image":
        _image_header(data, mime, filename, options)
        return DocumentInfo(filename, kind, mime, 1, False, 1, 0, ocr_available=ocr_ok)
    pages = _text_pages(data, filename, options)
    return DocumentInfo(filename, kind, mime, len(pages), True, len(pages), len(pages))


def extract_pages(data: bytes, filename: str, options: ExtractOptions | None = None) -> Iterator[ExtractedPage]:
    """Yield the document's pages in order, one at a time.

    Validation errors (empty, corrupt, encrypted, too many pages, pixel bomb,
    unsupported) are raised by the first ``next()``, before any page is
    yielded; a page that turns out to be damaged mid-way raises
    :class:`CorruptDocumentError` naming the page.
    """
    options = options or ExtractOptions()
    kind, mime = detect_kind(data, filename)
    if kind == "pdf":
        yield from _extract_pdf(data, filename, options)
    elif kind == "image":
        yield _extract_image(data, mime, filename, options)
    else:
        for number, blocks in enumerate(_text_pages(data, filename, options), start=1):
            yield ExtractedPage(number, 0.0, 0.0, blocks, None, has_text_layer=True)


# ----- PDF ---------------------------------------------------------------------------------------


def _open_pdf(data: bytes, filename: str, options: ExtractOptions) -> pymupdf.Document:
    name = _display_name(filename)
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as e:  # pymupdf.FileDataError, RuntimeError, ...
        raise CorruptDocumentError(
            f"{name} could not be opened as a PDF: the file is damaged or truncated ({_short(e)}). "
            "Re-export or re-download it and upload again.",
            filename=filename,
        ) from e
    try:
        if doc.needs_pass:
            raise EncryptedDocumentError(
                f"{name} is password-protected; upload an unencrypted copy.", filename=filename
            )
        count = doc.page_count
        if count == 0:
            raise CorruptDocumentError(
                f"{name} has no readable pages: the PDF is damaged or truncated. Re-export it and upload again.",
                filename=filename,
            )
        if count > options.max_pages:
            raise TooManyPagesError(
                f"{name} has {count:,} pages; at most {options.max_pages:,} are accepted. Split it into smaller files.",
                filename=filename,
            )
    except BaseException:
        doc.close()
        raise
    return doc


def _extract_pdf(data: bytes, filename: str, options: ExtractOptions) -> Iterator[ExtractedPage]:
    doc = _open_pdf(data, filename, options)
    try:
        for index in range(doc.page_count):
            try:
                page = doc.load_page(index)
                result = _pdf_page(page, filename, options)
            except DocumentError:
                raise
            except Exception as e:
                raise _damaged_page(filename, index + 1, e) from e
            yield result
    finally:
        doc.close()


def _pdf_page(page: pymupdf.Page, filename: str, options: ExtractOptions) -> ExtractedPage:
    number = page.number + 1
    rect = page.rect
    to_display = page.rotation_matrix  # text and tables come unrotated; the image is displayed

    # Check the pixel budget before any expensive work, so a pixel bomb fails fast.
    dpi = _fit_dpi(rect.width, rect.height, options.dpi, options, filename, number) if options.render_images else None

    if options.render_images or options.ocr:  # both decode the page's images
        _check_embedded_images(page, filename, options)

    lines = _dict_lines(page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT, sort=False))
    native_text = " ".join(text for _, _, text in lines)
    has_text = _has_text(native_text)
    # A scan with a stamped header, Bates number or scanner watermark has *some* text: still OCR it.
    needs_ocr = not has_text or (
        _visible_chars(native_text) < SPARSE_TEXT_CHARS and _image_coverage(page) >= SCAN_IMAGE_COVERAGE
    )

    pix = None
    if dpi is not None:
        zoom = dpi / 72
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)

    blocks: list[Block] = []
    if has_text:
        tables = _find_tables(page, options.tables) if options.tables != "none" else []
        blocks = _assemble(lines, tables, to_display, "text")
    ocr_used = False
    if needs_ocr and options.ocr and ocr_available(options.ocr_language, options.tessdata) and not _is_blank(page, pix):
        try:  # OCR at ocr_dpi, within the same pixel budget as the page image
            ocr_dpi = _fit_dpi(rect.width, rect.height, options.ocr_dpi, options, filename, number)
        except ImageTooLargeError:
            ocr_dpi = None
        textdict = None
        if ocr_dpi is not None:
            textdict = ocr_pdf_page(page, language=options.ocr_language, dpi=ocr_dpi, tessdata=options.tessdata)
        if textdict is not None:
            ocr_used = True
            native_boxes = [r + (-2, -2, 2, 2) for _, r, _ in lines] if has_text else []
            ocr_lines = [  # what the text layer already says is not repeated
                line for line in _dict_lines(textdict) if not any(_center(line[1]) in r for r in native_boxes)
            ]
            blocks = _merge_by_position(blocks, _assemble(ocr_lines, [], to_display, "ocr"))

    image_png = pix.tobytes("png") if pix is not None else None
    return ExtractedPage(
        number=number,
        width=round(rect.width, 2),
        height=round(rect.height, 2),
        blocks=blocks,
        image_png=image_png,
        has_text_layer=has_text,
        ocr_used=ocr_used,
        dpi=round(dpi, 3) if dpi is not None else None,
    )


SPARSE_TEXT_CHARS = 200
SCAN_IMAGE_COVERAGE = 0.4


def _visible_chars(text: str) -> int:
    return sum(not ch.isspace() for ch in text)


def _image_coverage(page: pymupdf.Page) -> float:
    """Share of the page covered by images (overlaps counted twice; capped at 1)."""
    area = abs(page.rect)
    if not area:
        return 0.0
    covered = 0.0
    for info in page.get_image_info():
        covered += abs(pymupdf.Rect(info["bbox"]) & page.rect)
    return min(1.0, covered / area)


def _center(rect: pymupdf.Rect) -> pymupdf.Point:
    return pymupdf.Point((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2)


def _merge_by_position(first: list[Block], second: list[Block]) -> list[Block]:
    """Insert each block of ``second`` before the first block of ``first`` that starts below it."""
    out = list(first)
    for block in second:
        pos = next((i for i, b in enumerate(out) if b.bbox[1] >= block.bbox[1] and b.kind != "ocr"), None)
        out.insert(len(out) if pos is None else pos, block)
    return out


def _check_embedded_images(page: pymupdf.Page, filename: str, options: ExtractOptions) -> None:
    """A PDF can carry a pixel bomb too: an image XObject whose declared size is huge.

    ``get_images()`` reads the declared sizes from the page's resources without decoding anything.
    """
    for image in page.get_images(full=False):
        width, height = int(image[2] or 0), int(image[3] or 0)
        if width * height > options.max_image_pixels:
            raise ImageTooLargeError(
                f"{_display_name(filename)}: page {page.number + 1} contains an image too large to process safely "
                f"({width:,} x {height:,} pixels; at most {options.max_image_pixels:,} are accepted). "
                "Downscale the images in the PDF and upload again.",
                filename=filename,
            )


def _is_blank(page: pymupdf.Page, pix: pymupdf.Pixmap | None) -> bool:
    """Nothing drawn at all (e.g. a page whose content a repair lost): no point in OCR."""
    if pix is None:
        pix = page.get_pixmap(matrix=pymupdf.Matrix(0.5, 0.5), alpha=False)  # 36 dpi probe, ~2 ms
    samples, n = pix.samples, pix.n  # (Pixmap.is_unicolor loops in Python: seconds per page)
    return samples == samples[:n] * (len(samples) // n)


# A "line" is (block number, bbox, text) in unrotated page coordinates.
_Line = tuple[int, pymupdf.Rect, str]


def _dict_lines(textdict: dict) -> list[_Line]:
    out: list[_Line] = []
    for bno, block in enumerate(textdict.get("blocks", ())):
        if block.get("type", 0) != 0:
            continue
        for line in block.get("lines", ()):
            text = _clean_line("".join(span.get("text", "") for span in line.get("spans", ())))
            if text:
                out.append((bno, pymupdf.Rect(line["bbox"]), text))
    return out


def _assemble(
    lines: list[_Line], tables: list[tuple[pymupdf.Rect, str]], to_display: pymupdf.Matrix, kind: BlockKind
) -> list[Block]:
    """Group lines back into blocks (minus lines inside a table), then slot tables into reading order."""
    table_rects = [r + (-1, -1, 1, 1) for r, _ in tables]
    grouped: list[tuple[pymupdf.Rect, list[str]]] = []
    last_bno = None
    for bno, bbox, text in lines:
        if any(_center(bbox) in tr for tr in table_rects):
            last_bno = None  # text after a table starts a new block
            continue
        if bno != last_bno or not grouped:
            grouped.append((pymupdf.Rect(bbox), [text]))
        else:
            grouped[-1][0].include_rect(bbox)
            grouped[-1][1].append(text)
        last_bno = bno
    blocks = [
        (pymupdf.Rect(rect) * to_display, Block(_join_lines(texts), (0, 0, 0, 0), kind)) for rect, texts in grouped
    ]
    for trect, markdown in tables:
        drect = pymupdf.Rect(trect) * to_display
        pos = next((i for i, (r, _) in enumerate(blocks) if r.y0 >= drect.y0 - 1), len(blocks))
        blocks.insert(pos, (drect, Block(markdown, (0, 0, 0, 0), "table")))
    return [Block(b.text, _bbox(r), b.kind) for r, b in blocks]


@functools.cache
def _find_tables_kwargs() -> tuple[dict, dict]:
    """(kwargs for 'lines', kwargs for 'layout'), adapted to the installed PyMuPDF."""
    try:
        from pymupdf import table as table_module

        params = inspect.signature(table_module.find_tables).parameters
    except Exception:  # noqa: BLE001 - unknown PyMuPDF: call find_tables() without options
        params = {}
    if "use_layout" not in params:  # PyMuPDF < 2: line-based only
        return {}, {}
    has_layout = importlib.util.find_spec("pymupdf.layout") is not None
    if not has_layout:
        logger.info("PyMuPDF's layout analyzer is not installed; tables='layout' falls back to ruled tables")
    return {"use_layout": False}, {"use_layout": has_layout}


def _find_tables(page: pymupdf.Page, strategy: TableStrategy) -> list[tuple[pymupdf.Rect, str]]:
    lines_kwargs, layout_kwargs = _find_tables_kwargs()
    if strategy == "lines" or not layout_kwargs.get("use_layout"):
        # Ruled tables are made of vector lines/rectangles; a page without any cannot have one.
        # get_cdrawings() is ~0.2 ms; find_tables() is ~30 ms even when it finds nothing.
        if not page.get_cdrawings():
            return []
        kwargs = lines_kwargs
    else:
        kwargs = layout_kwargs
    try:
        found = page.find_tables(**kwargs)
    except Exception as e:  # noqa: BLE001 - table detection is best effort: the text is still extracted
        logger.warning("table detection failed on page %d: %s", page.number + 1, _short(e))
        return []
    if found is None:  # PyMuPDF reports internal errors by returning None
        return []
    tables = []
    for table in found.tables:
        if table.row_count < 2 or table.col_count < 2:
            continue  # a framed paragraph, not a table
        try:
            markdown = _table_markdown(table)
        except Exception as e:  # noqa: BLE001 - skip this table, keep the page
            logger.warning("table on page %d could not be converted: %s", page.number + 1, _short(e))
            continue
        if not re.search(r"\w", markdown.replace("---", "")):
            continue
        tables.append((pymupdf.Rect(table.bbox), markdown))
    return tables


def _table_markdown(table: pymupdf.table.Table) -> str:
    """``Table.to_markdown()``, with the header row re-read cell by cell.

    PyMuPDF builds the header line from ``Table.header.names``, which loses
    spaces in some fonts ("Unit price" -> "Unitprice") while the body rows,
    read with ``extract_cells``, keep them. Reading the header cells the same
    way as the body fixes that.
    """
    markdown = table.to_markdown().strip()
    if table.header.external:
        return markdown
    try:
        from pymupdf.table import extract_cells

        names = [
            " ".join((extract_cells(table.textpage, cell, markdown=False) or "").split()) if cell else ""
            for cell in table.rows[0].cells
        ]
    except Exception:  # noqa: BLE001 - keep PyMuPDF's own header
        return markdown
    fallback = table.header.names
    names = [
        name or (fallback[i] if i < len(fallback) and fallback[i] else f"Col{i + 1}") for i, name in enumerate(names)
    ]
    lines = markdown.split("\n")
    lines[0] = "|" + "|".join(names) + "|"
    return "\n".join(lines)


def _fit_dpi(
    width_pt: float, height_pt: float, dpi: float, options: ExtractOptions, filename: str, number: int
) -> float:
    """``dpi``, or the largest dpi that keeps the page within ``max_page_pixels``."""
    area_in2 = max(width_pt, 1e-6) * max(height_pt, 1e-6) / (72 * 72)
    if area_in2 * dpi * dpi <= options.max_page_pixels:
        return float(dpi)
    fitted = math.sqrt(options.max_page_pixels / area_in2)
    for _ in range(8):  # MuPDF rounds the pixel size up: shrink until the rounded size fits
        pixels = math.ceil(width_pt * fitted / 72) * math.ceil(height_pt * fitted / 72)
        if pixels <= options.max_page_pixels:
            break
        fitted *= math.sqrt(options.max_page_pixels / pixels) * 0.999
    if fitted < options.min_dpi:
        raise ImageTooLargeError(
            f"{_display_name(filename)}: page {number} is too large to render safely "
            f"({width_pt / 72:,.0f} x {height_pt / 72:,.0f} inches; even {options.min_dpi:g} dpi exceeds "
            f"{options.max_page_pixels:,} pixels). Resize the page and upload again.",
            filename=filename,
        )
    return fitted


# ----- images ------------------------------------------------------------------------------------


def _image_header(data: bytes, mime: str, filename: str, options: ExtractOptions) -> Image.Image:
    """Open lazily (header only) and enforce the pixel cap before anything is decompressed."""
    name = _display_name(filename)
    fmt = "PNG" if mime == MIME_TYPES["png"] else "JPEG"
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as e:  # Pillow's own guard (2 x Image.MAX_IMAGE_PIXELS) fired first
        raise _image_too_large(name, filename, None, options, detail=str(e)) from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptDocumentError(f"{name} could not be read as a {fmt} image: {_short(e)}.", filename=filename) from e
    width, height = img.size
    if width * height > options.max_image_pixels:
        raise _image_too_large(name, filename, (width, height), options)
    if width < 1 or height < 1:
        raise CorruptDocumentError(f"{name} has no pixels ({width} x {height}).", filename=filename)
    return img


def _extract_image(data: bytes, mime: str, filename: str, options: ExtractOptions) -> ExtractedPage:
    name = _display_name(filename)
    img = _image_header(data, mime, filename, options)
    want_ocr = options.ocr and ocr_available(options.ocr_language, options.tessdata)
    if not options.render_images and not want_ocr:
        width, height = _oriented_size(img)
        return ExtractedPage(1, float(width), float(height), [], None, has_text_layer=False)
    try:
        img.load()
        oriented = ImageOps.exif_transpose(img) if _orientation(img) != 1 else img
    except Image.DecompressionBombError as e:
        raise _image_too_large(name, filename, img.size, options) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptDocumentError(
            f"{name} could not be decoded: {_short(e)}. The image may be truncated.", filename=filename
        ) from e
    width, height = oriented.size
    rgb = _to_rgb(oriented)
    shown = rgb
    if width * height > options.max_page_pixels:
        scale = math.sqrt(options.max_page_pixels / (width * height))
        shown = rgb.resize((max(1, int(width * scale)), max(1, int(height * scale))), Image.Resampling.LANCZOS)

    blocks: list[Block] = []
    ocr_used = False
    if want_ocr:
        textdict = ocr_image(shown, language=options.ocr_language, tessdata=options.tessdata)
        if textdict is not None:
            ocr_used = True
            factor = width / shown.width  # back from the (maybe downscaled) image to the original's pixels
            blocks = _assemble(_dict_lines(textdict), [], pymupdf.Matrix(factor, factor), "ocr")

    image_png = None
    if options.render_images:
        unchanged = mime == MIME_TYPES["png"] and shown is rgb and oriented is img and rgb is img
        if unchanged:
            image_png = data  # already a PNG of exactly this page: no re-encode
        else:
            buf = io.BytesIO()
            shown.save(buf, format="PNG", compress_level=3)
            image_png = buf.getvalue()
    return ExtractedPage(
        number=1,
        width=float(width),
        height=float(height),
        blocks=blocks,
        image_png=image_png,
        has_text_layer=False,
        ocr_used=ocr_used,
        dpi=round(72 * shown.width / width, 3) if image_png is not None else None,
    )


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright; 5-8 swap width and height)."""
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block is no reason to reject the image
        return 1


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    w, h = img.size
    return (h, w) if _orientation(img) in (5, 6, 7, 8) else (w, h)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return img.point(lambda v: v / 256).convert("L").convert("RGB")
    return img.convert("RGB")


def _image_too_large(
    name: str, filename: str, size: tuple[int, int] | None, options: ExtractOptions, detail: str = ""
) -> ImageTooLargeError:
    dims = f" ({size[0]:,} x {size[1]:,} pixels)" if size else ""
    if not size and (m := re.search(r"\((\d+) pixels\)", detail)):  # Pillow: "Image size (N pixels) exceeds ..."
        dims = f" ({int(m.group(1)):,} pixels)"
    return ImageTooLargeError(
        f"{name} is too large to process safely{dims}; at most {options.max_image_pixels:,} pixels are accepted. "
        "Downscale it and upload again.",
        filename=filename,
    )


# ----- text files --------------------------------------------------------------------------------


def _decode_text(data: bytes) -> str | None:
    """Decode text files (UTF-8/UTF-16 with BOM, UTF-8, cp1252); None for binary content."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:8192]:
        return None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    sample = text[:8192]
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f\v")
    if controls > max(2, len(sample) // 100):
        return None
    return text


_MD_HEADING = re.compile(r"(#{1,6}\s[^\n]*)(\n#{1,6}\s[^\n]*)*")
_MD_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _text_pages(data: bytes, filename: str, options: ExtractOptions) -> list[list[Block]]:
    text = _decode_text(data)
    if text is None:  # detect_kind said text; cannot happen, but never mis-read binary
        raise UnsupportedDocumentError(f"{_display_name(filename)} is not a text file.", filename=filename)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = _paragraph_blocks(text, options.text_page_chars)
    if not paragraphs:
        raise EmptyDocumentError(f"{_display_name(filename)} contains no text.", filename=filename)
    pages: list[list[Block]] = [[]]
    size = 0
    for block in paragraphs:
        if pages[-1] and size + len(block.text) > options.text_page_chars:
            pages.append([])
            size = 0
        pages[-1].append(block)
        size += len(block.text) + 2
    if len(pages) > options.max_pages:
        raise TooManyPagesError(
            f"{_display_name(filename)} is too long ({len(pages):,} pages of ~{options.text_page_chars:,} characters); "
            f"at most {options.max_pages:,} pages are accepted. Split it into smaller files.",
            filename=filename,
        )
    return pages


def _paragraph_blocks(text: str, max_chars: int) -> list[Block]:
    """Paragraphs (blank-line separated) as blocks; pipe tables as table blocks; long paragraphs split."""
    blocks: list[Block] = []
    zero = (0.0, 0.0, 0.0, 0.0)
    for para in re.split(r"\n[ \t]*\n", text):
        lines = para.split("\n")
        # Split the paragraph into runs of table lines and other lines.
        runs: list[tuple[bool, list[str]]] = []
        i = 0
        while i < len(lines):
            if lines[i].strip().startswith("|") and i + 1 < len(lines) and _MD_TABLE_SEPARATOR.match(lines[i + 1]):
                j = i + 2
                while j < len(lines) and lines[j].strip().startswith("|"):
                    j += 1
                runs.append((True, lines[i:j]))
                i = j
                continue
            if runs and not runs[-1][0]:
                runs[-1][1].append(lines[i])
            else:
                runs.append((False, [lines[i]]))
            i += 1
        for is_table, run in runs:
            chunk = "\n".join(line.rstrip() for line in run).strip("\n")
            if not chunk.strip():
                continue
            if is_table:
                blocks.append(Block(chunk.strip(), zero, "table"))
            else:
                blocks.extend(Block(piece, zero, "text") for piece in _split_long(chunk.strip(), max_chars))
    # A heading alone is no passage: keep it with what follows (same page, same chunk).
    merged: list[Block] = []
    for block in blocks:
        if merged and merged[-1].kind == "text" and _MD_HEADING.fullmatch(merged[-1].text) and block.kind == "text":
            merged[-1] = Block(f"{merged[-1].text}\n{block.text}", zero, "text")
        else:
            merged.append(block)
    return merged


def _split_long(text: str, max_chars: int) -> list[str]:
    """Split a paragraph longer than ``max_chars`` at line, then sentence, then word boundaries."""
    if len(text) <= max_chars:
        return [text]
    for pattern in (r"(?<=\n)", r"(?<=[.!?])\s+", r"\s+"):
        pieces = [p for p in re.split(pattern, text) if p.strip()]
        if len(pieces) > 1:
            out: list[str] = []
            current = ""
            for piece in pieces:
                candidate = f"{current} {piece}".strip() if pattern != r"(?<=\n)" else current + piece
                if current and len(candidate) > max_chars:
                    out.append(current.strip())
                    current = piece
                else:
                    current = candidate
            if current.strip():
                out.append(current.strip())
            return [p for piece in out for p in _split_long(piece, max_chars)]
    return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]


# ----- small helpers -----------------------------------------------------------------------------


_WS = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_LIST_START = re.compile(r"^([\u2022\u00b7\u25aa\u25cf\u2023\u2043\u2219*•◦▪-]\s|\(?\d{1,3}[.)]\s|[a-z][.)]\s)")


def _clean_line(text: str) -> str:
    return _WS.sub(" ", text).strip()


def _join_lines(lines: list[str]) -> str:
    """Visual lines back to running text; list items keep their own line; ``infor-`` + ``mation`` joins."""
    out = ""
    for line in lines:
        if not out:
            out = line
        elif _LIST_START.match(line):
            out += "\n" + line
        elif out.endswith("-") and len(out) > 1 and out[-2].isalpha() and line[:1].islower():
            out += line
        else:
            out += " " + line
    return out


def _has_text(text: str) -> bool:
    visible = [ch for ch in text if not ch.isspace()]
    if not visible:
        return False
    # Text drawn with fonts lacking a Unicode map comes out as U+FFFD: that is no usable text layer.
    return sum(ch == "\ufffd" for ch in visible) <= len(visible) // 2


def _bbox(rect: pymupdf.Rect) -> tuple[float, float, float, float]:
    return (round(rect.x0, 2), round(rect.y0, 2), round(rect.x1, 2), round(rect.y1, 2))


def _display_name(filename: str) -> str:
    base = os.path.basename(filename or "") or "The file"
    return f"'{base}'" if filename else base


def _short(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _damaged_page(filename: str, number: int, e: BaseException) -> CorruptDocumentError:
    return CorruptDocumentError(
        f"{_display_name(filename)}: page {number} is damaged and could not be read ({_short(e)}). "
        "Re-export the PDF and upload it again.",
        filename=filename,
    )


__all__ = [
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
