"""vistack.rag.readers: pages, blocks, tables, page images, image/text documents, and every failure."""

from __future__ import annotations

import importlib.util
import inspect
import io

import pymupdf
import pytest
from PIL import Image

from vistack.rag.readers import (
    Block,
    CorruptDocumentError,
    DocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    ExtractedPage,
    ExtractOptions,
    ImageTooLargeError,
    TooManyPagesError,
    UnsupportedDocumentError,
    detect_kind,
    extract_pages,
    open_document,
)
from vistack.testing import documents as samples

try:
    from ocr_required import require_ocr
except ImportError:  # run from another rootdir: tests/ is where the helper lives
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ocr_required import require_ocr

NO_OCR = ExtractOptions(ocr=False)


@pytest.fixture(scope="module")
def report() -> samples.SampleDocument:
    return samples.annual_report_pdf()


@pytest.fixture(scope="module")
def report_pages(report: samples.SampleDocument) -> list[ExtractedPage]:
    return list(extract_pages(report.data, report.filename, NO_OCR))


def _png_size(data: bytes) -> tuple[int, int]:
    img = Image.open(io.BytesIO(data))
    img.load()  # decodable, not just a header
    assert img.format == "PNG"
    return img.size


def _dark_fraction(png: bytes, bbox: tuple[float, float, float, float], dpi: float) -> float:
    """Share of non-white pixels inside ``bbox`` (points) of a page image rendered at ``dpi``."""
    img = Image.open(io.BytesIO(png)).convert("L")
    z = dpi / 72
    crop = img.crop((int(bbox[0] * z), int(bbox[1] * z), int(bbox[2] * z) + 1, int(bbox[3] * z) + 1))
    hist = crop.histogram()
    return 1 - sum(hist[200:]) / max(1, sum(hist))


# ----- PDF pages -----------------------------------------------------------------------------------


def test_pages_numbered_from_one_with_size_in_points(report, report_pages) -> None:
    assert [p.number for p in report_pages] == list(range(1, report.page_count + 1))
    for page in report_pages:
        assert (page.width, page.height) == report.page_size


def test_facts_are_on_their_pages(report, report_pages) -> None:
    for fact in report.facts:
        where = [p.number for p in report_pages if fact.text in p.text]
        assert where == [fact.page], (fact.key, where)


def test_text_blocks_have_bboxes_in_reading_order(report_pages) -> None:
    page = report_pages[1]
    assert all(b.kind == "text" for b in page.blocks)
    assert page.blocks[0].text == "Financial highlights"
    revenue = next(b for b in page.blocks if samples.REVENUE_SENTENCE in b.text)
    assert "\n" not in revenue.text  # visual lines joined into running text
    x0, y0, x1, y1 = revenue.bbox
    assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height
    tops = [b.bbox[1] for b in page.blocks]
    assert tops == sorted(tops)
    assert all(b.text.strip() for b in page.blocks)


def test_bbox_lines_up_with_the_page_image(report_pages) -> None:
    page = report_pages[1]
    revenue = next(b for b in page.blocks if samples.REVENUE_SENTENCE in b.text)
    assert _dark_fraction(page.image_png, revenue.bbox, page.dpi) > 0.03
    assert _dark_fraction(page.image_png, (300, 400, 500, 600), page.dpi) == 0  # empty area


def test_table_block_markdown_bbox_and_position(report, report_pages) -> None:
    fact = report.tables[0]
    page = report_pages[fact.page - 1]
    tables = [b for b in page.blocks if b.kind == "table"]
    assert len(tables) == 1
    md = tables[0].text.splitlines()
    assert md[0] == "|" + "|".join(fact.header) + "|"
    assert set(md[1]) <= set("|-: ")
    assert md[2:] == ["|" + "|".join(row) + "|" for row in fact.rows]
    assert tables[0].bbox == pytest.approx(fact.bbox, abs=2)
    kinds = [(b.kind, b.text.split("\n")[0][:20]) for b in page.blocks]
    index = [k for k, _ in kinds].index("table")
    assert "Quarterly revenue" in page.blocks[index - 1].text  # before: the intro paragraph
    assert page.blocks[index + 1].text.startswith("Table 1")  # after: the caption


def test_table_cells_are_not_duplicated_as_text(report, report_pages) -> None:
    fact = report.tables[0]
    page = report_pages[fact.page - 1]
    text_blocks = " ".join(b.text for b in page.blocks if b.kind == "text")
    for cell in ("1018", "1049", "1120", "1195", "561", "590", "Region"):
        assert cell not in text_blocks


