"""The high-level async client: ingest documents, ask questions, chat — built on the ``openai`` SDK.

:class:`AsyncVistack` adds what the OpenAI client lacks for visual document
Q&A (store names, folder ingestion with progress and per-file reasons,
answers with cited pages and their images, typed stream events,
conversations as a chat). Everything else is one attribute away:
``client.openai`` is the underlying ``openai.AsyncOpenAI`` pointed at
``<base_url>/v1``. :class:`~vistack.client.Vistack` is the synchronous facade.

Errors are always :class:`~vistack.client.VistackAPIError` (status, message,
code); an unreachable server is status 503 with "cannot reach the vistack
server at URL".
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import openai

from .http import VistackAPIError
from .paths import collect_paths, content_type, estimate_pages
from .types import (
    Answer,
    Citation,
    CitedPage,
    Done,
    Failed,
    FileResult,
    IngestProgress,
    IngestReport,
    SearchDone,
    SearchHit,
    SearchStarted,
    StreamEvent,
    TextDelta,
)

DEFAULT_URL = "http://127.0.0.1:8321"
BATCH_SIZE = 500  # file ids per file batch (the server accepts up to 2000)
MAX_POLL_S = 3.0

Stores = str | Sequence[str]


@contextlib.contextmanager
def api_errors(base_url: str) -> Iterator[None]:
    """``openai`` exceptions -> :class:`VistackAPIError` with the server's message."""
    try:
        yield
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        message = body.get("message") or (e.response.text if e.response is not None else "") or str(e)
        raise VistackAPIError(e.status_code, str(message), body.get("code")) from e
    except openai.APITimeoutError as e:
        raise VistackAPIError(504, f"the vistack server at {base_url} did not answer in time ({e})") from e
    except openai.APIConnectionError as e:
        cause = e.__cause__ or e
        raise VistackAPIError(503, f"cannot reach the vistack server at {base_url}: {cause}") from e
    except openai.APIError as e:  # e.g. an ``error`` event in a stream
        body = e.body if isinstance(e.body, dict) else {}
        raise VistackAPIError(500, e.message, body.get("code")) from e


def _http_module() -> Any:
    """The httpx flavour the installed ``openai`` SDK is built on (``httpx``, or ``httpx2`` from openai 3)."""
    base = next(c for c in openai.DefaultAsyncHttpxClient.__mro__[1:] if c.__name__ == "AsyncClient")
    return importlib.import_module(base.__module__.split(".")[0])


def _store_list(store: Stores | None) -> list[str]:
    if store is None:
        return []
    return [store] if isinstance(store, str) else list(store)


