"""Contextual chunking: an LLM situates every chunk in its document before the chunk is indexed.

Anthropic's "contextual retrieval", for Llama Stack 0.7's ``chunking_strategy:
{"type": "contextual", "contextual": {...}}``. Llama Stack's implementation
(``OpenAIVectorStoreMixin._execute_contextual_chunk_transformation`` in
``providers/utils/memory/openai_vector_store_mixin.py``, 0.7.3) is followed
where it fits vistack; where vistack differs it says so below.

Prompt
    The strategy's ``context_prompt`` is split at ``{{CHUNK_CONTENT}}``: the part
    before it, with the document in ``{{WHOLE_DOCUMENT}}``, is the *system*
    message; the rest, with the chunk, the *user* message (as Llama Stack). So
    every call for a document starts with a byte-identical prefix, which an
    engine with prefix caching (vLLM's automatic prefix caching, SGLang's radix
    cache) computes once. Calls are non-streaming, ``temperature`` 0,
    ``max_tokens`` 256 (Llama Stack's values). The document is the text of its
    pages in reading order, each page headed ``[page N]``.

Result
    The chunk's stored text becomes ``f"{context}\\n\\n{text}"`` (Llama Stack's
    exact form): that is what is embedded, BM25-indexed, returned by search and
    by ``/files/{id}/content`` (Llama Stack's conformance test
    ``test_openai_vector_store_contextual_vs_static_chunks`` checks the static
    text is contained, after a blank line). The context alone is also kept in
    the chunk's metadata as ``chunk_context`` (so search results carry it in
    ``attributes.chunk_context``): a client shows it, or strips it with
    ``text.removeprefix(chunk_context + "\\n\\n")`` to get the page's text
    exactly as a static chunk has it. ``page``, ``bbox``,
    ``page_image_file_id``, ``chunk_type`` and the chunk id are untouched.

Model
    ``contextual.model_id``, else the distribution's
    ``vector_stores.contextual_retrieval_params.model``; neither is a 400 whose
    message names ``model_id``, at request time before anything is stored
    (:func:`check_chunking_strategy`; Llama Stack's check and wording). An
    unknown model is the router's 404 ``model_not_found``; an embedding model a
    400. Calls go through the inference router, like every model call.

Concurrency and time
    At most ``max_concurrency`` calls at once per file (default
    ``default_max_concurrency``, 3), each bounded by ``timeout_seconds``
    (default ``default_timeout_seconds``, 120). vistack sends the first chunk of
    each document view alone and the others once it has answered, so the
    engine has the shared prefix cached before the fan-out (concurrent first
    requests would each compute it).

Failures (Llama Stack's behaviour)
    A timeout, connection error, 503 or 429 is retried up to 3 times (backoff
    1, 2, 4 s plus up to 0.5 s jitter); any other error fails the chunk at
    once. A chunk whose calls failed, or whose answer was empty, is indexed
    without context, and this is logged. Only when *every* chunk failed does
    the file fail: as :class:`ServiceUnavailableError` when every failure was
    a backend being unavailable (the vector-store service then retries the
    file up to ``max_retries`` times before ``last_error``), else as
    :class:`ContextualizationError` naming the model and the last error. Every
    answer empty fails the file too (Llama Stack's message).

Long documents (vistack differs)
    Llama Stack rejects a document over ``max_document_tokens``. vistack fits
    it instead: the document part of the prompt gets at most ``budget`` tokens,
    ``min(max_document_tokens, context_length - room)`` where ``room`` holds
    the prompt, the largest chunk and the answer, and ``context_length`` is the
    model's ``context_length`` (or ``max_model_len``) from its metadata in the
    distribution. A longer document is cut on page boundaries into *views*
    (:func:`document_views`): its first pages (at most a quarter of the
    budget: title, summary, contents), then the run of consecutive pages that
    holds the chunk (the rest of the budget), pages left out replaced by a
    one-line marker. All chunks of a view share one prompt prefix. When the
    model's context length is not known and the engine answers that the prompt
    is too long (vLLM's and vistack's "maximum context length is N tokens"),
    the budget is recomputed from N (halved when no N is given) and the views
    rebuilt, at most three times. Token counts are
    :func:`vistack.rag.chunking.count_tokens`' WordPiece estimate, which
    over-counts a Llama 3 BPE tokenizer on English text (the safe side).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from vistack.api import (
    BadRequestError,
    ModelType,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
)
from vistack.api.inference import ChatCompletion, ChatCompletionRequest
from vistack.api.protocols import StoredChunk
from vistack.api.vector_stores import CHUNK_PLACEHOLDER, DOCUMENT_PLACEHOLDER, ContextualChunkingConfig
from vistack.rag.chunking import count_tokens

if TYPE_CHECKING:
    from vistack.config import ContextualRetrievalParams
    from vistack.inference import InferenceRouter

__all__ = [
    "CONTEXT_KEY",
    "ContextualizationError",
    "Contextualizer",
    "ContextualizeStats",
    "DocumentView",
    "check_chunking_strategy",
    "contextual_config",
    "document_views",
    "page_text",
    "resolve_model",
]

log = logging.getLogger(__name__)

CONTEXT_KEY = "chunk_context"
"""Chunk metadata key holding the context alone (search results show it in ``attributes``)."""
MODEL_PARAM = "chunking_strategy.contextual.model_id"
ANSWER_TOKENS = 256
"""``max_tokens`` of a context call (Llama Stack's value)."""
MAX_RETRIES = 3
"""Retries of a retriable failure (timeout, connection, 503, 429), as Llama Stack's ``_MAX_RETRIES``."""
RETRY_BASE_DELAY_S = 1.0
MAX_SHRINKS = 3
"""Times the document budget is cut after the engine says the prompt exceeds its context."""
MIN_DOCUMENT_TOKENS = 64
_HEAD_SHARE = 4  # the document's first pages get at most 1/4 of the budget
_MIN_WINDOW = 16  # tokens of pages around the chunk, at the least
_MARGIN = 0.9  # of a known context length left after the room for prompt, chunk and answer
_CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+)", re.IGNORECASE)

