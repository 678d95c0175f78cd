"""vistack.images: data URLs only, bounded decoding, errors with the right status, stitching."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from vistack.api import BadRequestError, PayloadTooLargeError
from vistack.images import decode_image_bytes, decode_image_url, decode_images, image_to_data_url, stitch_images


def _url(img: Image.Image, fmt: str = "PNG", mime: str | None = None) -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return f"data:{mime or 'image/' + fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode()}"


@pytest.mark.parametrize(
    "fmt,mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")]
)
def test_decodes_supported_formats_to_rgb(fmt: str, mime: str) -> None:
    img = decode_image_url(_url(Image.new("RGB", (40, 30), (200, 10, 10)), fmt, mime))
    assert img.mode == "RGB" and img.size == (40, 30)


def test_transparency_becomes_white_and_whitespace_is_tolerated() -> None:
    url = _url(Image.new("RGBA", (8, 8), (0, 0, 0, 0)))
    head, data = url.split(",", 1)
    wrapped = head + "," + "\n".join(data[i : i + 60] for i in range(0, len(data), 60))
    assert decode_image_url(wrapped).getpixel((0, 0)) == (255, 255, 255)


def test_round_trip_helper() -> None:
    img = Image.new("RGB", (5, 7), "green")
    assert decode_image_url(image_to_data_url(img)).size == (5, 7)


def test_remote_urls_are_rejected_with_the_reason() -> None:
    with pytest.raises(BadRequestError) as e:
        decode_image_url("https://example.com/chart.png")
    assert e.value.status_code == 400
    assert "not fetched" in e.value.message and "data:image/png;base64" in e.value.message


@pytest.mark.parametrize(
    "url",
    [
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB",  # raw base64
        "file:///etc/passwd",
        "data:image/png,notbase64",
        "data:text/plain;base64,aGVsbG8=",
        "data:image/png;base64,!!!notbase64!!!",
    ],
)
def test_malformed_urls_are_400(url: str) -> None:
    with pytest.raises(BadRequestError) as e:
        decode_image_url(url)
    assert e.value.status_code == 400


def test_garbage_and_truncated_images_are_400_naming_the_image() -> None:
    good = _url(Image.new("RGB", (64, 64), "red"))
    garbage = "data:image/png;base64," + base64.b64encode(b"definitely not an image").decode()
    with pytest.raises(BadRequestError, match="image 2 could not be decoded"):
        decode_images([good, garbage])
    buf = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert("RGB").save(buf, "PNG")
    truncated = buf.getvalue()[: len(buf.getvalue()) // 2]
    with pytest.raises(BadRequestError, match="image 1 could not be decoded"):
        decode_image_bytes(truncated)


def test_too_many_bytes_is_413_before_decoding() -> None:
    url = _url(Image.effect_noise((200, 200), 80).convert("RGB"))
    with pytest.raises(PayloadTooLargeError) as e:
        decode_image_url(url, max_bytes=1000)
    assert e.value.status_code == 413 and "1,000 bytes" in e.value.message


def test_pixel_bomb_is_413_naming_the_limit() -> None:
    buf = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buf, "PNG")  # 36 MP that compresses to a few KB
    with pytest.raises(PayloadTooLargeError) as e:
        decode_image_bytes(buf.getvalue(), max_pixels=10_000_000)
    assert e.value.status_code == 413 and "10,000,000" in e.value.message


def test_pil_decompression_bomb_error_is_413() -> None:
    buf = io.BytesIO()
    Image.new("1", (20000, 10000)).save(buf, "PNG")  # 200 MP: beyond PIL's own hard limit
    with pytest.raises(PayloadTooLargeError):
        decode_image_bytes(buf.getvalue(), max_pixels=10**12)


def test_stitch_fits_the_budget_and_keeps_aspect_ratio() -> None:
    pages = [Image.new("RGB", (850, 1100), c) for c in ("red", "green", "blue")]
    grid = stitch_images(pages)
    assert max(grid.size) <= 1120 and grid.mode == "RGB"
    assert grid.getpixel((0, 0)) == (255, 0, 0)
    wide = stitch_images([Image.new("RGB", (2000, 500), "red"), Image.new("RGB", (2000, 500), "blue")])
    assert wide.width == 1120 and wide.height < 1120  # stacked vertically: landscape pages stay large
    small = stitch_images([Image.new("RGB", (100, 100), "red")] * 4)
    assert small.size == (208, 208)  # never upscaled; squarest grid, 8 px gaps
    single = stitch_images([Image.new("RGB", (4000, 1000), "red")])
    assert single.size == (1120, 280)
    with pytest.raises(ValueError):
        stitch_images([])
