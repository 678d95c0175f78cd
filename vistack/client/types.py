"""What the high-level client returns: answers with cited pages, stream events, ingest reports.

Plain dataclasses built from the server's JSON (see :mod:`vistack.api.responses`
for the wire shapes). An :class:`Answer` can fetch the PNG of each page it
cites through the client that produced it: ``answer.save_pages(dir)`` with
:class:`~vistack.client.Vistack`, ``await answer.asave_pages(dir)`` with
:class:`~vistack.client.AsyncVistack`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from .http import VistackAPIError


class PageImages(Protocol):
    """Fetches a page PNG by its Files API id (``GET /v1/files/{id}/content``)."""

    def fetch(self, file_id: str) -> bytes: ...

    async def afetch(self, file_id: str) -> bytes: ...


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# ----- answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CitedPage:
    """One ``file_citation`` annotation: the page (1-based) and region an answer cites.

    ``index`` is the character offset in :attr:`Answer.text` the citation follows;
    ``source`` the ``[n]`` number the page had in the prompt; ``bbox`` is
    ``"x0,y0,x1,y1"`` in PDF points.
    """

    file_id: str
    filename: str
    page: int | None
    bbox: str | None
    page_image_file_id: str | None
    index: int
    vector_store_id: str | None = None
    source: int | None = None

    @classmethod
    def from_annotation(cls, a: dict[str, Any], offset: int = 0) -> CitedPage:
        return cls(file_id=a["file_id"], filename=a.get("filename") or "", page=_int(a.get("page")),
                   bbox=a.get("bbox"), page_image_file_id=a.get("page_image_file_id"),
                   index=int(a.get("index") or 0) + offset, vector_store_id=a.get("vector_store_id"),
                   source=_int(a.get("source")))

    @property
    def png_name(self) -> str:
        """``<filename stem>-p<page>.png``, safe as a file name."""
        stem = re.sub(r"[^\w.-]+", "_", Path(self.filename).stem or self.file_id).strip("._") or self.file_id
        return f"{stem}-p{self.page if self.page is not None else 0}.png"


@dataclass(frozen=True)
class SearchHit:
    """One file_search result: a chunk of a page with its score and attributes."""

    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, r: dict[str, Any]) -> SearchHit:
        return cls(file_id=r["file_id"], filename=r.get("filename") or "", score=float(r.get("score") or 0.0),
                   text=r.get("text") or "", attributes=dict(r.get("attributes") or {}))

    @property
    def page(self) -> int | None:
        return _int(self.attributes.get("page"))

    @property
    def bbox(self) -> str | None:
        return self.attributes.get("bbox")

    @property
    def page_image_file_id(self) -> str | None:
        return self.attributes.get("page_image_file_id")


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


@dataclass
class Answer:
    """A response to a question: its text, the pages it cites and the search hits behind it.

    ``status`` is ``completed`` or ``incomplete`` (``incomplete_reason`` says why,
    e.g. ``length``); a failed response raises :class:`VistackAPIError` instead.
    """

    text: str
    response_id: str
    status: str
    model: str
    citations: list[CitedPage] = field(default_factory=list)
    results: list[SearchHit] = field(default_factory=list)
    usage: Usage | None = None
    conversation_id: str | None = None
    incomplete_reason: str | None = None
    _images: PageImages | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_response(cls, r: dict[str, Any], images: PageImages | None = None) -> Answer:
        text, citations, results = "", [], []
        for item in r.get("output") or []:
            if item.get("type") == "file_search_call":
                results.extend(SearchHit.from_result(x) for x in item.get("results") or [])
            elif item.get("type") == "message" and item.get("role", "assistant") == "assistant":
                parts = item.get("content")
                for part in parts if isinstance(parts, list) else []:
                    if part.get("type") != "output_text":
                        continue
                    citations.extend(CitedPage.from_annotation(a, len(text)) for a in part.get("annotations") or []
                                     if a.get("type") == "file_citation")
                    text += part.get("text") or ""
        usage = r.get("usage")
        return cls(
            text=text, response_id=r["id"], status=r.get("status") or "", model=r.get("model") or "",
            citations=citations, results=results,
            usage=Usage(**{k: int(usage.get(k) or 0) for k in ("input_tokens", "output_tokens", "total_tokens")})
            if usage else None,
            conversation_id=(r.get("conversation") or {}).get("id"),
            incomplete_reason=(r.get("incomplete_details") or {}).get("reason"),
            _images=images,
        )

    @property
    def pages(self) -> list[CitedPage]:
        """The cited pages, each once (first citation wins), in citation order."""
        seen: dict[tuple[str, int | None], CitedPage] = {}
        for c in self.citations:
            seen.setdefault((c.file_id, c.page), c)
        return list(seen.values())

    def page_png(self, citation: CitedPage | int) -> bytes:
        """PNG bytes of a cited page (a :class:`CitedPage` or its position in :attr:`citations`)."""
        return self._source().fetch(self._image_id(citation))

    async def apage_png(self, citation: CitedPage | int) -> bytes:
        return await self._source().afetch(self._image_id(citation))

    def save_pages(self, directory: str | Path) -> list[Path]:
        """Write each cited page's PNG as ``<filename>-p<page>.png`` under ``directory``; the paths written."""
        return _save(self.pages, directory, lambda c: self.page_png(c))

    async def asave_pages(self, directory: str | Path) -> list[Path]:
        images = {c.page_image_file_id: await self.apage_png(c) for c in self.pages if c.page_image_file_id}
        return _save(self.pages, directory, lambda c: images[c.page_image_file_id])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field but the client handle."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if not f.name.startswith("_")}

    def _source(self) -> PageImages:
        if self._images is None:
            raise VistackAPIError(400, "this answer was not made by a client, so it cannot fetch page images")
        return self._images

    def _image_id(self, citation: CitedPage | int) -> str:
        c = self.citations[citation] if isinstance(citation, int) else citation
        if not c.page_image_file_id:
            raise VistackAPIError(404, f"{c.filename} page {c.page} has no page image")
        return c.page_image_file_id