class AsyncVistack:
    """Async client for a vistack server (``base_url``) or an in-process ASGI app (``app``).

    ``api_key`` defaults to ``$VISTACK_API_KEY`` (servers without auth ignore it);
    ``timeout`` bounds each HTTP request (answers on a CPU can take minutes).
    """

    def __init__(self, base_url: str = DEFAULT_URL, *, api_key: str | None = None, timeout: float = 300.0,
                 max_retries: int = 0, app: Any = None, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.where = "the in-process server" if app is not None else self.base_url  # for messages
        http_client = None
        if app is not None:
            http_client = openai.DefaultAsyncHttpxClient(transport=_http_module().ASGITransport(app=app),
                                                         timeout=timeout)
        self.openai = openai.AsyncOpenAI(
            base_url=f"{self.base_url}/v1", api_key=api_key or os.environ.get("VISTACK_API_KEY") or "none",
            timeout=timeout, max_retries=max_retries, http_client=http_client, default_headers=headers,
        )
        self._default_model: str | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.openai.close()

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return api_errors(self.base_url)

    # ----- models and stores ---------------------------------------------------------------------------

    async def default_model(self) -> str:
        """The first llm of ``GET /v1/models``, preferring one whose metadata says ``vision``."""
        if self._default_model is None:
            with self._errors():
                models = [m.to_dict(mode="json") async for m in self.openai.models.list()]
            llms = [m for m in models if (m.get("custom_metadata") or {}).get("model_type", "llm") == "llm"]
            vision = [m for m in llms if str((m.get("custom_metadata") or {}).get("vision", "")).lower() == "true"]
            if not llms:
                raise VistackAPIError(404, f"{self.where} serves no llm model; "
                                           "register one or pass model=...")
            self._default_model = (vision or llms)[0]["id"]
        return self._default_model

    async def find_store(self, store: str) -> dict[str, Any] | None:
        """A vector store by id or name (the oldest of that name), or None."""
        with self._errors():
            if store.startswith("vs_"):
                try:
                    return (await self.openai.vector_stores.retrieve(store)).to_dict(mode="json")
                except (openai.NotFoundError, openai.BadRequestError):
                    pass
            async for vs in self.openai.vector_stores.list(limit=100, order="asc"):
                if vs.id == store or vs.name == store:
                    return vs.to_dict(mode="json")
        return None

    async def store_ids(self, stores: Stores) -> list[str]:
        """Vector store ids for names or ids; an unknown one raises 404."""
        ids = []
        for name in _store_list(stores):
            found = await self.find_store(name)
            if found is None:
                raise VistackAPIError(404, f"no vector store named '{name}' on {self.where}; ingest documents "
                                           f"into it first (`vistack ingest PATH --store {name}`)", "not_found")
            ids.append(found["id"])
        return list(dict.fromkeys(ids))

    async def page_png(self, file_id: str) -> bytes:
        """A file's bytes (a page image: ``page_image_file_id`` of a citation or search hit)."""
        with self._errors():
            return (await self.openai.files.content(file_id)).content

    # ----- ingestion -----------------------------------------------------------------------------------

    async def ingest(self, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], store: str, *,
                     attributes: dict[str, str | float | bool] | None = None,
                     progress: Callable[[IngestProgress], None] | None = None,
                     timeout_s: float = 3600.0, poll_s: float = 0.5) -> IngestReport:
        """Upload files and folders (recursively) into ``store`` (a name, created if missing, or an id).

        Waits at most ``timeout_s`` for the server to ingest them; files still
        running then are reported ``in_progress`` (the server finishes them anyway).
        ``progress`` is called after each upload and whenever files finish.
        """
        started = time.monotonic()
        given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        files, skipped = collect_paths([str(p) for p in given])
        found = await self.find_store(store)
        if found is None and store.startswith("vs_"):  # an id that is not there: never a store named like one
            raise VistackAPIError(404, f"no vector store '{store}' on {self.where}", "not_found")
        if found is None:
            with self._errors():
                found = (await self.openai.vector_stores.create(name=store)).to_dict(mode="json")
        store_id = found["id"]
        pages = {p: estimate_pages(p) for p in files}
        report = IngestReport(store_id, found.get("name"), [FileResult(s, "skipped", why) for s, why in skipped])
        track = _Tracker(progress, len(files), sum(pages.values()))

        uploaded: dict[str, Path] = {}
        for path in files:
            try:
                with path.open("rb") as fh, self._errors():
                    file = await self.openai.files.create(file=(path.name, fh, content_type(path)),
                                                          purpose="assistants")
            except (VistackAPIError, OSError) as e:
                reason = e.message if isinstance(e, VistackAPIError) else str(e)
                track.finished(report, FileResult(str(path), "failed", f"upload: {reason}", None, pages[path]),
                              "uploading")
                continue
            uploaded[file.id] = path
            track.uploaded()

        ids = list(uploaded)
        batches: list[str] = []
        for i in range(0, len(ids), BATCH_SIZE):
            with self._errors():
                batch = await self.openai.vector_stores.file_batches.create(
                    store_id, file_ids=ids[i:i + BATCH_SIZE], **({"attributes": attributes} if attributes else {}))
            batches.append(batch.id)

        pending = dict(uploaded)
        finished = dict.fromkeys(batches, 0)  # per batch: files known to be done (list them only when it grows)
        deadline = time.monotonic() + timeout_s
        delay = poll_s
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 1.5, MAX_POLL_S)
            for batch_id in batches:
                with self._errors():
                    batch = await self.openai.vector_stores.file_batches.retrieve(batch_id, vector_store_id=store_id)
                    done = batch.file_counts.total - batch.file_counts.in_progress
                    if batch.status == "in_progress" and done <= finished[batch_id]:
                        continue
                    finished[batch_id] = done
                    async for f in self.openai.vector_stores.file_batches.list_files(
                            batch_id, vector_store_id=store_id, limit=100):
                        if f.id in pending and f.status != "in_progress":
                            path = pending.pop(f.id)
                            reason = f.last_error.message if f.last_error else ""
                            track.finished(report, FileResult(str(path), f.status, reason, f.id, pages[path]))
        for file_id, path in pending.items():
            report.files.append(FileResult(str(path), "in_progress",
                                           f"still ingesting after {timeout_s:.0f}s (the server goes on)",
                                           file_id, pages[path]))
        report.files.sort(key=lambda f: f.path)
        report.elapsed_s = time.monotonic() - started
        track.done()
        return report

    # ----- questions -----------------------------------------------------------------------------------

    async def ask(self, question: str, store: Stores | None, *, model: str | None = None,
                  strategy: str | None = None, pages: int | None = None, max_output_tokens: int | None = None,
                  instructions: str | None = None, previous_response_id: str | None = None,
                  conversation: str | None = None, max_num_results: int | None = None,
                  filters: dict[str, Any] | None = None) -> Answer:
        """Answer ``question`` from the pages of ``store`` (name, id, or a list; None: no documents).

        The search runs first and its hits come back in :attr:`Answer.results`;
        ``strategy`` (``top1``, ``stitch``, ``per_page``, ``text``) and ``pages``
        choose how page images reach the vision model.
        """
        body = await self._body(question, await self.store_ids(store) if store else [], model=model,
                                strategy=strategy, pages=pages, max_output_tokens=max_output_tokens,
                                instructions=instructions, previous_response_id=previous_response_id,
                                conversation=conversation, max_num_results=max_num_results, filters=filters)
        return await self._create(body)

    async def ask_stream(self, question: str, store: Stores | None, **options: Any) -> AsyncIterator[StreamEvent]:
        """Like :meth:`ask` (same keyword options), as events: SearchStarted, SearchDone, TextDelta...,
        Citation..., then Done or Failed.

        Errors before the response starts (unknown store or model, bad options)
        raise :class:`VistackAPIError`; a response that fails midway ends with :class:`Failed`.
        """
        body = await self._body(question, await self.store_ids(store) if store else [], **options)
        async with contextlib.aclosing(self._stream(body)) as events:
            async for event in events:
                yield event

    async def _create(self, body: dict[str, Any]) -> Answer:
        with self._errors():
            response = (await self.openai.responses.create(**body)).to_dict(mode="json")
        if response.get("status") == "failed":
            error = response.get("error") or {}
            raise VistackAPIError(500, f"response {response['id']} failed: {error.get('message', 'unknown error')}",
                                  error.get("code"))
        return Answer.from_response(response, _Images(self))

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        with self._errors():
            stream = await self.openai.responses.create(**body, stream=True)
        images = _Images(self)
        response_id = None
        try:
            with self._errors():
                async for raw in stream:
                    event = raw.to_dict(mode="json")
                    kind = event.get("type", "")
                    if kind == "response.created":
                        response_id = event["response"]["id"]
                    mapped = _map_event(kind, event, images, response_id)
                    if mapped is not None:
                        yield mapped
                        if isinstance(mapped, (Done, Failed)):
                            return
        finally:
            await stream.close()

    async def _body(self, question: str, store_ids: list[str], *, model: str | None = None,
                    strategy: str | None = None, pages: int | None = None, max_output_tokens: int | None = None,
                    instructions: str | None = None, previous_response_id: str | None = None,
                    conversation: str | None = None, max_num_results: int | None = None,
                    filters: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model or await self.default_model(), "input": question}
        if store_ids:
            tool: dict[str, Any] = {"type": "file_search", "vector_store_ids": store_ids}
            if max_num_results is not None:
                tool["max_num_results"] = max_num_results
            if filters is not None:
                tool["filters"] = filters
            body.update(tools=[tool], tool_choice={"type": "file_search"}, include=["file_search_call.results"])
        optional = {"instructions": instructions, "max_output_tokens": max_output_tokens,
                    "previous_response_id": previous_response_id, "conversation": conversation}
        body.update({k: v for k, v in optional.items() if v is not None})
        vision = {k: v for k, v in (("strategy", strategy), ("pages", pages)) if v is not None}
        if vision:
            body["extra_body"] = {"vision": vision}
        return body

    # ----- conversations -------------------------------------------------------------------------------

    async def chat(self, store: Stores | None = None, *, metadata: dict[str, str] | None = None,
                   **options: Any) -> AsyncChat:
        """A chat whose history lives in a new Conversation; ``options`` as for :meth:`ask`."""
        chat = AsyncChat(self, await self.store_ids(store) if store else [], options, metadata)
        await chat.new()
        return chat


