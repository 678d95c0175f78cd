"""Table detection runs only on pages with rulings; page PNGs are fast, lossless, grey when they can be;
PDFs are read from a path without loading the whole file."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
import pytest
from PIL import Image

from vistack.rag.readers import ExtractOptions, extract_pages
from vistack.rag.readers.png import encode_png
from vistack.rag.readers.tables import find_tables, has_rulings, ruling_counts
from vistack.testing import documents as samples

NO_OCR = ExtractOptions(ocr=False)


@pytest.fixture
def count_find_tables(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts PyMuPDF find_tables() calls (page numbers, 1-based) while still running them."""
    calls: list[int] = []
    original = pymupdf.Page.find_tables

    def counting(self, *args, **kwargs):
        calls.append(self.number + 1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pymupdf.Page, "find_tables", counting)
    return calls


def _page(draw) -> pymupdf.Page:
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=400)
    page.insert_text((50, 40), "Some text on the page, so it has a text layer.", fontsize=10)
    draw(page)
    return page


def test_ruled_table_is_kept(count_find_tables: list[int]) -> None:
    report = samples.annual_report_pdf()
    pages = list(extract_pages(report.data, report.filename, NO_OCR))
    fact = report.tables[0]
    table_pages = [p.number for p in pages if any(b.kind == "table" for b in p.blocks)]
    assert table_pages == [fact.page]
    assert fact.page in count_find_tables
    # pages without both horizontal and vertical segments were never handed to find_tables()
    with pymupdf.open(stream=report.data, filetype="pdf") as doc:
        for number in count_find_tables:
            assert has_rulings(doc[number - 1])
        skipped = [p.number for p in pages if p.number not in count_find_tables]
        assert skipped and all(not has_rulings(doc[n - 1]) for n in skipped)


def test_invoice_table_kept() -> None:
    invoice = samples.invoice_pdf()
    [page] = list(extract_pages(invoice.data, invoice.filename, NO_OCR))
    tables = [b for b in page.blocks if b.kind == "table"]
    assert len(tables) == 1 and "Unit price" in tables[0].text


def test_page_without_drawings_skips_find_tables(count_find_tables: list[int]) -> None:
    page = _page(lambda p: None)
    assert ruling_counts(page) == (0, 0) and not has_rulings(page)
    assert find_tables(page, "lines") == [] and count_find_tables == []


def test_only_horizontal_rules_skip_find_tables(count_find_tables: list[int]) -> None:
    def rules(page: pymupdf.Page) -> None:
        for y in (100, 150, 200):
            page.draw_line((50, y), (350, y))
        page.draw_rect(pymupdf.Rect(50, 250, 350, 251), fill=(0, 0, 0), width=0)  # a booktabs-style thin rule

    page = _page(rules)
    horizontal, vertical = ruling_counts(page)
    assert horizontal == 4 and vertical == 0 and not has_rulings(page)
    assert find_tables(page, "lines") == [] and count_find_tables == []


def test_curves_and_slanted_lines_are_no_rulings(count_find_tables: list[int]) -> None:
    def figure(page: pymupdf.Page) -> None:
        page.draw_circle((200, 200), 80)
        page.draw_line((50, 50), (300, 300))
        page.draw_bezier((50, 350), (100, 250), (250, 380), (350, 300))

    page = _page(figure)
    assert ruling_counts(page) == (0, 0)
    assert find_tables(page, "lines") == [] and count_find_tables == []


def test_grid_of_lines_is_looked_at(count_find_tables: list[int]) -> None:
    def grid(page: pymupdf.Page) -> None:
        for i, y in enumerate((100, 130, 160, 190)):
            page.draw_line((50, y), (350, y))
            if i < 3:
                for j, x in enumerate((55, 155, 255)):
                    page.insert_text((x, y + 20), f"r{i}c{j}", fontsize=10)
        for x in (50, 150, 250, 350):
            page.draw_line((x, 100), (x, 190))

    page = _page(grid)
    assert has_rulings(page)
    found = find_tables(page, "lines")
    assert count_find_tables == [1]
    assert len(found) == 1 and "r2c2" in found[0][1]


# ----- page images -------------------------------------------------------------------------------


