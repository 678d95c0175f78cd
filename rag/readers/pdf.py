"""PDF pages with PyMuPDF: text blocks, tables, a rendered image, OCR for scans.

``page.get_text("dict")`` gives the text layer, :mod:`.tables` the tables,
``page.get_pixmap()`` the page image and :mod:`.ocr` the text of pages
without a usable text layer, or scans whose only text is a stamp (fewer than
``SPARSE_TEXT_CHARS`` characters on a page mostly covered by images). Pixel
bombs (huge pages, huge embedded images) are refused before anything is
decoded. PyMuPDF must not run on two threads at once: one extraction per
thread.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import pymupdf

from .content import check_page_content
from .errors import (
    CorruptDocumentError,
    DocumentError,
    EncryptedDocumentError,
    ImageTooLargeError,
    TooManyPagesError,
    display_name,
    short_reason,
)
from .layout import assemble_blocks, center, dict_lines, is_usable_text, merge_by_position
from .model import MIME_TYPES, TEXT_LAYER_SAMPLE, Block, DocumentInfo, ExtractedPage, ExtractOptions
from .ocr import ocr_available, ocr_pdf_page
from .png import encode_png
from .tables import find_tables

PdfSource = bytes | os.PathLike
"""The document's bytes, or the path of a file holding them (MuPDF then reads pages from disk as needed)."""


def open_pdf(data: PdfSource, filename: str, options: ExtractOptions) -> pymupdf.Document:
    """An open document that is readable, unencrypted and within ``max_pages`` (closed again on failure)."""
    name = display_name(filename)
    try:
        if isinstance(data, (bytes, bytearray, memoryview)):
            doc = pymupdf.open(stream=data, filetype="pdf")
        else:  # a path: the file is not read into memory as a whole
            doc = pymupdf.open(os.fspath(data), filetype="pdf")
    except Exception as e:  # pymupdf.FileDataError, RuntimeError, ...
        reason = short_reason(e)
        if not isinstance(data, (bytes, bytearray, memoryview)):  # MuPDF names the stored file: a server path
            reason = reason.replace(os.fspath(data), os.path.basename(filename or "") or "the file")
        raise CorruptDocumentError(
            f"{name} could not be opened as a PDF: the file is damaged or truncated ({reason}). "
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


def pdf_info(data: PdfSource, filename: str, options: ExtractOptions, *, ocr_ok: bool) -> DocumentInfo:
    """Open and check a PDF, sampling the text layer of its first ``TEXT_LAYER_SAMPLE`` pages only."""
    doc = open_pdf(data, filename, options)
    try:
        sampled = min(doc.page_count, TEXT_LAYER_SAMPLE)
        with_text = 0
        for i in range(sampled):
            try:
                page = doc.load_page(i)
                check_page_content(page, filename, options.max_content_bytes)
                if is_usable_text(page.get_text("text", flags=pymupdf.TEXTFLAGS_TEXT)):
                    with_text += 1
            except DocumentError:
                raise
            except Exception as e:  # MuPDF raises its own types on damaged content streams
                raise _damaged_page(filename, i + 1, e) from e
        return DocumentInfo(
            filename=filename,
            kind="pdf",
            mime_type=MIME_TYPES["pdf"],
            page_count=doc.page_count,
            has_text_layer=with_text > 0,
            pages_sampled=sampled,
            pages_with_text=with_text,
            ocr_available=ocr_ok,
            repaired=bool(getattr(doc, "is_repaired", False)),
        )
    finally:
        doc.close()


def extract_pdf(data: PdfSource, filename: str, options: ExtractOptions) -> Iterator[ExtractedPage]:
    """Page by page; a page MuPDF cannot read is a ``CorruptDocumentError`` naming it."""
    doc = open_pdf(data, filename, options)
    try:
        for index in range(doc.page_count):
            try:
                page = doc.load_page(index)
                result = _pdf_page(page, filename, options)
                result.of_pages = doc.page_count
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

    # Check the content and pixel budgets before any expensive work, so a bomb fails fast.
    check_page_content(page, filename, options.max_content_bytes)
    dpi = _fit_dpi(rect.width, rect.height, options.dpi, options, filename, number) if options.render_images else None

    if options.render_images or options.ocr:  # both decode the page's images
        _check_embedded_images(page, filename, options)

    lines = dict_lines(page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT, sort=False))
    native_text = " ".join(text for _, _, text in lines)
    has_text = is_usable_text(native_text)
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
        tables = find_tables(page, options.tables) if options.tables != "none" else []
        blocks = assemble_blocks(lines, tables, to_display, "text")
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
                line for line in dict_lines(textdict) if not any(center(line[1]) in r for r in native_boxes)
            ]
            blocks = merge_by_position(blocks, assemble_blocks(ocr_lines, [], to_display, "ocr"))

    image_png = encode_png(pix) if pix is not None else None
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


def _check_embedded_images(page: pymupdf.Page, filename: str, options: ExtractOptions) -> None:
    """A PDF can carry a pixel bomb too: an image XObject whose declared size is huge.

    ``get_images()`` reads the declared sizes from the page's resources without decoding anything.
    """
    for image in page.get_images(full=False):
        width, height = int(image[2] or 0), int(image[3] or 0)
        if width * height > options.max_image_pixels:
            raise ImageTooLargeError(
                f"{display_name(filename)}: page {page.number + 1} contains an image too large to process safely "
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
            f"{display_name(filename)}: page {number} is too large to render safely "
            f"({width_pt / 72:,.0f} x {height_pt / 72:,.0f} inches; even {options.min_dpi:g} dpi exceeds "
            f"{options.max_page_pixels:,} pixels). Resize the page and upload again.",
            filename=filename,
        )
    return fitted


def _damaged_page(filename: str, number: int, e: BaseException) -> CorruptDocumentError:
    return CorruptDocumentError(
        f"{display_name(filename)}: page {number} is damaged and could not be read ({short_reason(e)}). "
        "Re-export the PDF and upload it again.",
        filename=filename,
    )
