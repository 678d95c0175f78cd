"""Image decoding and composition shared by inference providers and agents.

Images arrive inline as OpenAI ``image_url`` data URLs. The server is meant
for on-prem sites with no egress, so it never fetches remote URLs (that would
also be a server-side request forgery hole). Every decode is bounded: the
encoded size (413), the pixel count before any pixel is decompressed (413,
the guard against decompression bombs) and the decoders allowed (PNG, JPEG,
WebP, GIF only). Anything undecodable is the client's fault (400).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from collections.abc import Iterable, Sequence

from PIL import Image, ImageOps, UnidentifiedImageError

from vistack.api.errors import BadRequestError, PayloadTooLargeError

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""Decoded bytes per image; a 300 dpi scanned page as PNG is a few MB."""

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
"""Pixels per image; an A4 page at 600 dpi is ~35 MP. Bigger is almost surely a bomb or a mistake."""

MLLAMA_MAX_SIDE = 1120
"""Llama 3.2 Vision's tile budget: up to 4 tiles of 560 px, so at most 1120 x 1120 on the square layout."""

MEDIA_TYPES: dict[str, str] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
_FORMATS = sorted(set(MEDIA_TYPES.values()))
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*),", re.IGNORECASE)


def decode_image_url(
    url: str,
    *,
    index: int = 1,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Image.Image:
    """Decode one ``data:image/...;base64,...`` URL to an RGB image.

    ``index`` (1-based) names the image in error messages, so a client sending
    several knows which one failed.
    """
    where = f"image {index}"
    stripped = url.strip()
    lowered = stripped[:16].lower()
    if lowered.startswith(("http://", "https://")):
        raise BadRequestError(
            f"{where}: remote image URLs are not fetched (this server runs on-prem without outbound network "
            "access). Send the image inline as a data URL instead: data:image/png;base64,<base64 bytes>.",
            code="unsupported_image_url",
            param="image_url",
        )
    match = _DATA_URL.match(stripped)
    if not match:
        scheme = stripped.split(":", 1)[0][:20] if ":" in stripped[:32] else "raw text"
        raise BadRequestError(
            f"{where}: expected a data URL (data:image/png;base64,...), got {scheme!r}. "
            "Raw base64, file paths and other URL schemes are not accepted.",
            code="invalid_image_url",
            param="image_url",
        )
    mime = (match.group("mime") or "").lower()
    params = [p.strip().lower() for p in match.group("params").split(";") if p.strip()]
    if mime not in MEDIA_TYPES:
        allowed = ", ".join(k for k in MEDIA_TYPES if k != "image/jpg")
        raise BadRequestError(
            f"{where}: unsupported media type {mime or '(none)'!r}; send one of {allowed}.",
            code="unsupported_image_type",
            param="image_url",
        )
    if "base64" not in params:
        raise BadRequestError(
            f"{where}: the data URL must be base64-encoded (data:{mime};base64,...).", param="image_url"
        )
    payload = stripped[match.end() :]
    # Reject before decoding: 4 base64 characters carry 3 bytes.
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise _too_many_bytes(where, len(payload) * 3 // 4, max_bytes)
    try:
        payload = re.sub(r"\s+", "", payload)
        payload = payload.replace("-", "+").replace("_", "/")  # tolerate the URL-safe alphabet
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequestError(
            f"{where} could not be decoded: invalid base64 ({e}).", code="invalid_base64_image", param="image_url"
        ) from e
    return decode_image_bytes(data, index=index, max_bytes=max_bytes, max_pixels=max_pixels)


def decode_image_bytes(
    data: bytes,
    *,
    index: int = 1,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Image.Image:
    """Decode encoded image bytes (PNG/JPEG/WebP/GIF) to RGB, enforcing the same limits.

    Transparent areas become white (documents on a transparent background
    would otherwise turn black) and EXIF rotation is applied (phone photos).
    Animated images keep their first frame.
    """
    where = f"image {index}"
    if len(data) > max_bytes:
        raise _too_many_bytes(where, len(data), max_bytes)
    if not data:
        raise BadRequestError(f"{where} could not be decoded: it is empty.", code="empty_image_file", param="image_url")
    try:
        img = Image.open(io.BytesIO(data), formats=_FORMATS)  # reads the header only
        width, height = img.size
        if width * height > max_pixels:
            raise _too_many_pixels(where, width, height, max_pixels)
        img.load()
        return _to_rgb(ImageOps.exif_transpose(img))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PayloadTooLargeError(
            f"{where} is too large to decode safely ({e}). This server accepts at most {max_pixels:,} pixels "
            "per image (max_image_pixels); downscale it before sending.",
            code="image_too_large",
            param="image_url",
        ) from e
    except UnidentifiedImageError as e:
        raise BadRequestError(
            f"{where} could not be decoded: not a PNG, JPEG, WebP or GIF image.",
            code="invalid_image_format",
            param="image_url",
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadRequestError(f"{where} could not be decoded: {e}", code="image_parse_error", param="image_url") from e


def decode_images(
    urls: Iterable[str],
    *,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> list[Image.Image]:
    """Decode several data URLs, numbering them from 1 in errors."""
    return [
        decode_image_url(u, index=i, max_bytes=max_bytes, max_pixels=max_pixels) for i, u in enumerate(urls, start=1)
    ]


def image_to_data_url(image: Image.Image, fmt: str = "PNG") -> str:
    """Encode an image as a data URL (how agents hand page images to a vision model)."""
    fmt = fmt.upper()
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return bytes_to_data_url(buf.getvalue(), "image/jpeg" if fmt == "JPEG" else f"image/{fmt.lower()}")


def bytes_to_data_url(data: bytes, mime: str) -> str:
    """Already-encoded image bytes as a data URL, without decoding them."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def stitch_images(
    images: Sequence[Image.Image],
    max_side: int = MLLAMA_MAX_SIDE,
    *,
    gap: int = 8,
    background: str | tuple[int, int, int] = "white",
) -> Image.Image:
    """Compose page images into one grid image no larger than ``max_side`` x ``max_side``.

    Llama 3.2 Vision attends to one image per request, so several retrieved
    pages are shown as one picture. The grid shape (columns x rows) is the one
    that keeps the most pixels of the pages; each page keeps its aspect ratio,
    is only ever shrunk, and is centred in its cell on a white background.
    """
    if not images:
        raise ValueError("stitch_images needs at least one image")
    rgb = [_to_rgb(im) for im in images]
    if len(rgb) == 1:
        one = rgb[0].copy()
        one.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return one

    n = len(rgb)
    best: tuple[float, int, int, int] | None = None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        cell_w = (max_side - gap * (cols - 1)) // cols
        cell_h = (max_side - gap * (rows - 1)) // rows
        if cell_w < 1 or cell_h < 1:
            continue
        kept = sum((im.width * im.height) * min(1.0, cell_w / im.width, cell_h / im.height) ** 2 for im in rgb)
        candidate = (round(kept), -abs(cols - rows), cols, rows)  # ties: the squarer grid
        if best is None or candidate > best:
            best = candidate
    if best is None:
        raise ValueError(f"max_side={max_side} is too small for {n} images with gap={gap}")
    cols, rows = best[2], best[3]
    cell_w = (max_side - gap * (cols - 1)) // cols
    cell_h = (max_side - gap * (rows - 1)) // rows
    thumbs = []
    for im in rgb:
        t = im.copy()
        t.thumbnail((cell_w, cell_h), Image.Resampling.LANCZOS)
        thumbs.append(t)
    # Tight grid: each column as wide as its widest page, each row as tall as its tallest.
    col_w = [max(thumbs[i].width for i in range(c, n, cols)) for c in range(cols)]
    row_h = [max(t.height for t in thumbs[r * cols : (r + 1) * cols]) for r in range(rows)]
    canvas = Image.new("RGB", (sum(col_w) + gap * (cols - 1), sum(row_h) + gap * (rows - 1)), background)
    for i, t in enumerate(thumbs):
        r, c = divmod(i, cols)
        x0 = sum(col_w[:c]) + gap * c + (col_w[c] - t.width) // 2
        y0 = sum(row_h[:r]) + gap * r + (row_h[r] - t.height) // 2
        canvas.paste(t, (x0, y0))
    return canvas


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _too_many_bytes(where: str, size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{where} is {size:,} bytes; the limit is {limit:,} bytes (max_image_bytes). "
        "Downscale or compress it (JPEG) before sending.",
        code="image_too_large",
        param="image_url",
    )


def _too_many_pixels(where: str, width: int, height: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{where} is {width}x{height} = {width * height:,} pixels; the limit is {limit:,} pixels "
        "(max_image_pixels). Downscale it before sending; the model sees at most 1120x1120 anyway.",
        code="image_too_large",
        param="image_url",
    )
