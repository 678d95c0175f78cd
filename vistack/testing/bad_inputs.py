"""Hostile and broken inputs for fuzz tests: documents, images, filenames and request bodies.

Every builder is deterministic (seeded bytes, no timestamps; the encrypted PDF
reuses :func:`vistack.testing.documents.encrypted_pdf`, whose AES IV is random)
and fast: :func:`bad_documents` builds all of them, the 10,000-page PDF
included, in about a second.

Documents come as :class:`BadDocument`: the bytes to upload plus what the
server must make of them. ``expect="failed"`` means the file must be refused:
a 4xx at upload or attach, or a vector-store file that ends ``failed`` with a
non-empty ``last_error`` whose message names the problem (one of ``hints``).
``expect="any"`` is for inputs a lenient reader may accept (a cp1252 text
file): ``completed`` or ``failed``, but never a 5xx and never stuck.

    >>> cases = bad_documents()
    >>> cases["encrypted_pdf"].hints
    ('password',)
"""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from vistack.testing import documents as docs

SEED = 20251110

# ----- documents ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadDocument:
    """One broken file: ``filename`` and ``data`` to upload, and what the server must answer."""

    key: str
    filename: str
    data: bytes
    mime_type: str
    expect: Literal["failed", "any"] = "failed"
    hints: tuple[str, ...] = ()
    """Lower-case words one of which the ``last_error`` message (or the 4xx message) must contain."""
    note: str = ""


def _rng(salt: str) -> random.Random:
    return random.Random(f"{SEED}:{salt}")


def random_bytes(size: int, salt: str = "random") -> bytes:
    """``size`` seeded pseudo-random bytes (never a known file signature: the first byte is 0x01)."""
    return b"\x01" + _rng(salt).randbytes(size - 1)


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A classic-xref PDF from ``objects`` (object ``i + 1`` is ``objects[i]``), offsets exact."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def _stream(dictionary: bytes, payload: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(payload) + payload + b"\nendstream"


def _deflate_zeros(size: int, fill: bytes = b" ", level: int = 9) -> bytes:
    """``size`` bytes of ``fill`` deflated (~1000:1 at level 9, ~200:1 at level 1, which is 3x faster),
    built in 1 MiB steps without holding the inflated data."""
    comp = zlib.compressobj(level)
    block = fill * (1024 * 1024 // len(fill))
    parts = []
    left = size
    while left > 0:
        piece = block if left >= len(block) else block[:left]
        parts.append(comp.compress(piece))
        left -= len(piece)
    parts.append(comp.flush())
    return b"".join(parts)


def corrupt_pdf() -> BadDocument:
    """A ``%PDF-`` header followed by 16 KiB of noise: no objects, no xref, no pages."""
    data = b"%PDF-1.7\n" + random_bytes(16 * 1024, "corrupt-pdf") + b"\n%%EOF\n"
    return BadDocument("corrupt_pdf", "corrupt.pdf", data, "application/pdf",
                       hints=("damaged", "could not be opened", "no readable pages"))


def mangled_pdf() -> BadDocument:
    """The invoice with its cross-reference table, trailer and page tree overwritten by noise."""
    data = bytearray(docs.invoice_pdf().data)
    rng = _rng("mangled")
    for start in range(64, len(data), 97):  # the header survives  # every 97th byte, and a dense hole at the end
        data[start] = rng.randrange(256)
    data[-600:] = rng.randbytes(600)
    data = bytes(data).replace(b"/Type /Pages", b"/Type /Xyzzy").replace(b"/Type/Pages", b"/Type/Xyzzy")
    return BadDocument("mangled_pdf", "mangled-invoice.pdf", data, "application/pdf", expect="any",
                       note="MuPDF may repair some of it; completed or failed are both fine, a 5xx is not")


def truncated_pdf() -> BadDocument:
    d = docs.truncated_pdf()
    return BadDocument("truncated_pdf", d.filename, d.data, d.mime_type,
                       hints=("damaged", "truncated", "could not be opened", "no readable pages"))


def encrypted_pdf() -> BadDocument:
    d = docs.encrypted_pdf()
    return BadDocument("encrypted_pdf", d.filename, d.data, d.mime_type, hints=("password",))


def zero_page_pdf() -> BadDocument:
    """A well-formed PDF whose page tree is empty (``/Count 0``); PyMuPDF refuses to write one, so by hand."""
    data = _pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    return BadDocument("zero_page_pdf", "no-pages.pdf", data, "application/pdf",
                       hints=("no readable pages", "no pages", "damaged", "empty"))


def empty_pdf() -> BadDocument:
    d = docs.empty_file("empty.pdf")
    return BadDocument("empty_pdf", d.filename, d.data, d.mime_type, hints=("empty", "0 bytes"))


def empty_text() -> BadDocument:
    return BadDocument("empty_txt", "empty.txt", b"", "text/plain", hints=("empty", "0 bytes"))


def whitespace_text() -> BadDocument:
    return BadDocument("whitespace_txt", "blank.txt", b" \n\t\r\n   \n" * 100, "text/plain",
                       hints=("no text", "empty"))


def flate_bomb_pdf(inflated_bytes: int = 256 * 1024 * 1024) -> BadDocument:
    """One page whose content stream is ~1.2 MB of deflate that inflates to ``inflated_bytes`` (256 MiB)
    of ``0 0 m`` path operators: a decompression bomb aimed at the text extractor and the renderer
    (tens of seconds of CPU per pass unless the reader caps the content it decodes)."""
    content = _stream(b"/Filter /FlateDecode", _deflate_zeros(inflated_bytes, b"0 0 m\n", level=1))
    data = _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        content,
    ])
    return BadDocument("flate_bomb_pdf", "flate-bomb.pdf", data, "application/pdf",
                       hints=("too complex", "too large"),
                       note=f"content stream inflates {len(data):,} -> {inflated_bytes:,} bytes")