def test_tables_off_keeps_cells_as_text(report) -> None:
    page = list(
        extract_pages(report.data, report.filename, ExtractOptions(ocr=False, tables="none", render_images=False))
    )[2]
    assert all(b.kind == "text" for b in page.blocks)
    assert "1195" in page.text


def test_invoice_code_and_table(report) -> None:
    invoice = samples.invoice_pdf()
    (page,) = extract_pages(invoice.data, invoice.filename, NO_OCR)
    assert samples.INVOICE_NUMBER in page.text
    table = next(b for b in page.blocks if b.kind == "table")
    assert "|Item|Qty|Unit price|Amount|" in table.text and "10,200.00" in table.text


def test_page_image_is_png_at_dpi(report_pages) -> None:
    for page in report_pages:
        w, h = _png_size(page.image_png)
        assert page.dpi == 110
        assert abs(w - 612 * 110 / 72) <= 1 and abs(h - 792 * 110 / 72) <= 1


def test_dpi_option_and_no_render(report) -> None:
    first = next(extract_pages(report.data, report.filename, ExtractOptions(dpi=72, ocr=False)))
    assert _png_size(first.image_png) == (612, 792)
    bare = next(extract_pages(report.data, report.filename, ExtractOptions(render_images=False, ocr=False)))
    assert bare.image_png is None and bare.dpi is None and bare.blocks == first.blocks


def test_pixel_cap_lowers_dpi(report) -> None:
    opts = ExtractOptions(max_page_pixels=200_000, ocr=False)
    page = next(extract_pages(report.data, report.filename, opts))
    w, h = _png_size(page.image_png)
    assert w * h <= 200_000
    assert page.dpi < 110 and abs(w / h - 612 / 792) < 0.01
    assert abs(w - 612 * page.dpi / 72) <= 1


def test_huge_page_renders_at_lower_dpi_or_fails_as_pixel_bomb() -> None:
    poster = samples.huge_page_pdf(200, 200)  # 14,400 pt square, the PDF maximum
    page = next(extract_pages(poster.data, poster.filename, ExtractOptions(max_page_pixels=4_000_000, ocr=False)))
    w, h = _png_size(page.image_png)
    assert w * h <= 4_000_000 and page.dpi == pytest.approx(10, rel=0.01)  # sqrt(4e6 px / 40,000 in^2)
    with pytest.raises(ImageTooLargeError, match="page 1 is too large"):
        next(extract_pages(poster.data, poster.filename, ExtractOptions(max_page_pixels=10_000, ocr=False)))


def test_pdf_with_a_huge_embedded_image_is_a_pixel_bomb(report) -> None:
    opts = ExtractOptions(max_image_pixels=200_000)  # the chart on page 4 is 640 x 400
    with pytest.raises(ImageTooLargeError, match=r"page 4 contains an image too large .*640 x 400 pixels"):
        list(extract_pages(report.data, report.filename, opts))
    text_only = ExtractOptions(max_image_pixels=200_000, render_images=False, ocr=False)
    assert len(list(extract_pages(report.data, report.filename, text_only))) == 6  # images never decoded


def test_rotated_page_bboxes_follow_the_displayed_orientation() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=600, height=800)
    page.insert_text((50, 100), "Rotated quarterly summary", fontsize=20)
    page.set_rotation(90)
    data = doc.tobytes()
    (out,) = extract_pages(data, "rotated.pdf", NO_OCR)
    assert (out.width, out.height) == (800, 600)
    (block,) = out.blocks
    x0, y0, x1, y1 = block.bbox
    assert y1 - y0 > x1 - x0  # the line now runs top to bottom
    assert 0 <= x0 < x1 <= 800 and 0 <= y0 < y1 <= 600
    assert _dark_fraction(out.image_png, block.bbox, out.dpi) > 0.03


def test_extract_is_a_lazy_generator(report) -> None:
    pages = extract_pages(report.data, report.filename, NO_OCR)
    assert inspect.isgenerator(pages)
    assert next(pages).number == 1
    pages.close()


# ----- pages without a text layer ------------------------------------------------------------------


def test_scanned_page_without_ocr_is_image_only(report, report_pages) -> None:
    page = report_pages[report.scanned_page - 1]
    assert page.has_text_layer is False and page.ocr_used is False
    assert page.text_layer == "none" and page.blocks == []
    assert page.image_png is not None


