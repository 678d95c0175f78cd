"""``file_citation`` annotations for the pages an answer used.

The model is asked to cite sources as ``[n]``. Each ``[n]`` it wrote
becomes an annotation whose ``index`` is the character offset right after
the marker (Llama Stack's convention: the position in the text). Sources
the model was shown but did not mark are still cited, at the end of the text,
when the model marked nothing at all — a small or distracted model must not
leave the user without the pages the answer came from. Each annotation
names the page: ``page``, ``bbox``, ``page_size`` and ``page_image_file_id`` (vistack's
extra fields on OpenAI's ``file_citation``), so a client can open the page image and outline the passage:
``bbox`` is the block of the cited chunk that the question and the cited sentence point at
(:mod:`vistack.rag.passages`), or the whole chunk when none does.
"""

from __future__ import annotations

import re

from vistack.api.responses import FileCitation

from .tools.file_search import Source

_MARKER = re.compile(r"\[(\d{1,3})\]")


def cite(text: str, shown: list[Source], fallback: list[Source] | None = None) -> list[FileCitation]:
    """Annotations for ``text``: one per ``[n]`` marker of a shown source, else one per ``fallback`` source."""
    by_number = {s.number: s for s in shown}
    annotations: list[FileCitation] = []
    for match in _MARKER.finditer(text):
        source = by_number.get(int(match.group(1)))
        if source is not None:
            annotations.append(_annotation(source, match.end(), _sentence_before(text, match.start())))
    if not annotations:
        annotations = [_annotation(s, len(text), text) for s in (fallback if fallback is not None else shown)]
    return annotations


def _sentence_before(text: str, end: int) -> str:
    """The sentence a ``[n]`` marker closes: what the cited passage should support."""
    start = max(text.rfind(stop, 0, end) for stop in (". ", "! ", "? ", "\n"))
    return text[start + 1 : end]


def _annotation(source: Source, index: int, claim: str) -> FileCitation:
    return FileCitation(
        file_id=source.file_id,
        filename=source.filename,
        index=index,
        page=source.page,
        bbox=source.passage_bbox(claim),  # the block the question and the claim point at, else the chunk
        page_image_file_id=source.page_image_file_id,
        page_size=source.page_size,
        vector_store_id=source.vector_store_id,
        source=source.number,
    )
