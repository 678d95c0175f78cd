"""The file_search tool: search one or more vector stores and group the hits by page.

The agent reasons over *pages*: a hit is a chunk, but what the vision model
looks at and what a citation points to is the page the chunk came from. So
the results (kept as OpenAI's ``file_search_call.results``) are also folded
into :class:`Source` pages, numbered ``[1]``, ``[2]``, ... in rank order; the
numbers are what the model is asked to cite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vistack.api import BadRequestError
from vistack.api.responses import FileSearchResult, FileSearchTool
from vistack.api.vector_stores import SearchRequest
from vistack.context import current_principal
from vistack.rag.passages import Blocks, bbox_text, best_passage, chunk_blocks

if TYPE_CHECKING:
    from vistack.rag.vector_stores import VectorStoreService


@dataclass
class Source:
    """One retrieved page."""

    number: int
    file_id: str
    filename: str
    page: int | None
    page_image_file_id: str | None
    bbox: str | None
    score: float
    vector_store_id: str
    texts: list[str] = field(default_factory=list)
    page_size: str | None = None  # "w,h" in PDF points: bbox's frame
    query: str = ""  # what found it
    blocks: Blocks = ()  # the best chunk's blocks (terms and box), when it has several

    def passage_bbox(self, answer: str = "") -> str | None:
        """The box of the best chunk's block that the query (and the answer) point at, else the chunk's."""
        box = best_passage(self.blocks, self.query, answer)
        return bbox_text(box) if box is not None else self.bbox

    @property
    def label(self) -> str:
        return f"{self.filename}, page {self.page}" if self.page else self.filename


@dataclass
class SearchOutcome:
    results: list[FileSearchResult]
    sources: list[Source]


async def file_search(
    service: VectorStoreService | None, tool: FileSearchTool, query: str, default_mode: str | None
) -> SearchOutcome:
    """Search every store of ``tool`` with ``query``; the best ``max_num_results`` hits overall."""
    if service is None:
        raise BadRequestError(
            "the file_search tool needs vector stores, which this distribution does not configure", param="tools"
        )
    if not query.strip():
        raise BadRequestError("file_search needs a query: the input has no user text", param="input")
    k = tool.max_num_results or 10
    mode = getattr(tool, "search_mode", None) or default_mode
    hits: list[tuple[str, FileSearchResult]] = []
    for store_id in tool.vector_store_ids:
        request = SearchRequest(
            query=query, max_num_results=k, filters=tool.filters, ranking_options=tool.ranking_options,
            search_mode=mode,
        )
        page = await service.search(store_id, request, current_principal())
        for r in page.data:
            hits.append((store_id, FileSearchResult(
                attributes=dict(r.attributes or {}), file_id=r.file_id, filename=r.filename, score=r.score,
                text="\n".join(c.text for c in r.content),
            )))
    hits.sort(key=lambda h: h[1].score, reverse=True)
    hits = hits[:k]
    return SearchOutcome(results=[r for _, r in hits], sources=group_by_page(hits, query))


def group_by_page(hits: list[tuple[str, FileSearchResult]], query: str = "") -> list[Source]:
    """Pages in the order of their best hit; each keeps its chunks' texts and its best chunk's bbox."""
    pages: dict[tuple[str, object], Source] = {}
    for store_id, r in hits:
        page = r.attributes.get("page")
        key = (r.file_id, page)
        source = pages.get(key)
        if source is None:
            image = r.attributes.get("page_image_file_id") or None
            bbox = r.attributes.get("bbox") or None
            source = pages[key] = Source(
                number=len(pages) + 1, file_id=r.file_id, filename=r.filename,
                page=int(page) if isinstance(page, (int, float)) else None,
                page_image_file_id=str(image) if image else None, bbox=str(bbox) if bbox else None,
                score=r.score, vector_store_id=store_id, page_size=str(r.attributes.get("page_size") or "") or None,
                query=query, blocks=chunk_blocks(r.text, r.attributes),
            )
        source.texts.append(r.text)
    return list(pages.values())