def test_scanned_page_is_ocred(report) -> None:
    require_ocr()  # a skip without Tesseract; a failure under VISTACK_REQUIRE_OCR=1
    pages = list(extract_pages(report.data, report.filename, ExtractOptions(render_images=False)))
    page = pages[report.scanned_page - 1]
    assert page.text_layer == "ocr" and page.ocr_used and not page.has_text_layer
    assert page.blocks and all(b.kind == "ocr" for b in page.blocks)
    text = page.text.lower()
    assert "dividend" in text and "0.85" in text and "march 2026" in text
    for b in page.blocks:
        assert 0 <= b.bbox[0] < b.bbox[2] <= page.width and 0 <= b.bbox[1] < b.bbox[3] <= page.height
    assert [p.text_layer for p in pages if p.number != report.scanned_page] == ["native"] * 5


def test_scan_with_a_stamp_keeps_its_native_text_without_ocr() -> None:
    scan = samples.stamped_scan_pdf()
    (page,) = extract_pages(scan.data, scan.filename, NO_OCR)
    assert page.has_text_layer and page.text_layer == "native"
    assert page.text == scan.extra["stamp"]


def test_scan_with_a_stamp_is_ocred_too() -> None:
    require_ocr()  # a skip without Tesseract; a failure under VISTACK_REQUIRE_OCR=1
    scan = samples.stamped_scan_pdf()
    (page,) = extract_pages(scan.data, scan.filename, ExtractOptions(render_images=False))
    assert page.has_text_layer and page.ocr_used and page.text_layer == "ocr"
    kinds = [b.kind for b in page.blocks]
    assert kinds[-1] == "text" and set(kinds[:-1]) == {"ocr"}  # the stamp is at the bottom
    assert page.blocks[-1].text == scan.extra["stamp"]
    ocr_text = " ".join(b.text for b in page.blocks if b.kind == "ocr").lower()
    assert "dividend" in ocr_text and "officescan" not in ocr_text  # the stamp is not repeated


def test_image_document_is_ocred() -> None:
    require_ocr()  # a skip without Tesseract; a failure under VISTACK_REQUIRE_OCR=1
    slide = samples.slide_png()
    (page,) = extract_pages(slide.data, slide.filename)
    assert page.text_layer == "ocr"
    assert "57 qualified deals" in page.text
    first = page.blocks[0]
    assert "pipeline" in first.text.lower()
    assert 0 <= first.bbox[0] < first.bbox[2] <= page.width and first.bbox[3] <= page.height


# ----- image documents ------------------------------------------------------------------------------


def test_png_is_its_own_page_image() -> None:
    slide = samples.slide_png()
    (page,) = extract_pages(slide.data, slide.filename, NO_OCR)
    assert page.number == 1 and (page.width, page.height) == slide.page_size
    assert page.image_png == slide.data  # no needless re-encode
    assert page.text_layer == "none" and page.blocks == []


def test_jpeg_becomes_png_and_exif_orientation_is_applied() -> None:
    for jpeg in (samples.slide_jpeg(), samples.slide_jpeg(exif_rotate=True)):
        (page,) = extract_pages(jpeg.data, jpeg.filename, NO_OCR)
        assert (page.width, page.height) == jpeg.page_size  # upright
        assert _png_size(page.image_png) == jpeg.page_size


def test_large_image_page_image_is_capped() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (3000, 2000), "white").save(buf, format="PNG")
    (page,) = extract_pages(buf.getvalue(), "big.png", ExtractOptions(ocr=False, max_page_pixels=1_500_000))
    w, h = _png_size(page.image_png)
    assert (page.width, page.height) == (3000, 2000)
    assert w * h <= 1_500_000 and abs(w / h - 1.5) < 0.01


def test_pixel_bomb_is_refused_from_the_header() -> None:
    bomb = samples.pixel_bomb_png()
    # refused from the header: decoding 10 gigapixels would exhaust memory long before this raised
    with pytest.raises(ImageTooLargeError, match=r"too large to process safely \(10,000,000,000 pixels\)") as info:
        next(extract_pages(bomb.data, bomb.filename))
    assert info.value.code == "invalid_file"
    with pytest.raises(ImageTooLargeError):
        open_document(bomb.data, bomb.filename)
    small = samples.pixel_bomb_png(4000, 4000)
    with pytest.raises(ImageTooLargeError, match=r"\(4,000 x 4,000 pixels\); at most 1,000,000 pixels"):
        open_document(small.data, small.filename, ExtractOptions(max_image_pixels=1_000_000))


