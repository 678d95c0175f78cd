"""Extracted text is normalised once (NFKC, TeX T1 control glyphs) so BM25 and embeddings match typed words."""

from __future__ import annotations

from vistack.rag.readers import ExtractOptions, extract_pages
from vistack.rag.readers.layout import dict_lines
from vistack.rag.readers.normalize import normalize_text


def test_ligatures_and_t1_control_glyphs_become_letters() -> None:
    assert normalize_text("signiﬁcant eﬀect") == "significant effect"
    assert normalize_text("in\x1cnitesimal \x1berent \x1dow o\x1eice a\x1fuent") == (
        "infinitesimal fferent flow offiice affluent"
    )
    assert normalize_text("\x10quoted\x11 1990\x152000 a\x16b") == "\u201cquoted\u201d 1990\u20132000 a\u2014b"
    assert normalize_text("accent\x01ed\x7f") == "accented"  # other control characters go
    assert normalize_text("tab\tand\nnewline stay") == "tab\tand\nnewline stay"
    assert normalize_text("full\uff37idth x\u00b2") == "fullWidth x2"
    plain = "Plain ASCII text, unchanged."
    assert normalize_text(plain) is plain


def test_pdf_text_and_text_files_come_out_normalised() -> None:
    # what PyMuPDF returns for a T1-encoded TeX font without a ToUnicode map (native layer and OCR alike)
    textdict = {"blocks": [{"type": 0, "lines": [{"bbox": (0, 0, 9, 9), "spans": [{"text": "The \x1crst ﬂow"}]}]}]}
    assert [text for _, _, text in dict_lines(textdict)] == ["The first flow"]
    [text_page] = list(extract_pages("The ﬁrst\x1cle".encode(), "notes.txt", ExtractOptions()))
    assert " ".join(b.text for b in text_page.blocks) == "The firstfile"
