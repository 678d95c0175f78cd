"""Passages inside a chunk: which block of a retrieved chunk a question (and its answer) points at.

A chunk groups a page's consecutive blocks (paragraphs, headings) up to the chunk size, so its ``bbox``
often spans most of the page. Each block's character span in the chunk text and its box are stored
with the chunk (``passage_boxes``: ``"start-end:x0,y0,x1,y1;..."``, PDF points), and a citation
outlines the block whose terms best match the question (and, at half weight, the answer) — the
passage a reader looks for, not the whole chunk. With no block matching, the chunk's box stays.
Terms are the keyword index's (lowercase, stopwords out, Snowball-stemmed), so "revenues" meets
"revenue" as it does in search.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from vistack.rag.keyword_index import tokenize

Box = tuple[float, float, float, float]
Span = tuple[int, int, Box]


def bbox_text(bbox: Box) -> str:
    """Bounding boxes travel as "x0,y0,x1,y1" (PDF points): attribute values must be scalars."""
    return ",".join(f"{v:.1f}" for v in bbox)


def encode_passages(spans: Sequence[Span]) -> str:
    return ";".join(f"{a}-{b}:{bbox_text(box)}" for a, b, box in spans)


def decode_passages(value: object) -> list[Span]:
    """The stored spans; anything malformed (an attribute a client overwrote) yields none."""
    if not isinstance(value, str) or not value:
        return []
    spans: list[Span] = []
    try:
        for part in value.split(";"):
            where, box = part.split(":")
            start, end = (int(x) for x in where.split("-"))
            x0, y0, x1, y1 = (float(x) for x in box.split(","))
            spans.append((start, end, (x0, y0, x1, y1)))
    except ValueError:
        return []
    return spans


Blocks = tuple[tuple[frozenset[str], Box], ...]


def passage_terms(text: str, spans: Sequence[Span]) -> Blocks:
    """Each block's terms (the keyword index's) with its box."""
    return tuple((frozenset(tokenize(text[start:end])), box) for start, end, box in spans)


@functools.lru_cache(maxsize=4096)
def stored_blocks(text: str, passage_boxes: str) -> Blocks:
    """A stored chunk's blocks (its own text and ``passage_boxes`` attribute), cached: tokenizing is the
    cost of finding a passage, and the same chunks come back across searches and then in citations."""
    return passage_terms(text, decode_passages(passage_boxes))


def best_passage(blocks: Blocks, question: str, answer: str = "") -> Box | None:
    """The box of the block that shares the most terms with ``question`` (each distinct term 1) and
    ``answer`` (0.5), or None when no block shares any (or there is only one block)."""
    if len(blocks) < 2:
        return None
    wanted = set(tokenize(question))
    echoed = set(tokenize(answer)) - wanted
    best: tuple[float, Box | None] = (0.0, None)
    for terms, box in blocks:
        score = len(terms & wanted) + 0.5 * len(terms & echoed)
        if score > best[0]:
            best = (score, box)
    return best[1]


def own_text(text: str, attributes: Mapping[str, object]) -> str:
    """A chunk's text as chunked: contextual chunking prepends its context paragraph, which spans skip."""
    context = attributes.get("chunk_context")
    return text.removeprefix(f"{context}\n\n") if isinstance(context, str) and context else text


def chunk_blocks(text: str, attributes: Mapping[str, object]) -> Blocks:
    """The blocks of a retrieved chunk, from its text and stored attributes (none when it has no spans)."""
    boxes = attributes.get("passage_boxes")
    return stored_blocks(own_text(text, attributes), boxes) if isinstance(boxes, str) and boxes else ()


def chunk_passage_bbox(text: str, attributes: Mapping[str, object], question: str) -> str | None:
    """For a retrieved chunk (its text and stored attributes): the box of the block ``question`` points at."""
    box = best_passage(chunk_blocks(text, attributes), question)
    return bbox_text(box) if box is not None else None