def _decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _rgb(pix: pymupdf.Pixmap) -> np.ndarray:
    return (
        np.frombuffer(pix.samples, dtype=np.uint8)
        .reshape(pix.height, pix.stride)[:, : pix.width * 3]
        .reshape(pix.height, pix.width, 3)
    )


def test_png_of_a_grey_page_is_greyscale_and_lossless() -> None:
    page = _page(lambda p: p.draw_rect(pymupdf.Rect(60, 60, 200, 120), fill=(0.5, 0.5, 0.5)))
    pix = page.get_pixmap(matrix=pymupdf.Matrix(110 / 72, 110 / 72), alpha=False)
    image = _decoded(encode_png(pix))
    assert image.mode == "L" and image.size == (pix.width, pix.height)
    assert np.array_equal(np.asarray(image.convert("RGB")), _rgb(pix))


def test_png_of_a_colour_page_is_rgb_and_lossless() -> None:
    page = _page(lambda p: p.draw_rect(pymupdf.Rect(60, 60, 200, 120), fill=(0.9, 0.2, 0.1)))
    pix = page.get_pixmap(matrix=pymupdf.Matrix(110 / 72, 110 / 72), alpha=False)
    png = encode_png(pix)
    image = _decoded(png)
    assert image.mode == "RGB" and np.array_equal(np.asarray(image), _rgb(pix))
    assert len(png) < pix.width * pix.height * 3 / 4  # compressed, not stored


def test_extracted_page_images_are_what_mupdf_renders() -> None:
    report = samples.annual_report_pdf()
    pages = list(extract_pages(report.data, report.filename, NO_OCR))
    with pymupdf.open(stream=report.data, filetype="pdf") as doc:
        for page in pages:
            zoom = page.dpi / 72
            pix = doc[page.number - 1].get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
            assert np.array_equal(np.asarray(_decoded(page.image_png).convert("RGB")), _rgb(pix))


# ----- reading from a path -----------------------------------------------------------------------


def test_extract_from_a_path_equals_from_bytes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = samples.annual_report_pdf()
    path = tmp_path / "upload.bin"  # stored files carry no extension
    path.write_bytes(report.data)
    from_bytes = list(extract_pages(report.data, report.filename, NO_OCR))

    opened: list[object] = []
    original_open = pymupdf.open

    def spy(*args, **kwargs):
        opened.append(args[0] if args else kwargs.get("stream"))
        return original_open(*args, **kwargs)

    monkeypatch.setattr(pymupdf, "open", spy)
    from_path = list(extract_pages(path, report.filename, NO_OCR))
    assert opened == [str(path)]  # MuPDF opened the file itself: no bytes handed over
    assert [p.blocks for p in from_path] == [p.blocks for p in from_bytes]
    assert [p.image_png for p in from_path] == [p.image_png for p in from_bytes]


def test_text_and_image_files_from_a_path(tmp_path) -> None:
    md = samples.markdown_file()
    path = tmp_path / "notes"
    path.write_bytes(md.data)
    assert [p.blocks for p in extract_pages(path, md.filename, NO_OCR)] == [
        p.blocks for p in extract_pages(md.data, md.filename, NO_OCR)
    ]
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    from vistack.rag.readers import EmptyDocumentError

    with pytest.raises(EmptyDocumentError):
        list(extract_pages(empty, "empty.pdf", NO_OCR))


def test_table_markdown_reads_the_page_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyMuPDF's to_markdown re-extracts the page's characters for every cell; ours reads them once per table."""
    invoice = samples.invoice_pdf()
    with pymupdf.open(stream=invoice.data, filetype="pdf") as doc:
        page = doc[0]
        expected = [(rect, md) for rect, md in find_tables(page, "lines")]
        calls = 0
        original = pymupdf.TextPage.extractRAWDICT

        def counting(self, *args, **kwargs):
            nonlocal calls
            calls += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(pymupdf.TextPage, "extractRAWDICT", counting)
        again = find_tables(page, "lines")
    assert again == expected and len(again) == 1
    assert "|Item|Qty|Unit price|Amount|" in again[0][1]
    # one inside find_tables (its character list), one shared by all 16 cells and the header re-read
    # (without the sharing: one more per cell)
    assert calls == 2
