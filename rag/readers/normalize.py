"""One text normalisation for everything extracted, so BM25 and embeddings see the same words a user types.

* Unicode NFKC: typographic ligatures (U+FB01 "ﬁ" -> "fi"), full-width forms,
  non-breaking and other compatibility spaces become their plain forms.
* TeX's T1 ("Cork") font encoding leaking through a PDF without a ToUnicode
  map: pdfTeX documents set in EC / cm-super fonts put the ligatures and
  quotes at C0 control positions, so PyMuPDF returns "in\\x1cnitesimal" for
  "infinitesimal". Those code points are never text, and in T1 they mean
  ff fi fl ffi ffl (0x1B-0x1F), “ ” (0x10, 0x11) and the en/em dash
  (0x15, 0x16); they are mapped to that, and the remaining control
  characters (T1 accents and other glyph slots) are dropped.

Tabs and newlines are kept (line structure matters to chunking and tables).
"""

from __future__ import annotations

import re
import unicodedata

_T1_CONTROL_GLYPHS = str.maketrans(
    {0x1B: "ff", 0x1C: "fi", 0x1D: "fl", 0x1E: "ffi", 0x1F: "ffl",
     0x10: "\u201c", 0x11: "\u201d", 0x15: "\u2013", 0x16: "\u2014"}
)
_OTHER_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def normalize_text(text: str) -> str:
    """``text`` in NFKC with TeX T1 control-position glyphs repaired and other control characters removed."""
    if text.isascii() and text.isprintable():
        return text  # the common case, nothing to do
    text = text.translate(_T1_CONTROL_GLYPHS)
    return _OTHER_CONTROLS.sub("", unicodedata.normalize("NFKC", text))