def expansion_bomb_pdf(depth: int = 9, fanout: int = 10, *, in_annotation: bool = False) -> BadDocument:
    """A "billion laughs" PDF: form XObject 1 draws form 2 ``fanout`` times, which draws form 3 ``fanout``
    times, ... ``depth`` levels: ``fanout ** depth`` (10^9) draws of a line from a ~2 KB file.

    ``in_annotation`` hangs the chain on an annotation's appearance stream instead of the page content
    (renderers draw annotations with the page).
    """
    first_form = 5
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"]
    if in_annotation:
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Annots [%d 0 R] >>"
                       % (first_form + depth))
        objects.append(_stream(b"", b"BT ET"))
    else:
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                       b"/Resources << /XObject << /F %d 0 R >> >> >>" % first_form)
        objects.append(_stream(b"", b"/F Do " * fanout))
    for level in range(depth):
        number = first_form + level
        if level == depth - 1:
            body, resources = b"0 0 m 10 10 l S", b""
        else:
            body, resources = b"/F Do " * fanout, b"/Resources << /XObject << /F %d 0 R >> >>" % (number + 1)
        objects.append(_stream(b"/Type /XObject /Subtype /Form /BBox [0 0 10 10] " + resources, body))
    if in_annotation:
        objects.append(b"<< /Type /Annot /Subtype /Square /Rect [10 10 100 100] /AP << /N %d 0 R >> >>" % first_form)
    data = _pdf(objects)
    key = "expansion_bomb_annot_pdf" if in_annotation else "expansion_bomb_pdf"
    return BadDocument(key, key.removesuffix("_pdf").replace("_", "-") + ".pdf", data, "application/pdf",
                       hints=("too complex", "too large"), note=f"{fanout}^{depth} form draws from {len(data):,} bytes")


def image_bomb_pdf(width: int = 100_000, height: int = 100_000) -> BadDocument:
    """One page drawing an image XObject that declares ``width`` x ``height`` pixels (10 gigapixels)
    in a few KiB of deflate: decoding it would need 10 GB."""
    image = _stream(
        b"/Type /XObject /Subtype /Image /Width %d /Height %d /BitsPerComponent 8 /ColorSpace /DeviceGray "
        b"/Filter /FlateDecode" % (width, height),
        _deflate_zeros(4 * 1024 * 1024, b"\x00"),
    )
    content = _stream(b"", b"q 600 0 0 780 6 6 cm /Im0 Do Q")
    data = _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
         b"/Resources << /XObject << /Im0 5 0 R >> >> >>"),
        content,
        image,
    ])
    return BadDocument("image_bomb_pdf", "image-bomb.pdf", data, "application/pdf", hints=("too large",))


