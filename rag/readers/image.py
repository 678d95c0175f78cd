"""PNG and JPEG documents: one page whose image is the picture itself.

Pillow reads the header first, so a pixel bomb is refused before any pixel
is decompressed; the EXIF orientation is applied so boxes match what a
person sees. Text comes from OCR when language data is installed.
"""

from __future__ import annotations

import io
import math
import re

import pymupdf
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CorruptDocumentError, ImageTooLargeError, display_name, short_reason
from .layout import assemble_blocks, dict_lines
from .model import MIME_TYPES, Block, ExtractedPage, ExtractOptions
from .ocr import ocr_available, ocr_image


def image_header(data: bytes, mime: str, filename: str, options: ExtractOptions) -> Image.Image:
    """Open lazily (header only) and enforce the pixel cap before anything is decompressed."""
    name = display_name(filename)
    fmt = "PNG" if mime == MIME_TYPES["png"] else "JPEG"
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as e:  # Pillow's own guard (2 x Image.MAX_IMAGE_PIXELS) fired first
        raise _image_too_large(name, filename, None, options, detail=str(e)) from e
    except UnidentifiedImageError as e:  # its message names a BytesIO object: say what is wrong instead
        raise CorruptDocumentError(
            f"{name} could not be read as a {fmt} image: its header is damaged or describes no image. "
            "Re-export it and upload again.",
            filename=filename,
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptDocumentError(
            f"{name} could not be read as a {fmt} image: {short_reason(e)}.", filename=filename
        ) from e
    width, height = img.size
    if width * height > options.max_image_pixels:
        raise _image_too_large(name, filename, (width, height), options)
    if width < 1 or height < 1:
        raise CorruptDocumentError(f"{name} has no pixels ({width} x {height}).", filename=filename)
    return img


def extract_image(data: bytes, mime: str, filename: str, options: ExtractOptions) -> ExtractedPage:
    """The image as one upright page: OCR blocks in original pixels, a PNG capped at ``max_page_pixels``."""
    name = display_name(filename)
    img = image_header(data, mime, filename, options)
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
            f"{name} could not be decoded: {short_reason(e)}. The image may be truncated.", filename=filename
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
            blocks = assemble_blocks(dict_lines(textdict), [], pymupdf.Matrix(factor, factor), "ocr")

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
