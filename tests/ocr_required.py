"""OCR tests need Tesseract's language data: a skip where it is missing, a failure where it must be there.

``VISTACK_REQUIRE_OCR=1`` (set by ``.ci/run``, which installs ``tesseract-ocr``)
turns a missing Tesseract into a test failure, so CI cannot go green while
silently skipping every OCR test.
"""

from __future__ import annotations

import os

import pytest

from vistack.rag.readers import ocr_available

REQUIRE_OCR = os.environ.get("VISTACK_REQUIRE_OCR", "").strip().lower() in ("1", "true", "yes", "on")


def require_ocr(language: str = "eng") -> None:
    """Return when MuPDF's Tesseract can OCR ``language``; otherwise skip, or fail under VISTACK_REQUIRE_OCR=1."""
    if ocr_available(language):
        return
    reason = (
        f"Tesseract language data for {language!r} not found (apt-get install tesseract-ocr, "
        "or set TESSDATA_PREFIX to a folder with eng.traineddata)"
    )
    if REQUIRE_OCR:
        pytest.fail(f"VISTACK_REQUIRE_OCR=1 but {reason}", pytrace=False)
    pytest.skip(reason)