def mediabox_bomb_pdf() -> BadDocument:
    """One page whose MediaBox is 10^7 points on a side (PDF allows 14,400): rendering it is a pixel bomb."""
    data = _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10000000 10000000] /Contents 4 0 R >>",
        _stream(b"", b"BT /F1 12 Tf 72 72 Td (big) Tj ET"),
    ])
    return BadDocument("mediabox_bomb_pdf", "mediabox-bomb.pdf", data, "application/pdf", expect="any",
                       hints=("too large",), note="MuPDF may clamp the box; then it renders at a lower dpi")


def many_pages_pdf(pages: int = 10_000) -> BadDocument:
    """``pages`` small pages sharing one content stream and font (~0.1 s, ~0.7 MB for 10,000 pages).

    Written by hand: PyMuPDF's ``insert_pdf`` doubling takes seconds at this size, and the file is the
    same kind of PDF a report generator writes (one page object per page, a flat page tree).
    """
    first_page = 5
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
        + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        _stream(b"", b"BT /F1 12 Tf 20 100 Td (page) Tj ET"),
    ]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << /Font << /F1 3 0 R >> >> >>"
    objects += [page] * pages
    data = _pdf(objects)
    return BadDocument("many_pages_pdf", f"{pages}-pages.pdf", data, "application/pdf", hints=("pages",),
                       note=f"{pages:,} pages, more than any sane max_pages")