def _save(pages: list[CitedPage], directory: str | Path, png: Callable[[CitedPage], bytes]) -> list[Path]:
    out = Path(directory).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written: dict[Path, str] = {}
    for c in pages:
        if not c.page_image_file_id:
            continue
        path = out / c.png_name
        if written.get(path, c.page_image_file_id) != c.page_image_file_id:  # two files with one stem
            path = out / f"{path.stem}-{c.file_id[-8:]}.png"
        path.write_bytes(png(c))
        written[path] = c.page_image_file_id
    return list(written)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# ----- stream events (``ask_stream`` / ``Chat.send_stream``) -------------------------------------------


@dataclass(frozen=True)
class SearchStarted:
    """The file search began (it runs before the model is called)."""

    queries: list[str]
    item_id: str


@dataclass(frozen=True)
class SearchDone:
    """The file search finished; ``results`` are the hits, best first."""

    results: list[SearchHit]
    item_id: str


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Citation:
    """A page the answer cites (sent after the text it follows)."""

    cited: CitedPage


@dataclass(frozen=True)
class Done:
    """The last event of a successful stream: the whole answer (``status`` completed or incomplete)."""

    answer: Answer


@dataclass(frozen=True)
class Failed:
    """The last event of a failed stream (the response is stored with status ``failed``)."""

    message: str
    code: str | None = None
    response_id: str | None = None


StreamEvent = SearchStarted | SearchDone | TextDelta | Citation | Done | Failed


# ----- ingestion -------------------------------------------------------------------------------------

FileState = Literal["completed", "failed", "cancelled", "in_progress", "skipped"]


@dataclass(frozen=True)
class FileResult:
    """One local file's outcome; ``reason`` is the server's ``last_error`` message, or why it was skipped."""

    path: str
    status: FileState
    reason: str = ""
    file_id: str | None = None
    pages: int = 0  # estimated locally (PDF page count), for progress


@dataclass(frozen=True)
class IngestProgress:
    """Passed to ``ingest(progress=...)``: after each upload, and whenever files finish ingesting."""

    stage: Literal["uploading", "ingesting", "done"]
    files_uploaded: int
    files_done: int
    files_total: int
    pages_done: int
    pages_total: int
    file: FileResult | None = None  # the file that just finished, if one did


@dataclass
class IngestReport:
    store_id: str
    store_name: str | None
    files: list[FileResult]
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every file given was ingested (nothing failed, was skipped or is still running), and there was one."""
        return bool(self.files) and all(f.status == "completed" for f in self.files)

    @property
    def completed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "completed"]

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status != "completed"]

    @property
    def pages(self) -> int:
        return sum(f.pages for f in self.completed)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)
