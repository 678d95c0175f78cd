"""The synchronous facade: :class:`Vistack` runs :class:`AsyncVistack` on a private event loop thread.

One code path for both flavours; the facade works inside programs that
already run an event loop (notebooks) because its loop is its own. Callbacks
given to :meth:`Vistack.ingest` run on that thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, Self, TypeVar

import openai

from .documents import DEFAULT_URL, AsyncChat, AsyncVistack, Stores
from .http import VistackAPIError
from .types import Answer, Done, IngestProgress, IngestReport, StreamEvent

T = TypeVar("T")


class _Loop:
    """An event loop on a daemon thread; ``run`` blocks the caller until a coroutine finishes there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vistack-client", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.loop.is_closed() or threading.current_thread() is self.thread:
            coro.close()
            raise VistackAPIError(400, "this vistack client is closed" if self.loop.is_closed() else
                                  "a callback of the sync client cannot call it (it runs on the client's own thread)")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:  # Ctrl-C while waiting: stop the work on the loop too
            future.cancel()
            raise

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on this loop from any other loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def iterate(self, events: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    item = self.run(events.__anext__())  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if not self.loop.is_closed():
                self.run(events.aclose())  # type: ignore[attr-defined]

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


class _Images:
    """Page images for answers of the sync client: ``fetch`` blocks, ``afetch`` works from any loop."""

    def __init__(self, loop: _Loop, client: AsyncVistack) -> None:
        self.loop, self.client = loop, client

    def fetch(self, file_id: str) -> bytes:
        return self.loop.run(self.client.page_png(file_id))

    async def afetch(self, file_id: str) -> bytes:
        return await self.loop.run_async(self.client.page_png(file_id))


class Vistack:
    """Synchronous client: the same methods as :class:`AsyncVistack`, blocking.

    >>> with Vistack("http://127.0.0.1:8321") as vs:
    ...     vs.ingest("./reports", store="finance")
    ...     answer = vs.ask("What was Q3 revenue in EMEA?", store="finance")
    ...     print(answer.text, [(c.filename, c.page) for c in answer.pages])
    ...     answer.save_pages("./cited")
    """

    def __init__(self, base_url: str = DEFAULT_URL, *, api_key: str | None = None, timeout: float = 300.0,
                 max_retries: int = 0, app: Any = None, headers: dict[str, str] | None = None) -> None:
        self._loop = _Loop()

        async def make() -> AsyncVistack:
            return AsyncVistack(base_url, api_key=api_key, timeout=timeout, max_retries=max_retries, app=app,
                                headers=headers)

        self.aio = self._loop.run(make())
        self._images = _Images(self._loop, self.aio)
        self._openai: openai.OpenAI | None = None
        self._settings = {"api_key": api_key, "timeout": timeout, "max_retries": max_retries, "headers": headers,
                          "app": app}

    @property
    def base_url(self) -> str:
        return self.aio.base_url

    @property
    def openai(self) -> openai.OpenAI:
        """A synchronous ``openai.OpenAI`` for the same server, for every other route (server URLs only)."""
        if self._settings["app"] is not None:
            raise VistackAPIError(400, "an in-process client has no synchronous openai client; use .aio.openai")
        if self._openai is None:
            self._openai = openai.OpenAI(
                base_url=f"{self.base_url}/v1",
                api_key=self._settings["api_key"] or os.environ.get("VISTACK_API_KEY") or "none",
                timeout=self._settings["timeout"], max_retries=self._settings["max_retries"],
                default_headers=self._settings["headers"])
        return self._openai

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.loop.is_closed():
            self._loop.run(self.aio.close())
        if self._openai is not None:
            self._openai.close()
        self._loop.close()

    def _bind(self, value: T) -> T:
        answer = value.answer if isinstance(value, Done) else value
        if isinstance(answer, Answer):
            answer._images = self._images
        return value

    # ----- the API -------------------------------------------------------------------------------------

    def default_model(self) -> str:
        return self._loop.run(self.aio.default_model())

    def find_store(self, store: str) -> dict[str, Any] | None:
        return self._loop.run(self.aio.find_store(store))

    def page_png(self, file_id: str) -> bytes:
        return self._loop.run(self.aio.page_png(file_id))

    def ingest(self, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], store: str, *,
               attributes: dict[str, str | float | bool] | None = None,
               progress: Callable[[IngestProgress], None] | None = None,
               timeout_s: float = 3600.0, poll_s: float = 0.5) -> IngestReport:
        """See :meth:`AsyncVistack.ingest` (``progress`` runs on the client's loop thread)."""
        return self._loop.run(self.aio.ingest(paths, store, attributes=attributes, progress=progress,
                                              timeout_s=timeout_s, poll_s=poll_s))

    def ask(self, question: str, store: Stores | None, *, model: str | None = None, strategy: str | None = None,
            pages: int | None = None, max_output_tokens: int | None = None, instructions: str | None = None,
            previous_response_id: str | None = None, conversation: str | None = None,
            max_num_results: int | None = None, filters: dict[str, Any] | None = None) -> Answer:
        """See :meth:`AsyncVistack.ask`."""
        return self._bind(self._loop.run(self.aio.ask(
            question, store, model=model, strategy=strategy, pages=pages, max_output_tokens=max_output_tokens,
            instructions=instructions, previous_response_id=previous_response_id, conversation=conversation,
            max_num_results=max_num_results, filters=filters)))

    def ask_stream(self, question: str, store: Stores | None, **options: Any) -> Iterator[StreamEvent]:
        """See :meth:`AsyncVistack.ask_stream` (same keyword options as :meth:`ask`)."""
        for event in self._loop.iterate(self.aio.ask_stream(question, store, **options)):
            yield self._bind(event)

    def chat(self, store: Stores | None = None, *, metadata: dict[str, str] | None = None, **options: Any) -> Chat:
        """A chat in a new Conversation; ``options`` as for :meth:`ask`."""
        return Chat(self, self._loop.run(self.aio.chat(store, metadata=metadata, **options)))


class Chat:
    """Synchronous :class:`AsyncChat`: ``send``, ``send_stream``, ``new``, ``items``; ``id`` is the conversation."""

    def __init__(self, client: Vistack, chat: AsyncChat) -> None:
        self.client, self.aio = client, chat

    @property
    def id(self) -> str:
        return self.aio.id

    def new(self) -> str:
        return self.client._loop.run(self.aio.new())

    def send(self, text: str) -> Answer:
        return self.client._bind(self.client._loop.run(self.aio.send(text)))

    def send_stream(self, text: str) -> Iterator[StreamEvent]:
        for event in self.client._loop.iterate(self.aio.send_stream(text)):
            yield self.client._bind(event)

    def items(self) -> list[dict[str, Any]]:
        return self.client._loop.run(self.aio.items())
