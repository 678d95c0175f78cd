"""Named failures a user can cause, with messages fit for a file's ``last_error``.

Every reader raises one of these (never a PyMuPDF or Pillow exception), so
ingestion can show the user what is wrong with the file and how to fix it.
``code`` maps to the OpenAI ``last_error.code`` of a vector-store file.
"""

from __future__ import annotations

import os


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


def display_name(filename: str) -> str:
    """The file as a message names it: its base name quoted, or "The file" when it has none."""
    base = os.path.basename(filename or "") or "The file"
    return f"'{base}'" if filename else base


def short_reason(e: BaseException, limit: int = 200) -> str:
    """A library exception as a short clause for a user message (never empty, never a wall of text)."""
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
