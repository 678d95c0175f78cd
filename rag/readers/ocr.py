"""OCR through MuPDF's built-in Tesseract, for pages and images without a text layer.

MuPDF links Tesseract itself; what it needs at run time is the language data
(``eng.traineddata`` ...), found via an explicit folder, ``TESSDATA_PREFIX``,
or an installed ``tesseract`` (Debian: ``apt-get install tesseract-ocr``).
Availability is looked up once per process and cached; when OCR is missing or
fails, callers keep the page as an image only, so ingestion never depends on
it. Results are PyMuPDF ``get_text("dict")`` dictionaries, the same shape as
a native text layer, so one code path turns both into blocks.
"""

from __future__ import annotations

import functools
import logging
import os

import pymupdf
from PIL import Image

logger = logging.getLogger(__name__)

_TEXT_FLAGS = pymupdf.TEXTFLAGS_TEXT


def tessdata_dir(tessdata: str | None = None) -> str | None:
    """The Tesseract language-data folder MuPDF will use, or None when OCR is unavailable (cached)."""
    return _find_tessdata(tessdata)


@functools.cache
def _find_tessdata(tessdata: str | None) -> str | None:
    if not hasattr(pymupdf.Pixmap, "pdfocr_tobytes"):  # a MuPDF build without Tesseract
        return None
    finder = getattr(pymupdf, "get_tessdata", None)
    try:
        folder = finder(tessdata) if finder else (tessdata or os.environ.get("TESSDATA_PREFIX"))
    except Exception as e:  # noqa: BLE001 - RuntimeError("No tessdata specified and Tesseract is not installed")
        logger.info("OCR unavailable: %s", str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        return None
    if not folder or not os.path.isdir(folder):
        return None
    return folder


def ocr_available(language: str = "eng", tessdata: str | None = None) -> bool:
    """True when every language in ``language`` (``eng``, ``eng+deu``) has its ``.traineddata`` installed."""
    folder = tessdata_dir(tessdata)
    if folder is None:
        return False
    langs = [lang for lang in language.split("+") if lang]
    return bool(langs) and all(os.path.isfile(os.path.join(folder, f"{lang}.traineddata")) for lang in langs)


def ocr_pdf_page(page: pymupdf.Page, *, language: str, dpi: float, tessdata: str | None = None) -> dict | None:
    """OCR a whole PDF page rendered at ``dpi``; a text dict in the page's (unrotated) coordinates.

    None when OCR failed (logged once as a warning).
    """
    try:
        textpage = page.get_textpage_ocr(
            flags=_TEXT_FLAGS, language=language, dpi=max(1, round(dpi)), full=True, tessdata=tessdata_dir(tessdata)
        )
        return page.get_text("dict", textpage=textpage, flags=_TEXT_FLAGS, sort=False)
    except Exception as e:  # noqa: BLE001 - OCR is best effort: the page stays an image
        _failed(e)
        return None


def ocr_image(img: Image.Image, *, language: str, tessdata: str | None = None) -> dict | None:
    """OCR an RGB image; a text dict whose coordinates are the image's pixels. None when OCR failed."""
    try:
        rgb = img if img.mode == "RGB" else img.convert("RGB")
        pix = pymupdf.Pixmap(pymupdf.csRGB, rgb.width, rgb.height, rgb.tobytes(), False)
        pix.set_dpi(72, 72)  # one point per pixel on the OCR'd page
        pdf = pymupdf.open(
            stream=pix.pdfocr_tobytes(language=language, tessdata=tessdata_dir(tessdata)), filetype="pdf"
        )
        try:
            page = pdf[0]
            factor = rgb.width / page.rect.width if page.rect.width else 1.0
            matrix = pymupdf.Matrix(factor, factor)
            textdict = page.get_text("dict", flags=_TEXT_FLAGS, sort=False)
        finally:
            pdf.close()
    except Exception as e:  # noqa: BLE001 - OCR is best effort: the page stays an image
        _failed(e)
        return None
    if factor != 1.0:
        for block in textdict.get("blocks", ()):
            for line in block.get("lines", ()):
                line["bbox"] = tuple(pymupdf.Rect(line["bbox"]) * matrix)
    return textdict


_warned = False


def _failed(e: Exception) -> None:
    global _warned
    message = str(e).strip() or type(e).__name__
    if not _warned:
        logger.warning("OCR failed (%s); pages without a text layer are kept as images only", message[:200])
        _warned = True
    else:
        logger.debug("OCR failed: %s", message[:200])


__all__ = ["ocr_available", "ocr_image", "ocr_pdf_page", "tessdata_dir"]
