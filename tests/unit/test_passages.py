"""Citations outline the block of a chunk that the question and the cited sentence point at."""

from __future__ import annotations

from vistack.agents.citations import cite
from vistack.agents.tools.file_search import group_by_page
from vistack.api.responses import FileSearchResult
from vistack.rag.chunking import chunk_page
from vistack.rag.passages import best_passage, chunk_passage_bbox, decode_passages, encode_passages, passage_terms
from vistack.rag.readers.model import Block, ExtractedPage

HEADING = Block("Financial highlights", (72.0, 60.0, 300.0, 80.0), "text")
REVENUE = Block("Total revenues for fiscal 2025 were 4.2 billion dollars, up 12 percent.", (72.0, 90.0, 520.0, 130.0),
                "text")
CASH = Block("Free cash flow was 910 million dollars; no long-term debt remains.", (72.0, 300.0, 520.0, 340.0), "text")
PAGE = ExtractedPage(number=2, width=612.0, height=792.0, blocks=[HEADING, REVENUE, CASH], image_png=None,
                     has_text_layer=True)


def test_a_chunk_of_several_blocks_records_each_blocks_span_and_box() -> None:
    (chunk,) = chunk_page(PAGE, max_tokens=200, overlap_tokens=40)
    assert [chunk.text[a:b] for a, b, _ in chunk.passages] == [HEADING.text, REVENUE.text, CASH.text]
    assert [box for _, _, box in chunk.passages] == [HEADING.bbox, REVENUE.bbox, CASH.bbox]
    assert decode_passages(encode_passages(chunk.passages)) == [
        (a, b, tuple(round(v, 1) for v in box)) for a, b, box in chunk.passages]
    single = ExtractedPage(number=1, width=612.0, height=792.0, blocks=[CASH], image_png=None, has_text_layer=True)
    assert chunk_page(single, 200, 40)[0].passages == ()  # one block: the chunk's box is the block's


def test_the_best_block_is_the_one_the_question_names() -> None:
    (chunk,) = chunk_page(PAGE, 200, 40)
    blocks = passage_terms(chunk.text, chunk.passages)
    assert best_passage(blocks, "What was the revenue in 2025?") == REVENUE.bbox  # stemmed
    assert best_passage(blocks, "How much cash flow?") == CASH.bbox
    assert best_passage(blocks, "Who is the auditor?") is None  # nothing shared: the chunk's
    # the cited sentence decides between blocks the question does not separate
    assert best_passage(blocks, "numbers for 2025", "The company kept no long-term debt.") == CASH.bbox
    assert decode_passages("garbage") == [] and decode_passages(None) == []


def test_citations_carry_the_passage_box() -> None:
    (chunk,) = chunk_page(PAGE, 200, 40)
    attributes = {"page": 2, "bbox": "72.0,60.0,520.0,340.0", "page_size": "612,792",
                  "passage_boxes": encode_passages(chunk.passages), "page_image_file_id": "file-img"}
    hit = FileSearchResult(attributes=attributes, file_id="file-1", filename="report.pdf", score=0.9, text=chunk.text)
    sources = group_by_page([("vs_1", hit)], "What was the revenue?")
    (annotation,) = cite("Revenue was 4.2 billion [1].", sources)
    assert annotation.bbox == "72.0,90.0,520.0,130.0" and annotation.page_size == "612,792"
    (unrelated,) = cite("No idea [1].", group_by_page([("vs_1", hit)], "Who signed it?"))
    assert unrelated.bbox == attributes["bbox"]
    contextual = hit.model_copy(update={"text": "A report's summary page.\n\n" + chunk.text,
                                        "attributes": {**attributes, "chunk_context": "A report's summary page."}})
    (shifted,) = cite("Cash [1].", group_by_page([("vs_1", contextual)], "free cash flow"))
    assert shifted.bbox == "72.0,300.0,520.0,340.0"  # spans count in the chunk's own text, not the context


def test_search_hits_name_the_block_their_query_points_at() -> None:
    (chunk,) = chunk_page(PAGE, 200, 40)
    attributes = {"passage_boxes": encode_passages(chunk.passages)}
    assert chunk_passage_bbox(chunk.text, attributes, "revenues in 2025") == "72.0,90.0,520.0,130.0"
    assert chunk_passage_bbox(chunk.text, attributes, "Who is the auditor?") is None
    assert chunk_passage_bbox(chunk.text, {}, "revenues") is None  # no blocks recorded (e.g. vector-io chunks)
    context = {**attributes, "chunk_context": "A report's summary page."}
    assert chunk_passage_bbox("A report's summary page.\n\n" + chunk.text, context, "free cash flow") == \
        "72.0,300.0,520.0,340.0"