PageText = tuple[int, str]
"""``(page number, the page's text)``, pages in order."""


class ContextualizationError(Exception):
    """Contextual chunking could not run for a file (its ``last_error``)."""


# ----- the strategy and its model ------------------------------------------------------------------


def contextual_config(strategy: Any) -> ContextualChunkingConfig | None:
    """The ``contextual`` object of a chunking strategy (pydantic model or dict); None for other strategies."""
    if strategy is None or isinstance(strategy, str):
        return None
    if isinstance(strategy, dict):
        if strategy.get("type") != "contextual":
            return None
        return ContextualChunkingConfig.model_validate(strategy.get("contextual") or {})
    if getattr(strategy, "type", None) != "contextual":
        return None
    config = strategy.contextual
    return config if isinstance(config, ContextualChunkingConfig) else ContextualChunkingConfig.model_validate(config)


def resolve_model(
    config: ContextualChunkingConfig, inference: InferenceRouter, params: ContextualRetrievalParams
) -> str:
    """The identifier of the LLM that writes the contexts: ``model_id``, else the distribution's default.

    400 naming ``model_id`` when there is neither (Llama Stack's message, with vistack's key path);
    404 ``model_not_found`` for an unknown model; 400 for a model that is not an LLM.
    """
    model_id = config.model_id or params.model
    if not model_id:
        raise BadRequestError(
            "Failed to initialize contextual chunking: model_id is required. Provide it in "
            "chunking_strategy.contextual.model_id or configure a default in "
            "vector_stores.contextual_retrieval_params.model on the server.",
            param=MODEL_PARAM,
        )
    source = MODEL_PARAM if config.model_id else "vector_stores.contextual_retrieval_params.model"
    try:
        entry = inference.resolve(model_id, ModelType.llm, param=MODEL_PARAM, purpose="contextual chunking")
    except NotFoundError as e:
        raise NotFoundError(f"{source}: {e.message}", code=e.code or "model_not_found", param=MODEL_PARAM) from None
    return entry.model.identifier