def pixel_bomb_png() -> BadDocument:
    d = docs.pixel_bomb_png()
    return BadDocument("pixel_bomb_png", d.filename, d.data, d.mime_type, hints=("too large",),
                       note="IHDR says 100000 x 100000")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bytes(width: int, height: int, idat: bytes, color_type: int = 0, bit_depth: int = 8) -> bytes:
    """A PNG with the given header and raw IDAT payload (CRCs correct, content whatever ``idat`` is)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def inflate_bomb_png(side: int = 7000) -> BadDocument:
    """An RGBA PNG of ``side`` x ``side`` (49 MP, just under the default 50 MP cap) whose ~190 MB of pixels
    deflate to ~190 KB: within the pixel cap, so the reader decodes it (and must survive that)."""
    idat = _deflate_zeros(side * (side * 4 + 1), b"\x00", level=1)  # filter byte 0 and black pixels: all zeros
    return BadDocument("inflate_bomb_png", "inflate-bomb.png", png_bytes(side, side, idat, color_type=6),
                       "image/png", expect="any", hints=("too large",),
                       note="49 MP: refused by a smaller max_image_pixels, else decoded and downscaled")


def lying_png_header() -> BadDocument:
    """A real 64 x 64 PNG whose IHDR is rewritten to claim 100000 x 100000 (CRC fixed up)."""
    img = Image.new("L", (64, 64), 255)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr_at = data.index(b"IHDR")
    data[ihdr_at + 4 : ihdr_at + 12] = struct.pack(">II", 100_000, 100_000)
    crc = zlib.crc32(bytes(data[ihdr_at : ihdr_at + 4 + 13]))
    data[ihdr_at + 17 : ihdr_at + 21] = struct.pack(">I", crc)
    return BadDocument("lying_png_header", "lying.png", bytes(data), "image/png", hints=("too large",))


def lying_jpeg_header(width: int = 65_000, height: int = 65_000) -> BadDocument:
    """The slide JPEG with its SOF marker rewritten to claim ``width`` x ``height`` (4.2 gigapixels)."""
    data = bytearray(docs.slide_jpeg().data)
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        at = data.find(marker)
        if at >= 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            break
    else:  # pragma: no cover - Pillow always writes SOF0
        raise AssertionError("no SOF marker in the slide JPEG")
    return BadDocument("lying_jpeg_header", "lying.jpg", bytes(data), "image/jpeg", hints=("too large",))


def truncated_png() -> BadDocument:
    data = docs.slide_png().data
    return BadDocument("truncated_png", "truncated.png", data[: len(data) // 2], "image/png",
                       hints=("truncated", "could not be decoded", "could not be read"))


def truncated_jpeg() -> BadDocument:
    data = docs.slide_jpeg().data
    return BadDocument("truncated_jpeg", "truncated.jpg", data[: len(data) // 3], "image/jpeg", expect="any",
                       hints=("truncated", "could not be decoded", "could not be read"),
                       note="Pillow may decode a truncated JPEG's first scan lines")


def bad_idat_png() -> BadDocument:
    """A 100 x 100 PNG whose IDAT is noise, not zlib data."""
    data = png_bytes(100, 100, random_bytes(600, "idat"))
    return BadDocument("bad_idat_png", "bad-idat.png", data, "image/png",
                       hints=("could not be decoded", "truncated", "could not be read"))


def zero_size_png() -> BadDocument:
    data = png_bytes(0, 0, zlib.compress(b""))
    return BadDocument("zero_size_png", "zero.png", data, "image/png",
                       hints=("no pixels", "could not be read", "could not be decoded", "damaged"))


def random_pdf() -> BadDocument:
    return BadDocument("random_pdf", "random.pdf", random_bytes(32 * 1024, "pdf"), "application/pdf",
                       hints=("not a valid pdf", "mislabeled", "damaged"))


def random_png() -> BadDocument:
    return BadDocument("random_png", "random.png", random_bytes(32 * 1024, "png"), "image/png",
                       hints=("not a valid png", "mislabeled", "signature"))


def random_txt() -> BadDocument:
    return BadDocument("random_txt", "random.txt", random_bytes(32 * 1024, "txt"), "text/plain",
                       hints=("not a supported", "not a text"))


def random_noext() -> BadDocument:
    return BadDocument("random_noext", "blob", random_bytes(8 * 1024, "noext"), "application/octet-stream",
                       hints=("not a supported", "not a text"))


def pdf_named_txt() -> BadDocument:
    """``%PDF-`` then noise, named ``.txt``: content sniffing must call it a (broken) PDF, not text."""
    return BadDocument("pdf_named_txt", "notes.txt", b"%PDF-1.4\n" + random_bytes(4096, "pdf-txt"), "text/plain",
                       hints=("damaged", "could not be opened", "no readable pages"))


def gif_named_png() -> BadDocument:
    img = Image.new("P", (32, 32))
    buf = io.BytesIO()
    img.save(buf, format="GIF")
    return BadDocument("gif_named_png", "really-a-gif.png", buf.getvalue(), "image/png",
                       hints=("not a valid png", "mislabeled", "signature", "gif"))


def zip_named_docx() -> BadDocument:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    return BadDocument("zip_named_docx", "report.docx", buf.getvalue(),
                       "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                       hints=("not supported", "zip"))


def invalid_utf8_text() -> BadDocument:
    """A ``.txt`` of lone continuation bytes and bytes undefined in cp1252 (0x81 0x8D 0x8F 0x90 0x9D):
    neither UTF-8 nor cp1252, so no text decoder may accept it."""
    data = b"Quarterly notes \x80\x81 caf\xc3 \x8d\x8f\x90\x9d \xbf\xbf \xed\xa0\x80 end\n" * 200
    return BadDocument("invalid_utf8_txt", "notes-bad-utf8.txt", data, "text/plain",
                       hints=("not a supported", "not a text"))


def cp1252_text() -> BadDocument:
    """Invalid UTF-8 that is valid cp1252 (a legacy Windows file): a lenient reader may ingest it."""
    data = "Caf\u00e9 revenue rose \u2013 \u201cstrongly\u201d \u20ac5m.\n".encode("cp1252") * 50
    return BadDocument("cp1252_txt", "legacy.txt", data, "text/plain", expect="any",
                       note="decoded as cp1252 by design")


def nul_text() -> BadDocument:
    return BadDocument("nul_txt", "nul.txt", b"hello\x00world\x00" * 500, "text/plain",
                       hints=("not a supported", "not a text"))


def overlong_text(chars: int = 400_000) -> BadDocument:
    """A text file long enough to be more text "pages" than a small ``max_pages`` (50) allows."""
    para = "Revenue grew in every region while costs stayed flat across the year. " * 6
    text = "\n\n".join(para for _ in range(chars // len(para) + 1))
    return BadDocument("overlong_txt", "overlong.txt", text.encode(), "text/plain", hints=("pages", "too long"))


def bad_documents(*, many_pages: int = 10_000) -> dict[str, BadDocument]:
    """Every bad document by key."""
    builders = [
        corrupt_pdf, mangled_pdf, truncated_pdf, encrypted_pdf, zero_page_pdf, empty_pdf, empty_text,
        whitespace_text, flate_bomb_pdf, expansion_bomb_pdf,
        lambda: expansion_bomb_pdf(in_annotation=True), image_bomb_pdf, mediabox_bomb_pdf, lambda: many_pages_pdf(many_pages),
        pixel_bomb_png, inflate_bomb_png, lying_png_header, lying_jpeg_header, truncated_png, truncated_jpeg,
        bad_idat_png, zero_size_png, random_pdf, random_png, random_txt, random_noext, pdf_named_txt,
        gif_named_png, zip_named_docx, invalid_utf8_text, cp1252_text, nul_text, overlong_text,
    ]
    out = {}
    for build in builders:
        case = build()
        out[case.key] = case
    return out


# ----- images in chat requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class BadImage:
    """An ``image_url`` value a request may carry, and the statuses the server may answer."""

    key: str
    url: object
    statuses: tuple[int, ...] = (400,)


def _data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _small_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def bad_image_urls() -> dict[str, BadImage]:
    """``image_url.url`` values that must be refused: 400 (undecodable) or 413 (too large)."""
    png = _small_png()
    tiff = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiff, format="TIFF")
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, format="BMP")
    cases = [
        BadImage("invalid_base64", "data:image/png;base64,!!!not*base64@@@"),
        BadImage("base64_bad_padding", "data:image/png;base64,iVBORw0KGgo="[:-1] + "A==="),
        BadImage("base64_non_ascii", "data:image/png;base64,iVBOR\u00e9\u6587\u4ef6"),
        BadImage("empty_payload", "data:image/png;base64,"),
        BadImage("no_base64_flag", "data:image/png,rawbytes"),
        BadImage("no_mime", "data:;base64," + base64.b64encode(png).decode()),
        BadImage("text_mime", _data_url(b"hello world", "text/plain")),
        BadImage("svg_mime", _data_url(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")),
        BadImage("tiff_mime", _data_url(tiff.getvalue(), "image/tiff")),
        BadImage("bmp_as_png", _data_url(bmp.getvalue(), "image/png")),
        BadImage("not_image_bytes", _data_url(b"this is not an image at all" * 10)),
        BadImage("pdf_as_png", _data_url(docs.invoice_pdf().data[:4096])),
        BadImage("random_as_jpeg", _data_url(random_bytes(4096, "jpeg-url"), "image/jpeg")),
        BadImage("truncated_png", _data_url(docs.slide_png().data[:2000])),
        BadImage("bad_idat_png", _data_url(png_bytes(100, 100, random_bytes(600, "idat-url")))),
        BadImage("zero_size_png", _data_url(png_bytes(0, 0, zlib.compress(b"")))),
        BadImage("pixel_bomb_png", _data_url(docs.pixel_bomb_png().data), (413,)),
        BadImage("lying_png_header", _data_url(lying_png_header().data), (413,)),
        BadImage("lying_jpeg_header", _data_url(lying_jpeg_header().data, "image/jpeg"), (413,)),
        BadImage("remote_http", "http://127.0.0.1:1/secret.png"),
        BadImage("remote_https", "https://example.invalid/a.png"),
        BadImage("file_url", "file:///etc/passwd"),
        BadImage("raw_base64", base64.b64encode(png).decode()),
        BadImage("javascript", "javascript:alert(1)"),
        BadImage("empty_url", ""),
        BadImage("whitespace_url", "   "),
        BadImage("nul_in_url", "data:image/png;base64,\x00\x00"),
        BadImage("number_url", 12345, (400,)),
        BadImage("null_url", None, (400,)),
        BadImage("object_url", {"url": "data:image/png;base64,"}, (400,)),
    ]
    return {c.key: c for c in cases}


# ----- filenames -----------------------------------------------------------------------------------


def bad_filenames() -> dict[str, str]:
    """Upload filenames an attacker or a broken client sends."""
    return {
        "traversal_posix": "../../etc/passwd",
        "traversal_deep": "../" * 40 + "tmp/vistack-pwned.pdf",
        "traversal_windows": "..\\..\\x.pdf",
        "traversal_mixed": "..\\../..%2f..%2fx.pdf",
        "absolute_posix": "/etc/passwd",
        "absolute_windows": "C:\\Windows\\System32\\drivers\\etc\\hosts",
        "unc_path": "\\\\server\\share\\x.pdf",
        "dot": ".",
        "dotdot": "..",
        "dots_only": ".....",
        "nul": "a\x00b.pdf",
        "newline": "a\nb.pdf",
        "carriage_return": "a\rb.pdf",
        "ansi_escape": "\x1b[31m.pdf",
        "tab": "a\tb.pdf",
        "bell_backspace": "a\x07\x08b.pdf",
        "very_long": "a" * 10_000 + ".pdf",
        "very_long_ext": "x." + "p" * 10_000,
        "empty": "",
        "spaces": "   ",
        "rtl_override": "invoice\u202efdp.exe",
        "zero_width": "in\u200bvoice\ufeff.pdf",
        "unicode": "r\u00e9sum\u00e9 \u6587\u4ef6 \U0001f4c4.pdf",
        "combining": "e\u0301" * 300 + ".pdf",
        "quotes": "a\"b';--.pdf",
        "shell": "$(reboot)`id`|;&.pdf",
        "percent": "%2e%2e%2f%00.pdf",
        "html": "<script>alert(1)</script>.pdf",
        "reserved_windows": "CON.pdf",
        "trailing_dot_space": "x.pdf. . ",
        "hidden": ".bashrc",
        "lone_surrogate_like": "\udcff.pdf",
    }


# ----- request bodies --------------------------------------------------------------------------------


def deeply_nested_json(depth: int = 10_000, key: str | None = "a") -> bytes:
    """``{"a": {"a": ... 1 ...}}`` (or ``[[[...]]]`` when ``key`` is None) nested ``depth`` levels."""
    if key is None:
        return b"[" * depth + b"1" + b"]" * depth
    opener = b'{"' + key.encode() + b'":'
    return opener * depth + b"1" + b"}" * depth


def malformed_json_bodies() -> dict[str, bytes]:
    """Bodies that are not valid JSON (or not a JSON object) at all."""
    return {
        "empty": b"",
        "whitespace": b"   \n ",
        "truncated_object": b'{"model": "x", "messages": [',
        "trailing_comma": b'{"model": "x",}',
        "single_quotes": b"{'model': 'x'}",
        "unquoted_keys": b"{model: x}",
        "bare_word": b"hello",
        "invalid_utf8": b'{"model": "\xff\xfe\xfd", "input": "\xc3\x28"}',
        "utf16_bom": "\ufeff{\"model\": \"x\"}".encode("utf-16"),
        "utf8_bom": b'\xef\xbb\xbf{"model": "x"}',
        "nul_bytes": b'{"model": "x\x00"}\x00\x00',
        "lone_surrogate_escape": b'{"model": "\\ud800", "input": "\\udfff"}',
        "bad_escape": b'{"model": "\\x41"}',
        "nan": b'{"model": NaN, "temperature": NaN}',
        "infinity": b'{"model": "x", "max_tokens": Infinity}',
        "huge_number": b'{"model": "x", "max_tokens": 1' + b"0" * 5000 + b"}",
        "huge_exponent": b'{"model": "x", "temperature": 1e999999}',
        "two_objects": b'{"model": "x"}{"model": "y"}',
        "array": b"[]",
        "string": b'"model"',
        "number": b"42",
        "null": b"null",
        "true": b"true",
        "nested_array_10k": deeply_nested_json(10_000, key=None),
        "nested_object_10k": deeply_nested_json(10_000),
        "nested_object_100k": deeply_nested_json(100_000),
    }


__all__ = [
    "BadDocument",
    "BadImage",
    "bad_documents",
    "bad_filenames",
    "bad_image_urls",
    "deeply_nested_json",
    "malformed_json_bodies",
    "png_bytes",
    "random_bytes",
]
