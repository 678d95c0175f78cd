"""What kind of document some bytes are: content first, file extension second.

Sniffing the content means a mislabeled file is still read correctly, and a
file whose extension promises a format its bytes are not gets a clear
"damaged or mislabeled" error instead of a parser's stack trace.
"""

from __future__ import annotations

import os
import unicodedata

from .errors import CorruptDocumentError, EmptyDocumentError, UnsupportedDocumentError, display_name
from .model import MIME_TYPES, DocumentKind

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


def detect_kind(data: bytes, filename: str) -> tuple[DocumentKind, str]:
    """Classify by content first, extension second. Returns ``(kind, mime_type)``.

    Raises :class:`EmptyDocumentError`, :class:`CorruptDocumentError` (the
    extension promises a PDF/PNG/JPEG the bytes are not) or
    :class:`UnsupportedDocumentError`.
    """
    name = display_name(filename)
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
    if decode_text(data) is not None:
        if ext in _MARKDOWN_EXTENSIONS:
            return "text", MIME_TYPES["markdown"]
        return "text", MIME_TYPES["text"]
    raise UnsupportedDocumentError(
        f"{name} is not a supported file type (binary content that is not a PDF, PNG or JPEG). {_SUPPORTED_HINT}",
        filename=filename,
    )


def decode_text(data: bytes) -> str | None:
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