def test_truncated_image_is_corrupt() -> None:
    slide = samples.slide_png()
    with pytest.raises(CorruptDocumentError, match="could not be decoded"):
        next(extract_pages(slide.data[: len(slide.data) // 2], slide.filename, NO_OCR))


# ----- text documents -------------------------------------------------------------------------------


def test_markdown_pages_paragraphs_and_tables() -> None:
    md = samples.markdown_file()
    pages = list(extract_pages(md.data, md.filename))
    assert [p.number for p in pages] == [1, 2] == list(range(1, md.page_count + 1))
    for page in pages:
        assert page.image_png is None and page.has_text_layer and page.text_layer == "native"
        assert (page.width, page.height) == (0, 0)
        assert all(b.bbox == (0, 0, 0, 0) for b in page.blocks)
        assert len(page.text) <= ExtractOptions().text_page_chars + 300
    for fact in md.facts:
        assert [p.number for p in pages if fact.text in p.text] == [fact.page]
    (table,) = [b for p in pages for b in p.blocks if b.kind == "table"]
    assert table.text == md.extra["table_markdown"]
    # A heading stays with its paragraph, even across a page break (a heading before a table stays alone).
    blocks = [b for p in pages for b in p.blocks]
    for block, after in zip(blocks, blocks[1:] + [None]):
        if block.text.startswith("#") and "\n" not in block.text:
            assert after is not None and after.kind == "table", block.text


def test_plain_text_without_paragraphs_is_split_into_pages() -> None:
    text = " ".join(f"Line {i} of the audit log mentions account {i * 7}." for i in range(600))
    pages = list(extract_pages(text.encode(), "log.txt", ExtractOptions(text_page_chars=3000)))
    assert len(pages) >= len(text) // 3000
    assert all(len(p.text) <= 3000 for p in pages)
    assert " ".join(p.text for p in pages).split() == text.split()  # nothing lost, nothing repeated


def test_text_encodings() -> None:
    (page,) = extract_pages("Ümsatz: 5 €".encode("utf-16"), "de.txt")
    assert page.text == "Ümsatz: 5 €"
    (page,) = extract_pages("Café crème".encode("cp1252"), "fr.txt")
    assert page.text == "Café crème"


# ----- kinds and failures ---------------------------------------------------------------------------


def test_open_document_summaries(report) -> None:
    info = open_document(report.data, report.filename)
    assert (info.kind, info.mime_type, info.page_count) == ("pdf", "application/pdf", 6)
    assert info.has_text_layer and info.pages_sampled == 6 and info.pages_with_text == 5
    assert not info.repaired
    slide = samples.slide_png()
    info = open_document(slide.data, slide.filename)
    assert (info.kind, info.mime_type, info.page_count, info.has_text_layer) == ("image", "image/png", 1, False)
    md = samples.markdown_file()
    info = open_document(md.data, md.filename)
    assert (info.kind, info.mime_type, info.page_count) == ("text", "text/markdown", 2)


def test_content_wins_over_extension(report) -> None:
    assert detect_kind(report.data, "report.txt") == ("pdf", "application/pdf")
    assert detect_kind(samples.slide_png().data, "slide.jpg") == ("image", "image/png")
    assert detect_kind(b"hello", "notes") == ("text", "text/plain")


def test_empty_file() -> None:
    with pytest.raises(EmptyDocumentError, match=r"'empty.pdf' is empty \(0 bytes\)") as info:
        open_document(b"", "empty.pdf")
    assert info.value.code == "invalid_file" and info.value.filename == "empty.pdf"
    with pytest.raises(EmptyDocumentError, match="contains no text"):
        next(extract_pages(b" \n\n\t ", "blank.md"))


def test_encrypted_pdf() -> None:
    enc = samples.encrypted_pdf()
    for call in (lambda: open_document(enc.data, enc.filename), lambda: next(extract_pages(enc.data, enc.filename))):
        with pytest.raises(EncryptedDocumentError) as info:
            call()
        assert str(info.value) == f"'{enc.filename}' is password-protected; upload an unencrypted copy."
        assert info.value.code == "invalid_file"


def test_truncated_pdf_beyond_repair_is_corrupt() -> None:
    bad = samples.truncated_pdf()
    with pytest.raises(CorruptDocumentError, match="damaged or truncated"):
        open_document(bad.data, bad.filename)
    with pytest.raises(CorruptDocumentError):
        next(extract_pages(bad.data, bad.filename))


def test_truncated_pdf_that_repairs_still_yields_pages() -> None:
    cut = samples.truncated_repairable_pdf()
    info = open_document(cut.data, cut.filename)
    assert info.page_count == cut.page_count and info.repaired
    pages = list(extract_pages(cut.data, cut.filename, NO_OCR))
    assert len(pages) == cut.page_count
    for n in cut.extra["intact_pages"]:
        assert pages[n - 1].text_layer == "native"


@pytest.mark.parametrize(
    "data,filename,match",
    [
        (b"%PDF-1.7\n" + b"garbage " * 64, "broken.pdf", "could not be opened as a PDF"),
        (b"just some words", "report.pdf", "not a valid PDF"),
        (b"GIF89a....", "chart.png", "not a valid PNG image"),
    ],
)
def test_corrupt_files(data: bytes, filename: str, match: str) -> None:
    with pytest.raises(CorruptDocumentError, match=match) as info:
        open_document(data, filename)
    assert info.value.code == "invalid_file"


def test_corrupt_stored_pdf_reason_does_not_reveal_the_server_path(tmp_path) -> None:
    stored = tmp_path / "files" / "file-0123abcd"
    stored.parent.mkdir()
    stored.write_bytes(b"%PDF-1.7\n" + b"garbage " * 64)
    with pytest.raises(CorruptDocumentError, match="could not be opened as a PDF") as info:
        next(extract_pages(stored, "reports/broken.pdf"))
    assert str(tmp_path) not in str(info.value) and "file-0123abcd" not in str(info.value)
    assert str(info.value).startswith("'broken.pdf' could not be opened")


@pytest.mark.parametrize(
    "data,filename,match",
    [
        (b"PK\x03\x04" + b"\x00" * 64, "deck.pptx", "ZIP container"),
        (b"GIF89a" + b"\x00" * 64, "anim.gif", "GIF image"),
        (bytes(range(256)) * 4, "blob.bin", "not a supported file type"),
    ],
)
def test_unsupported_files(data: bytes, filename: str, match: str) -> None:
    with pytest.raises(UnsupportedDocumentError, match=match) as info:
        open_document(data, filename)
    assert info.value.code == "unsupported_file"
    assert "Supported: PDF, PNG, JPEG" in str(info.value)


def test_too_many_pages(report) -> None:
    opts = ExtractOptions(max_pages=3)
    with pytest.raises(TooManyPagesError, match="has 6 pages; at most 3 are accepted"):
        open_document(report.data, report.filename, opts)
    with pytest.raises(TooManyPagesError):
        next(extract_pages(report.data, report.filename, opts))
    md = samples.markdown_file()
    with pytest.raises(TooManyPagesError):
        open_document(md.data, md.filename, ExtractOptions(max_pages=1))


def test_error_hierarchy_and_options_validation() -> None:
    for cls in (
        EmptyDocumentError,
        CorruptDocumentError,
        EncryptedDocumentError,
        TooManyPagesError,
        ImageTooLargeError,
        UnsupportedDocumentError,
    ):
        assert issubclass(cls, DocumentError) and issubclass(cls, Exception)
    with pytest.raises(ValueError):
        ExtractOptions(dpi=0)
    with pytest.raises(ValueError):
        ExtractOptions(tables="magic")  # type: ignore[arg-type]
    assert Block("x", (0, 0, 1, 1)).kind == "text"


def test_samples_are_deterministic() -> None:
    first = samples.all_documents()
    second = samples.all_documents()
    for name, doc in first.items():
        if name != "encrypted":  # AES uses a random IV
            assert doc.data == second[name].data, name


def _borderless_table_pdf() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 80), "Headcount by site", fontsize=16)
    rows = [("Site", "Engineers", "Sales", "Support")] + [
        (f"Site {c}", str(100 + 7 * i), str(40 + 3 * i), str(20 + i)) for i, c in enumerate("ABCDEF")
    ]
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            page.insert_text((72 + 110 * j, 120 + 18 * i), cell, fontsize=10)
    return doc.tobytes()


def test_layout_strategy_finds_borderless_tables() -> None:
    # PyMuPDF 2.x ships its layout analyzer inside the pymupdf wheel (pymupdf-layout 2.x is an empty
    # shim), so a fresh install has it: its absence is a broken install, not a reason to skip.
    assert importlib.util.find_spec("pymupdf.layout") is not None, (
        f"pymupdf {pymupdf.VersionBind} has no pymupdf.layout; install pymupdf>=2.0"
    )
    data = _borderless_table_pdf()
    fast = ExtractOptions(ocr=False, render_images=False)
    (page,) = extract_pages(data, "borderless.pdf", fast)
    assert [b.kind for b in page.blocks if b.kind == "table"] == []  # no ruling lines: "lines" sees no table
    (page,) = extract_pages(data, "borderless.pdf", ExtractOptions(ocr=False, render_images=False, tables="layout"))
    (table,) = [b for b in page.blocks if b.kind == "table"]
    assert table.text.splitlines()[0] == "|Site|Engineers|Sales|Support|"
    assert "|Site F|135|55|25|" in table.text
    assert "Engineers" not in " ".join(b.text for b in page.blocks if b.kind == "text")