class AsyncChat:
    """A conversation: each :meth:`send` is one response continuing it (``conversation=<id>``)."""

    def __init__(self, client: AsyncVistack, store_ids: list[str], options: dict[str, Any],
                 metadata: dict[str, str] | None = None) -> None:
        self.client, self.store_ids, self.options, self.metadata = client, store_ids, options, metadata
        self.id = ""

    async def new(self) -> str:
        """Start a new conversation (history starts empty); its id."""
        with self.client._errors():
            conv = await self.client.openai.conversations.create(
                **({"metadata": self.metadata} if self.metadata else {}))
        self.id = conv.id
        return self.id

    async def send(self, text: str) -> Answer:
        """Ask within the conversation (the server adds the question and the answer to its items)."""
        return await self.client._create(await self._body(text))

    async def send_stream(self, text: str) -> AsyncIterator[StreamEvent]:
        """:meth:`send` as events (see :meth:`AsyncVistack.ask_stream`)."""
        body = await self._body(text)
        async with contextlib.aclosing(self.client._stream(body)) as events:
            async for event in events:
                yield event

    async def _body(self, text: str) -> dict[str, Any]:
        if not self.id:
            await self.new()
        return await self.client._body(text, self.store_ids, conversation=self.id, **self.options)

    async def items(self) -> list[dict[str, Any]]:
        """The conversation's items, oldest first (messages and tool calls, as JSON)."""
        with self.client._errors():
            return [i.to_dict(mode="json")
                    async for i in self.client.openai.conversations.items.list(self.id, order="asc", limit=100)]