def check_chunking_strategy(strategy: Any, inference: InferenceRouter, params: ContextualRetrievalParams) -> None:
    """Request-time check (store create, file attach, file batch): a contextual strategy needs a usable LLM."""
    config = contextual_config(strategy)
    if config is not None:
        resolve_model(config, inference, params)


def _context_length(metadata: dict[str, Any]) -> int | None:
    for key in ("context_length", "max_model_len", "context_window"):
        try:
            value = int(metadata[key])
        except (KeyError, TypeError, ValueError):
            continue
        if value > 0:
            return value
    return None


# ----- the document ----------------------------------------------------------------------------------


def page_text(blocks: Sequence[Any]) -> str:
    """A page's text for the document part of the prompt: its blocks in reading order (tables as markdown)."""
    return "\n".join(t for t in (b.text.strip() for b in blocks) if t)


@dataclass(frozen=True)
class DocumentView:
    """The document part of the prompts of the chunks on ``pages``."""

    pages: tuple[int, ...]
    text: str


def _labelled(number: int, text: str) -> str:
    return f"[page {number}]\n{text}"


def _omitted(first: int, last: int) -> str:
    return f"[... page {first} not shown ...]" if first == last else f"[... pages {first}-{last} not shown ...]"


def _cut(text: str, max_tokens: int) -> str:
    """The longest run of whole words from the start of ``text`` within ``max_tokens``, marked as cut."""
    used = 0
    end = 0
    for m in re.finditer(r"\S+", text):
        used += count_tokens(m.group())
        if used > max_tokens:
            return text[:end].rstrip() + " [...]"
        end = m.end()
    return text


def document_views(pages: Sequence[PageText], budget: int) -> list[DocumentView]:
    """The document as one view when it fits ``budget`` tokens, else views of at most ``budget`` each.

    Over budget: the *head* is the leading pages that fit a quarter of the
    budget (none when the first page alone is bigger); the other pages are
    grouped, in order, into windows of consecutive pages that fit what the
    head leaves (a single page bigger than that is cut to it). A view is the
    head, the window and one-line markers for the pages between and after;
    it serves the window's pages, and the first view also the head's. A page
    without text belongs to the view of the page before it. Deterministic:
    the same pages and budget always give byte-identical views.
    """
    numbers = tuple(n for n, _ in pages)
    parts = [(n, _labelled(n, t)) for n, t in pages if t.strip()]
    sizes = [count_tokens(text) + 1 for _, text in parts]  # + the separating blank line
    if sum(sizes) <= budget or not parts:
        return [DocumentView(numbers, "\n\n".join(text for _, text in parts))]
    head_len, used = 0, 0
    while head_len < len(parts) and used + sizes[head_len] <= budget // _HEAD_SHARE:
        used += sizes[head_len]
        head_len += 1
    head = parts[:head_len]
    marker = 2 * (count_tokens(_omitted(10**6 - 1, 10**6)) + 1)  # the longer, range form, before and after
    if budget - used - marker < MIN_DOCUMENT_TOKENS // 2:  # a small budget: the window matters more than the head
        head_len, used = 0, 0
    room = max(budget - used - marker, _MIN_WINDOW)
    windows: list[list[tuple[int, str]]] = []
    filled = 0
    for (number, text), size in zip(parts[head_len:], sizes[head_len:], strict=True):
        if size > room:
            text, size = _cut(text, room - 1 - count_tokens(" [...]")), room
        if not windows or filled + size > room:
            windows.append([])
            filled = 0
        windows[-1].append((number, text))
        filled += size
    last_page = parts[-1][0]
    views: list[DocumentView] = []
    owner: dict[int, int] = {}
    for i, window in enumerate(windows):
        first, last = window[0][0], window[-1][0]
        pieces = [text for _, text in head]
        if head and first > head[-1][0] + 1:
            pieces.append(_omitted(head[-1][0] + 1, first - 1))
        elif not head and first > parts[0][0]:
            pieces.append(_omitted(parts[0][0], first - 1))
        pieces.extend(text for _, text in window)
        if last < last_page:
            pieces.append(_omitted(last + 1, last_page))
        views.append(DocumentView((), "\n\n".join(pieces)))
        for number, _ in window:
            owner[number] = i
    for number, _ in head:
        owner[number] = 0
    served: list[list[int]] = [[] for _ in views]
    current = 0
    for number in numbers:  # pages without text follow the page before them
        current = owner.get(number, current)
        served[current].append(number)
    return [DocumentView(tuple(pages_), view.text) for view, pages_ in zip(views, served, strict=True)]