# ----- helpers -------------------------------------------------------------------------------------------


class _Images:
    """Page images for an :class:`Answer` made by an async client (sync fetch only through :class:`Vistack`)."""

    def __init__(self, client: AsyncVistack) -> None:
        self.client = client

    def fetch(self, file_id: str) -> bytes:
        raise VistackAPIError(400, "an AsyncVistack answer fetches pages with `await answer.apage_png(...)` / "
                                   "`await answer.asave_pages(dir)`")

    async def afetch(self, file_id: str) -> bytes:
        return await self.client.page_png(file_id)


class _Tracker:
    """Counts for :class:`IngestProgress`; records each finished file in the report."""

    def __init__(self, callback: Callable[[IngestProgress], None] | None, files: int, pages: int) -> None:
        self.callback, self.files_total, self.pages_total = callback, files, pages
        self.files_uploaded = self.files_done = self.pages_done = 0

    def uploaded(self) -> None:
        self.files_uploaded += 1
        self._emit("uploading")

    def finished(self, report: IngestReport, result: FileResult, stage: str = "ingesting") -> None:
        report.files.append(result)
        self.files_done += 1
        self.pages_done += result.pages
        self._emit(stage, result)

    def done(self) -> None:
        self._emit("done")

    def _emit(self, stage: Any, file: FileResult | None = None) -> None:
        if self.callback is not None:
            self.callback(IngestProgress(stage, self.files_uploaded, self.files_done, self.files_total,
                                         self.pages_done, self.pages_total, file))


def _map_event(kind: str, event: dict[str, Any], images: Any, response_id: str | None) -> StreamEvent | None:
    item = event.get("item") or {}
    if kind == "response.output_item.added" and item.get("type") == "file_search_call":
        return SearchStarted(queries=list(item.get("queries") or []), item_id=item.get("id", ""))
    if kind == "response.output_item.done" and item.get("type") == "file_search_call":
        return SearchDone(results=[SearchHit.from_result(r) for r in item.get("results") or []],
                          item_id=item.get("id", ""))
    if kind == "response.output_text.delta":
        return TextDelta(event.get("delta") or "")
    if kind == "response.output_text.annotation.added" and (event.get("annotation") or {}).get("type") == \
            "file_citation":
        return Citation(CitedPage.from_annotation(event["annotation"]))
    if kind in ("response.completed", "response.incomplete"):
        return Done(Answer.from_response(event["response"], images))
    if kind == "response.failed":
        error = event["response"].get("error") or {}
        return Failed(error.get("message") or "the response failed", error.get("code"), event["response"]["id"])
    if kind == "error":
        return Failed(event.get("message") or "stream error", event.get("code"), response_id)
    return None