# ----- the calls ---------------------------------------------------------------------------------------


class _Outcome(Enum):
    SUCCESS = "success"
    EMPTY = "empty"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"
    """failed on a retriable error (timeout, backend down) after every retry"""


class _ContextTooLong(Exception):
    def __init__(self, limit: int | None, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass
class ContextualizeStats:
    """What one file's contextualisation did (logged; tests read it)."""

    model: str
    chunks: int = 0
    contextualized: int = 0
    empty: int = 0
    failed: int = 0
    calls: int = 0
    views: int = 0
    document_tokens: int = 0
    budget: int = 0
    shrinks: int = 0
    errors: list[str] = field(default_factory=list)


def _too_long(e: Exception) -> _ContextTooLong | None:
    """An engine's "the prompt exceeds the context" answer (vLLM's and vistack's wording, or the OpenAI code)."""
    if not isinstance(e, BadRequestError):
        return None
    found = _CONTEXT_LIMIT.search(e.message)
    if e.code == "context_length_exceeded" or found or "context length" in e.message.lower():
        return _ContextTooLong(int(found.group(1)) if found else None, e.message)
    return None


def _retriable(e: Exception) -> bool:
    """Llama Stack's ``_is_retriable_error``: timeouts, connection errors, 429, 502-504 (vistack: 503 and 429)."""
    return isinstance(e, TimeoutError | ConnectionError | ServiceUnavailableError | TooManyRequestsError)


def _split_prompt(template: str) -> tuple[str, str]:
    """(system template with the document placeholder, user template with the chunk placeholder)."""
    cut = template.index(CHUNK_PLACEHOLDER)
    return template[:cut].rstrip(), template[cut:]


class Contextualizer:
    """Writes each chunk's context through the inference router (see the module doc)."""

    def __init__(
        self,
        inference: InferenceRouter,
        params: ContextualRetrievalParams,
        *,
        retry_base_delay_s: float = RETRY_BASE_DELAY_S,
    ) -> None:
        self.inference = inference
        self.params = params
        self.retry_base_delay_s = retry_base_delay_s

    async def contextualize(
        self,
        config: ContextualChunkingConfig,
        pages: Sequence[PageText],
        chunks: list[StoredChunk],
        check: Callable[[], None] | None = None,
    ) -> ContextualizeStats:
        """Prepend a context to each chunk's text (in place) and note it in its metadata.

        ``pages`` is the whole document, ``chunks`` all of its chunks (their
        ``metadata["page"]`` picks the view). ``check`` is called before every
        call and may raise to stop (a cancelled file).
        """
        model = resolve_model(config, self.inference, self.params)
        stats = ContextualizeStats(model=model, chunks=len(chunks))
        if not chunks:
            return stats
        context_length = _context_length(self.inference.resolve(model, ModelType.llm).model.metadata)
        system_template, user_template = _split_prompt(config.context_prompt)
        # token counting and view building are pure Python over the whole document (seconds for thousands of
        # pages): done on a thread, so the server's event loop keeps serving meanwhile
        largest = await asyncio.to_thread(lambda: max(count_tokens(c.text) for c in chunks))
        room = count_tokens(system_template) + count_tokens(user_template) + largest + ANSWER_TOKENS + 16
        budget = self.params.max_document_tokens
        if context_length:
            budget = min(budget, int((context_length - room) * _MARGIN))
        stats.document_tokens = await asyncio.to_thread(lambda: sum(count_tokens(t) for _, t in pages))
        timeout = config.timeout_seconds or self.params.default_timeout_seconds
        # a request may ask for fewer calls at once than the server allows, not for more: the engine is shared
        concurrency = min(config.max_concurrency or self.params.default_max_concurrency,
                          self.params.max_concurrency_limit)
        while True:
            if budget < MIN_DOCUMENT_TOKENS:
                where = f"{context_length} tokens" if context_length else "its context length"
                raise ContextualizationError(
                    f"contextual chunking: model '{model}' cannot take a prompt with a document part of at least "
                    f"{MIN_DOCUMENT_TOKENS} tokens next to a chunk of ~{largest} tokens ({where}); use a model with a "
                    "longer context or a smaller max_chunk_size_tokens"
                )
            views = await asyncio.to_thread(document_views, pages, budget)
            stats.budget, stats.views = budget, len(views)
            try:
                outcomes = await self._run(model, views, chunks, system_template, user_template, timeout,
                                           concurrency, stats, check)
                break
            except _ContextTooLong as e:
                if stats.shrinks >= MAX_SHRINKS:
                    raise ContextualizationError(
                        f"contextual chunking: model '{model}' still finds the prompt too long after the document "
                        f"part was cut to {budget} tokens: {e}"
                    ) from None
                stats.shrinks += 1
                smaller = int((e.limit - room) * _MARGIN) if e.limit else budget // 2
                budget = min(smaller, budget // 2) if smaller >= budget else smaller
                log.info("contextual chunking: %s says the prompt is too long; document part cut to %d tokens",
                         model, budget)
        return self._apply(chunks, outcomes, stats)

    async def _run(
        self,
        model: str,
        views: list[DocumentView],
        chunks: list[StoredChunk],
        system_template: str,
        user_template: str,
        timeout: float,
        concurrency: int,
        stats: ContextualizeStats,
        check: Callable[[], None] | None,
    ) -> dict[int, tuple[_Outcome, str]]:
        """{chunk position: (outcome, context)}; raises _ContextTooLong when the engine says so, and
        ServiceUnavailableError when a view's first call found the engine unavailable (after its retries):
        the file is retried later as a whole rather than every chunk waiting out its own retries.

        Per view, the first call goes alone (the engine caches the shared document prefix), then at most
        ``concurrency`` workers take the view's other chunks; ``concurrency`` calls run at once in all.
        ``check`` runs before every call and every quarter second meanwhile, so a cancelled file stops
        its calls in flight at once."""
        view_of: dict[int, int] = {}
        for i, view in enumerate(views):
            for page in view.pages:
                view_of[page] = i
        groups: list[list[int]] = [[] for _ in views]
        for position, chunk in enumerate(chunks):
            page = chunk.metadata.get("page")
            groups[view_of.get(page, 0) if isinstance(page, int) else 0].append(position)
        systems = [system_template.replace(DOCUMENT_PLACEHOLDER, view.text) for view in views]
        gate = asyncio.Semaphore(concurrency)
        outcomes: dict[int, tuple[_Outcome, str]] = {}

        async def one(position: int, system: str) -> _Outcome:
            async with gate:
                if check is not None:
                    check()
                outcomes[position] = await self._call(model, system, user_template, chunks[position], timeout,
                                                      stats)
            return outcomes[position][0]

        async def view_group(view_index: int, positions: list[int]) -> None:
            system = systems[view_index]
            if await one(positions[0], system) is _Outcome.UNAVAILABLE:
                raise ServiceUnavailableError(
                    f"contextual chunking: model '{model}' is unavailable ({stats.errors[-1]}); the file is retried later"
                )
            rest = iter(positions[1:])  # shared by the workers: each position is taken once

            async def worker() -> None:
                for position in rest:
                    await one(position, system)

            async with asyncio.TaskGroup() as group:
                for _ in range(min(concurrency, len(positions) - 1)):
                    group.create_task(worker())

        async def all_views() -> None:
            async with asyncio.TaskGroup() as group:
                for view_index, positions in enumerate(groups):
                    if positions:
                        group.create_task(view_group(view_index, positions))

        async def watch(work: asyncio.Task) -> None:
            assert check is not None
            while not work.done():
                check()
                await asyncio.wait({work}, timeout=0.25)

        try:
            async with asyncio.TaskGroup() as group:
                work = group.create_task(all_views())
                if check is not None:
                    group.create_task(watch(work))
        except BaseExceptionGroup as eg:
            raise _first(eg) from None
        return outcomes

    async def _call(
        self, model: str, system: str, user_template: str, chunk: StoredChunk, timeout: float,
        stats: ContextualizeStats,
    ) -> tuple[_Outcome, str]:
        request = ChatCompletionRequest(
            model=model,
            messages=[
                {"role": "system", "content": system},
                {"role": "user", "content": user_template.replace(CHUNK_PLACEHOLDER, chunk.text)},
            ],
            stream=False,
            temperature=0.0,
            max_tokens=ANSWER_TOKENS,
        )
        for attempt in range(MAX_RETRIES + 1):
            stats.calls += 1
            try:
                result = await asyncio.wait_for(
                    self.inference.chat_completion(request, purpose="contextual chunking"), timeout
                )
                if not isinstance(result, ChatCompletion):
                    raise TypeError("received a stream; contextual chunking needs a non-streaming answer")
                if not result.choices:
                    raise ValueError("the model returned no choices")
                context = (result.choices[0].message.content or "").strip()
                if not context:
                    log.warning("contextual chunking: %s returned an empty context for chunk %s", model, chunk.id)
                    return _Outcome.EMPTY, ""
                return _Outcome.SUCCESS, context
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any model failure is this chunk's, decided below
                if (too_long := _too_long(e)) is not None:
                    raise too_long from None
                reason = f"{type(e).__name__}: {e}" if str(e) else f"{type(e).__name__} after {timeout:g}s"
                if _retriable(e) and attempt < MAX_RETRIES:
                    delay = self.retry_base_delay_s * (2**attempt) + random.uniform(0, 0.5 * self.retry_base_delay_s)
                    log.warning("contextual chunking: chunk %s: %s; retry %d of %d in %.1fs",
                                chunk.id, reason, attempt + 1, MAX_RETRIES, delay)
                    await asyncio.sleep(delay)
                    continue
                log.error("contextual chunking: chunk %s failed: %s", chunk.id, reason)
                stats.errors.append(reason)
                return (_Outcome.UNAVAILABLE if _retriable(e) else _Outcome.FAILED), ""
        raise AssertionError("not reached: the last attempt returns")

    @staticmethod
    def _apply(
        chunks: list[StoredChunk], outcomes: dict[int, tuple[_Outcome, str]], stats: ContextualizeStats
    ) -> ContextualizeStats:
        """Prepend the contexts, or fail the file when no chunk got one (Llama Stack's rules)."""
        failed = [p for p, (o, _) in outcomes.items() if o in (_Outcome.FAILED, _Outcome.UNAVAILABLE)]
        empty = [p for p, (o, _) in outcomes.items() if o is _Outcome.EMPTY]
        stats.failed, stats.empty = len(failed), len(empty)
        total = len(chunks)
        if failed and len(failed) == total:
            last = stats.errors[-1] if stats.errors else "unknown error"
            message = f"contextual chunking: model '{stats.model}' failed for all {total} chunks; last error: {last}"
            if all(outcomes[p][0] is _Outcome.UNAVAILABLE for p in failed):
                raise ServiceUnavailableError(message)
            raise ContextualizationError(message)
        if empty and len(empty) == total:
            raise ContextualizationError(
                f"Failed to generate context using model {stats.model}: empty context for all {total} chunks. "
                "Verify the model supports instruction-following and the prompt template is appropriate."
            )
        for position, (outcome, context) in outcomes.items():
            if outcome is _Outcome.SUCCESS:
                chunk = chunks[position]
                chunk.text = f"{context}\n\n{chunk.text}"
                chunk.metadata = {**chunk.metadata, CONTEXT_KEY: context}
                stats.contextualized += 1
        if failed or empty:
            log.warning("contextual chunking with %s: %d of %d chunks failed and %d got an empty context; those are "
                        "indexed without one", stats.model, len(failed), total, len(empty))
        else:
            log.info("contextual chunking with %s: all %d chunks contextualised (%d views, %d calls)",
                     stats.model, total, stats.views, stats.calls)
        return stats


def _first(eg: BaseExceptionGroup) -> BaseException:
    """The first leaf of a task group's failure (a cancelled file's error, or the engine's "too long")."""
    first = eg.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
