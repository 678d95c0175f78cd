"""Contextual chunking (``chunking_strategy: {"type": "contextual"}``) with fake models at the router boundary.

Every model call goes through the real :class:`~vistack.inference.InferenceRouter` and
:class:`~vistack.model_catalog.ModelCatalog`; the provider behind them is a scripted fake (or the
``inline::replay`` provider), so nothing depends on what a real model says.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ValidationError

from vistack.api import BadRequestError, NotFoundError, ServiceUnavailableError
from vistack.api.inference import AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionRequest
from vistack.api.protocols import InferenceProvider, StoredChunk
from vistack.api.vector_stores import (
    DEFAULT_CONTEXT_PROMPT,
    AttachFileRequest,
    ChunkingStrategyContextual,
    ContextualChunkingConfig,
    CreateFileBatchRequest,
    CreateVectorStoreRequest,
    VectorStoreFileObject,
    VectorStoreObject,
)
from vistack.config import ContextualRetrievalParams, ModelEntry, VectorStoresDefaults
from vistack.inference import InferenceRouter
from vistack.model_catalog import ModelCatalog
from vistack.rag import contextual as ctx
from vistack.rag.chunking import count_tokens, resolve_chunking
from vistack.rag.contextual import (
    CONTEXT_KEY,
    ContextualizationError,
    Contextualizer,
    check_chunking_strategy,
    document_views,
)
from vistack.rag.ingestion import IngestionCancelled, Ingestor, failure
from vistack.rag.records import FileRecord, Records, StoreRecord
from vistack.rag.vector_stores import VectorStoreService
from vistack.storage import MetadataStore
from vistack.testing import documents as docs
from vistack.testing.replay import ReplayInferenceConfig, ReplayInferenceProvider

T = TypeVar("T")
MODEL = "ctx-llm"
QUALIFIED = f"fake/{MODEL}"
_CHUNK = re.compile(r"^(.*)\n</chunk>\n", re.S)  # Llama Stack's split: "<chunk>" ends the system message


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# ----- a scripted LLM behind the real router ----------------------------------------------------------


class _NoConfig(BaseModel):
    pass


class FakeLLM(InferenceProvider):
    """Answers ``answer(request, n)`` (n counts calls from 1; an exception instance is raised), after ``delay``."""

    def __init__(self, answer: Callable[[ChatCompletionRequest, int], Any] | None = None,
                 delay: Callable[[ChatCompletionRequest], float] | float = 0.0) -> None:
        super().__init__(_NoConfig())
        self.answer = answer or (lambda req, n: f"Context for: {chunk_of(req)[:24]}")
        self.delay = delay
        self.requests: list[ChatCompletionRequest] = []
        self.events: list[tuple[str, int]] = []
        self.in_flight = 0
        self.peak = 0

    async def chat_completion(self, request: ChatCompletionRequest) -> ChatCompletion:
        self.requests.append(request)
        n = len(self.requests)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.events.append(("start", n))
        try:
            await asyncio.sleep(self.delay(request) if callable(self.delay) else self.delay)
            out = self.answer(request, n)
            if isinstance(out, BaseException):
                raise out
        finally:
            self.in_flight -= 1
            self.events.append(("end", n))
        return ChatCompletion(model=request.model, choices=[ChatChoice(message=AssistantMessage(content=out))])


def chunk_of(request: ChatCompletionRequest) -> str:
    found = _CHUNK.search(request.messages[-1].text())
    assert found, request.messages[-1].text()
    return found.group(1)


def system_of(request: ChatCompletionRequest) -> str:
    assert request.messages[0].role == "system"
    return request.messages[0].text()


async def make_router(tmp_path: Path, provider: InferenceProvider, **metadata: Any) -> InferenceRouter:
    catalog = ModelCatalog(MetadataStore(tmp_path / "models.sqlite3"), {"fake": provider})
    await catalog.load([
        ModelEntry(model_id=MODEL, provider_id="fake", model_type="llm", metadata=metadata),
        ModelEntry(model_id="embedder", provider_id="fake", model_type="embedding"),
    ])
    return InferenceRouter(catalog)


def config(**kw: Any) -> ContextualChunkingConfig:
    """A strategy config; ``timeout_seconds`` may be a float here (the wire model takes whole seconds)."""
    timeout = kw.pop("timeout_seconds", None)
    cfg = ContextualChunkingConfig(model_id=kw.pop("model_id", MODEL), **kw)
    return cfg.model_copy(update={"timeout_seconds": timeout}) if timeout is not None else cfg


def pages_and_chunks(n_pages: int = 3, per_page: int = 2, words: int = 12) -> tuple[list, list[StoredChunk]]:
    pages, chunks = [], []
    for p in range(1, n_pages + 1):
        texts = [" ".join(f"p{p}c{c}w{w}" for w in range(words)) for c in range(per_page)]
        pages.append((p, "\n".join(texts)))
        chunks += [StoredChunk(id=f"f:p{p}:c{c}", text=t, metadata={"page": p, "bbox": f"{c},0,1,1", "chunk_index": c})
                   for c, t in enumerate(texts)]
    return pages, chunks


async def contextualize(tmp_path: Path, llm: FakeLLM, cfg: ContextualChunkingConfig | None = None,
                        pages_chunks: tuple | None = None, params: ContextualRetrievalParams | None = None,
                        check: Callable[[], None] | None = None, **metadata: Any):
    router = await make_router(tmp_path, llm, **metadata)
    pages, chunks = pages_chunks or pages_and_chunks()
    worker = Contextualizer(router, params or ContextualRetrievalParams(), retry_base_delay_s=0.0)
    stats = await worker.contextualize(cfg or config(), pages, chunks, check)
    return stats, chunks


# ----- the wire model ---------------------------------------------------------------------------------


def test_wire_model_has_llama_stack_defaults_limits_and_echoes_as_sent() -> None:
    cfg = ContextualChunkingConfig()
    assert (cfg.model_id, cfg.max_chunk_size_tokens, cfg.chunk_overlap_tokens) == (None, 700, 400)
    assert (cfg.timeout_seconds, cfg.max_concurrency, cfg.context_prompt) == (None, None, DEFAULT_CONTEXT_PROMPT)
    sent = {"type": "contextual", "contextual": {"model_id": "m", "max_chunk_size_tokens": 200,
                                                "chunk_overlap_tokens": 50, "timeout_seconds": 30,
                                                "max_concurrency": 2}}
    for request in (AttachFileRequest, CreateFileBatchRequest):
        body = {"file_id": "file-1"} if request is AttachFileRequest else {"file_ids": ["file-1"]}
        assert isinstance(request.model_validate({**body, "chunking_strategy": sent}).chunking_strategy,
                          ChunkingStrategyContextual)
    store = CreateVectorStoreRequest.model_validate({"chunking_strategy": sent})
    obj = VectorStoreFileObject(id="file-1", vector_store_id="vs", created_at=0, status="completed",
                                chunking_strategy=store.chunking_strategy)
    echoed = json.loads(obj.model_dump_json())["chunking_strategy"]
    assert {k: echoed["contextual"][k] for k in sent["contextual"]} == sent["contextual"]
    assert echoed["type"] == "contextual"
    schema = json.dumps(AttachFileRequest.model_json_schema())
    assert "{{WHOLE_DOCUMENT}}" not in schema  # as Llama Stack: no template braces in the schema
    assert resolve_chunking(store.chunking_strategy) == (200, 50)
    assert resolve_chunking({"type": "contextual", "contextual": {}}) == (700, 400)  # overlap > half: allowed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 200}, "less than max_chunk_size_tokens"),
        ({"max_chunk_size_tokens": 99}, "greater than or equal to 100"),
        ({"max_chunk_size_tokens": 4097}, "less than or equal to 4096"),
        ({"context_prompt": "{{CHUNK_CONTENT}}"}, "{{WHOLE_DOCUMENT}} placeholder"),
        ({"context_prompt": "{{WHOLE_DOCUMENT}}"}, "{{CHUNK_CONTENT}} placeholder"),
        ({"context_prompt": "{{CHUNK_CONTENT}} in {{WHOLE_DOCUMENT}}"}, "before {{CHUNK_CONTENT}}"),
        ({"model_id": ""}, "at least 1 character"),
        ({"timeout_seconds": 0}, "greater than or equal to 1"),
        ({"max_concurrency": 0}, "greater than or equal to 1"),
    ],
)
def test_wire_model_rejects_what_llama_stack_rejects(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        AttachFileRequest.model_validate(
            {"file_id": "f", "chunking_strategy": {"type": "contextual", "contextual": fields}}
        )


def test_distribution_key_takes_a_model_id_or_llama_stacks_qualified_model() -> None:
    s = VectorStoresDefaults.model_validate({"contextual_retrieval_params": {"model": {"provider_id": "vllm",
                                                                                      "model_id": "llama"}}})
    assert s.contextual_retrieval_params.model == "vllm/llama"
    p = ContextualRetrievalParams.model_validate({"model": "", "default_max_concurrency": 5})
    assert (p.model, p.default_timeout_seconds, p.default_max_concurrency, p.max_document_tokens) == (None, 120, 5,
                                                                                                      100_000)
    with pytest.raises(ValidationError):
        ContextualRetrievalParams.model_validate({"default_timeout_seconds": 5})  # Llama Stack: at least 10


# ----- the model: strategy, then distribution default, else 400 naming model_id -------------------------


def test_without_any_model_the_check_is_a_400_naming_model_id(tmp_path: Path) -> None:
    async def go() -> None:
        router = await make_router(tmp_path, FakeLLM())
        strategy = ChunkingStrategyContextual(contextual=ContextualChunkingConfig())
        with pytest.raises(BadRequestError) as e:
            check_chunking_strategy(strategy, router, ContextualRetrievalParams())
        assert e.value.status_code == 400 and "model_id" in e.value.message
        assert e.value.param == "chunking_strategy.contextual.model_id"
        check_chunking_strategy(strategy, router, ContextualRetrievalParams(model=MODEL))  # the default serves
        check_chunking_strategy({"type": "static", "static": {"max_chunk_size_tokens": 200}}, router,
                                ContextualRetrievalParams())
        check_chunking_strategy(None, router, ContextualRetrievalParams())

    run(go())


def test_unknown_model_is_404_and_an_embedding_model_400(tmp_path: Path) -> None:
    async def go() -> None:
        router = await make_router(tmp_path, FakeLLM())
        with pytest.raises(NotFoundError) as e:
            check_chunking_strategy({"type": "contextual", "contextual": {"model_id": "nope"}}, router,
                                    ContextualRetrievalParams())
        assert e.value.status_code == 404 and e.value.code == "model_not_found"
        assert "chunking_strategy.contextual.model_id" in e.value.message and "nope" in e.value.message
        with pytest.raises(NotFoundError, match="contextual_retrieval_params.model"):
            check_chunking_strategy({"type": "contextual", "contextual": {}}, router,
                                    ContextualRetrievalParams(model="gone"))
        with pytest.raises(BadRequestError, match="embedding") as e2:
            check_chunking_strategy({"type": "contextual", "contextual": {"model_id": "embedder"}}, router,
                                    ContextualRetrievalParams())
        assert e2.value.status_code == 400

    run(go())


def test_the_distribution_default_model_writes_the_contexts(tmp_path: Path) -> None:
    llm = FakeLLM()
    stats, chunks = run(contextualize(tmp_path, llm, ContextualChunkingConfig(),
                                      params=ContextualRetrievalParams(model=QUALIFIED)))
    assert stats.model == QUALIFIED and stats.contextualized == len(chunks)
    assert {r.model for r in llm.requests} == {MODEL}  # the router sent the provider's resource id


def test_service_refuses_before_storing_anything(tmp_path: Path) -> None:
    """Store create, file attach and file batch: the 400 comes before any record is written."""
    owner = "alice"

    async def go() -> None:
        router = await make_router(tmp_path, FakeLLM())
        records = Records(MetadataStore(tmp_path / "records.sqlite3"))
        service = VectorStoreService(records=records, files=None, vector_io={}, inference=router,  # type: ignore[arg-type]
                                     settings=VectorStoresDefaults(), state_dir=tmp_path)
        no_model = {"type": "contextual", "contextual": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}}
        with pytest.raises(BadRequestError, match="model_id"):
            await service.create_store(CreateVectorStoreRequest.model_validate(
                {"name": "s", "chunking_strategy": no_model}), owner)
        assert await records.list_stores(None) == []
        store = StoreRecord(object=VectorStoreObject(id="vs_1", created_at=0), provider_id="chromadb",
                            embedding_model="fake/embedder", embedding_dimension=3)
        await records.put_store(store, owner)
        with pytest.raises(BadRequestError, match="model_id"):
            await service.attach_file("vs_1", AttachFileRequest.model_validate(
                {"file_id": "file-1", "chunking_strategy": no_model}), owner)
        with pytest.raises(BadRequestError, match="model_id"):
            await service.create_batch("vs_1", CreateFileBatchRequest.model_validate(
                {"file_ids": ["file-1"], "chunking_strategy": no_model}), owner)
        assert await records.list_files("vs_1") == []
        records.db.close()

    run(go())


# ----- prompts ------------------------------------------------------------------------------------------


def test_prompt_is_the_document_then_the_chunk_with_an_identical_prefix(tmp_path: Path) -> None:
    llm = FakeLLM()
    pages, chunks = pages_and_chunks(3, 2)
    originals = [c.text for c in chunks]
    run(contextualize(tmp_path, llm, pages_chunks=(pages, chunks)))
    assert len(llm.requests) == len(chunks)
    systems = {system_of(r) for r in llm.requests}
    assert len(systems) == 1  # byte-identical prefix for every chunk of the document
    system = systems.pop()
    head, _, tail = DEFAULT_CONTEXT_PROMPT.partition("{{WHOLE_DOCUMENT}}")
    assert system.startswith(head) and system.endswith(tail.partition("{{CHUNK_CONTENT}}")[0].rstrip())
    for number, text in pages:
        assert f"[page {number}]\n{text}" in system
    for r in llm.requests:
        assert [m.role for m in r.messages] == ["system", "user"]
        user = r.messages[1].text()
        assert system.endswith("<chunk>") and user.endswith("Answer only with the succinct description and "
                                                            "nothing else.")
        assert "{{" not in system + user
        assert (r.temperature, r.max_tokens, r.stream) == (0.0, 256, False)
    assert sorted(chunk_of(r) for r in llm.requests) == sorted(originals)


def test_a_custom_prompt_is_split_at_the_chunk_placeholder(tmp_path: Path) -> None:
    llm = FakeLLM(answer=lambda req, n: "ok")
    prompt = "DOC START {{WHOLE_DOCUMENT}} DOC END. Situate: {{CHUNK_CONTENT}} -- be brief"
    pages, chunks = pages_and_chunks(1, 1)
    run(contextualize(tmp_path, llm, config(context_prompt=prompt), pages_chunks=(pages, chunks)))
    request = llm.requests[0]
    assert system_of(request) == f"DOC START [page 1]\n{pages[0][1]} DOC END. Situate:"
    assert request.messages[1].text() == f"{pages[0][1]} -- be brief"


def test_replay_provider_at_the_router_boundary(tmp_path: Path) -> None:
    """The repository's replay double: scripted contexts land on the chunks they were asked for."""
    pages, chunks = pages_and_chunks(2, 1)
    script = tmp_path / "script.jsonl"
    script.write_text("".join(json.dumps({"match": c.text, "text": f"  Replayed context {i}.  "}) + "\n"
                              for i, c in enumerate(chunks)))
    log = tmp_path / "calls.jsonl"
    replay = ReplayInferenceProvider(ReplayInferenceConfig(script=script, log=log))
    stats, chunks = run(contextualize(tmp_path, replay, pages_chunks=(pages, chunks)))  # type: ignore[arg-type]
    assert stats.contextualized == 2
    for i, chunk in enumerate(chunks):
        assert chunk.text == f"Replayed context {i}.\n\n{pages[i][1]}"
        assert chunk.metadata[CONTEXT_KEY] == f"Replayed context {i}."
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["roles"] for c in calls] == [["system", "user"]] * 2
    assert {c["max_tokens"] for c in calls} == {256} and not any(c["stream"] for c in calls)


# ----- results -------------------------------------------------------------------------------------------


def test_context_is_prepended_and_everything_else_kept(tmp_path: Path) -> None:
    pages, chunks = pages_and_chunks(2, 2)
    before = [c.model_copy(deep=True) for c in chunks]
    stats, after = run(contextualize(tmp_path, FakeLLM(answer=lambda req, n: f"  Context {chunk_of(req)[:6]}\n"),
                                     pages_chunks=(pages, chunks)))
    assert stats.contextualized == len(before) and stats.failed == stats.empty == 0
    for old, new in zip(before, after, strict=True):
        context = f"Context {old.text[:6]}"
        assert new.text == f"{context}\n\n{old.text}"
        assert new.text.removeprefix(new.metadata[CONTEXT_KEY] + "\n\n") == old.text
        assert new.id == old.id and {k: v for k, v in new.metadata.items() if k != CONTEXT_KEY} == old.metadata


def test_concurrency_is_bounded_and_the_first_call_goes_alone(tmp_path: Path) -> None:
    llm = FakeLLM(delay=0.02)
    pages, chunks = pages_and_chunks(3, 3)
    stats, _ = run(contextualize(tmp_path, llm, config(max_concurrency=2), pages_chunks=(pages, chunks)))
    assert stats.contextualized == 9
    assert llm.peak == 2
    assert llm.events[:2] == [("start", 1), ("end", 1)]  # fills the engine's prefix cache before the fan-out


def test_default_concurrency_comes_from_the_distribution(tmp_path: Path) -> None:
    llm = FakeLLM(delay=0.02)
    run(contextualize(tmp_path, llm, pages_chunks=pages_and_chunks(3, 3),
                      params=ContextualRetrievalParams(default_max_concurrency=4)))
    assert llm.peak == 4


def test_a_chunk_that_times_out_is_retried_then_indexed_without_context(tmp_path: Path) -> None:
    """Llama Stack: a timeout is retriable (3 retries); a chunk still failing keeps its text, the rest go on."""
    pages, chunks = pages_and_chunks(2, 2)
    slow = chunks[2].text
    llm = FakeLLM(delay=lambda req: 5.0 if chunk_of(req) == slow else 0.0)
    stats, after = run(contextualize(tmp_path, llm, config(timeout_seconds=0.05), pages_chunks=(pages, chunks)))
    assert sum(chunk_of(r) == slow for r in llm.requests) == 1 + ctx.MAX_RETRIES
    assert (stats.contextualized, stats.failed) == (3, 1)
    assert after[2].text == slow and CONTEXT_KEY not in after[2].metadata
    assert all(CONTEXT_KEY in c.metadata for i, c in enumerate(after) if i != 2)
    assert "TimeoutError" in stats.errors[0]


def test_an_engine_down_at_the_first_call_is_a_503_at_once_so_the_file_is_retried(tmp_path: Path) -> None:
    """Not every chunk waiting out its own retries (hours for a big file, with the worker held): the first
    call of a view, after its retries, decides; the file is retried later as a whole."""
    llm = FakeLLM(delay=5.0)
    with pytest.raises(ServiceUnavailableError, match=f"'{QUALIFIED}' is unavailable .*TimeoutError"):
        run(contextualize(tmp_path, llm, config(timeout_seconds=0.02), pages_chunks=pages_and_chunks(1, 40)))
    assert len(llm.requests) == 1 + ctx.MAX_RETRIES


def test_calls_at_once_are_capped_by_the_server(tmp_path: Path) -> None:
    """A request's max_concurrency above max_concurrency_limit is lowered to it (the engine is shared)."""
    llm = FakeLLM(delay=0.01)
    stats, _ = run(contextualize(tmp_path, llm, config(max_concurrency=1000), pages_chunks=pages_and_chunks(1, 30),
                                 params=ContextualRetrievalParams(max_concurrency_limit=4)))
    assert stats.contextualized == 30 and llm.peak == 4


def test_a_passing_outage_is_retried(tmp_path: Path) -> None:
    llm = FakeLLM(answer=lambda req, n: ServiceUnavailableError("engine restarting") if n == 1 else "Fine.")
    stats, chunks = run(contextualize(tmp_path, llm, pages_chunks=pages_and_chunks(1, 1)))
    assert stats.calls == 2 and chunks[0].metadata[CONTEXT_KEY] == "Fine."


def test_other_errors_are_not_retried_and_all_failing_fails_the_file(tmp_path: Path) -> None:
    llm = FakeLLM(answer=lambda req, n: BadRequestError("the engine refuses"))
    with pytest.raises(ContextualizationError, match="failed for all 3 chunks; last error: BadRequestError: the "
                                                     "engine refuses") as e:
        run(contextualize(tmp_path, llm, pages_chunks=pages_and_chunks(1, 3)))
    assert len(llm.requests) == 3
    assert failure(e.value).model_dump() == {"code": "server_error", "message": str(e.value)}


def test_empty_answers_keep_the_chunk_and_all_empty_fails(tmp_path: Path) -> None:
    pages, chunks = pages_and_chunks(1, 2)
    first = chunks[0].text
    stats, after = run(contextualize(tmp_path, FakeLLM(answer=lambda req, n: "  " if chunk_of(req) == first
                                                       else "Ctx."), pages_chunks=(pages, chunks)))
    assert (stats.empty, stats.contextualized) == (1, 1) and after[0].text == first
    with pytest.raises(ContextualizationError, match="empty context for all 2 chunks"):
        run(contextualize(tmp_path / "b", FakeLLM(answer=lambda req, n: ""), pages_chunks=pages_and_chunks(1, 2)))


def test_a_cancelled_file_stops_calling_the_model(tmp_path: Path) -> None:
    cancelled = threading.Event()

    def answer(req: ChatCompletionRequest, n: int) -> str:
        if n == 3:
            cancelled.set()  # the file is cancelled while its third context is written
        return "A context."

    def check() -> None:
        if cancelled.is_set():
            raise IngestionCancelled()

    llm = FakeLLM(answer=answer, delay=0.01)
    with pytest.raises(IngestionCancelled):
        run(contextualize(tmp_path, llm, config(max_concurrency=2), pages_chunks=pages_and_chunks(4, 3), check=check))
    assert 3 <= len(llm.requests) <= 4  # no call starts after the cancel (one may be in flight beside the third)


def test_a_cancel_stops_the_calls_in_flight_at_once(tmp_path: Path) -> None:
    """Cancelling (or deleting) a file does not wait for slow context calls and their retries to end."""
    import time

    cancelled = threading.Event()
    threading.Timer(0.3, cancelled.set).start()

    def check() -> None:
        if cancelled.is_set():
            raise IngestionCancelled()

    started = time.monotonic()
    with pytest.raises(IngestionCancelled):
        run(contextualize(tmp_path, FakeLLM(delay=30.0), config(timeout_seconds=60), pages_chunks=pages_and_chunks(1, 3),
                          check=check))
    assert time.monotonic() - started < 5


# ----- long documents --------------------------------------------------------------------------------------


def long_document(n_pages: int = 30, words: int = 90) -> list[tuple[int, str]]:
    return [(p, " ".join(f"page{p}word{w}" for w in range(words)) if p % 7 else "") for p in range(1, n_pages + 1)]


def test_a_document_that_fits_is_one_view() -> None:
    pages = long_document(5)
    views = document_views(pages, 100_000)
    assert len(views) == 1 and views[0].pages == (1, 2, 3, 4, 5)
    assert views[0].text == "\n\n".join(f"[page {n}]\n{t}" for n, t in pages if t)


def test_a_long_document_becomes_head_plus_window_views_within_budget() -> None:
    pages = long_document(30)
    budget = 2000
    views = document_views(pages, budget)
    assert len(views) > 1
    assert document_views(pages, budget) == views  # deterministic: the same prefix on every call
    served = [p for v in views for p in v.pages]
    assert sorted(served) == list(range(1, 31)) and len(served) == len(set(served))
    for view in views:
        assert count_tokens(view.text) <= budget
        assert view.text.startswith("[page 1]\n")  # the head: the document's first pages
        for page in view.pages:
            if page % 7:  # a page with text is in its own view
                assert f"[page {page}]\n" in view.text
    assert "not shown ...]" in views[1].text
    # a page without text (7, 14, ...) follows the page before it
    view_of = {p: i for i, v in enumerate(views) for p in v.pages}
    assert view_of[14] == view_of[13]


@pytest.mark.parametrize("budget", [64, 80, 100, 120, 300, 1000])
def test_views_stay_within_small_budgets_too(budget: int) -> None:
    """Markers are reserved in their longer (range) form, and a head that leaves no room is dropped."""
    for pages in (long_document(30), long_document(200, words=5), long_document(200, words=1)):
        for view in document_views(pages, budget):
            assert count_tokens(view.text) <= budget, (budget, view.pages)


def test_a_page_bigger_than_the_budget_is_cut() -> None:
    pages = [(1, "intro " * 50), (2, "huge " * 5000), (3, "end " * 50)]
    views = document_views(pages, 1000)
    assert all(count_tokens(v.text) <= 1000 for v in views)
    assert any("[page 2]\nhuge" in v.text and "[...]" in v.text for v in views)


def test_the_models_context_length_bounds_the_document_part(tmp_path: Path) -> None:
    llm = FakeLLM()
    pages = long_document(30)
    chunks = [StoredChunk(id=f"f:p{n}:c0", text=t[:200] or f"image-only page {n}", metadata={"page": n})
              for n, t in pages]
    stats, _ = run(contextualize(tmp_path, llm, pages_chunks=(pages, chunks), context_length=1500))
    assert stats.views > 1 and stats.budget < 1500 and stats.contextualized == 30
    for r in llm.requests:
        assert count_tokens(system_of(r)) + count_tokens(r.messages[1].text()) + 256 < 1500
    systems = [system_of(r) for r in llm.requests]
    assert len(set(systems)) == stats.views  # one prefix per view, shared by its chunks


def test_a_too_long_answer_from_the_engine_shrinks_the_document(tmp_path: Path) -> None:
    """No context length in the metadata: the engine's "maximum context length is N" sets the budget."""
    limit = 2000

    def answer(req: ChatCompletionRequest, n: int) -> Any:
        prompt = count_tokens(system_of(req)) + count_tokens(req.messages[1].text())
        if prompt + 256 > limit:
            return BadRequestError(f"vLLM answered 400: This model's maximum context length is {limit} tokens. "
                                   f"However, you requested {prompt + 256} tokens.")
        return "Fits."

    llm = FakeLLM(answer=answer)
    pages = long_document(30)
    chunks = [StoredChunk(id=f"f:p{n}:c0", text=f"chunk of page {n}", metadata={"page": n}) for n, _ in pages]
    stats, after = run(contextualize(tmp_path, llm, pages_chunks=(pages, chunks)))
    assert stats.shrinks == 1 and stats.contextualized == 30 and stats.budget < limit
    assert all(c.metadata[CONTEXT_KEY] == "Fits." for c in after)


def test_a_model_too_small_for_any_document_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ContextualizationError, match="longer context or a smaller max_chunk_size_tokens"):
        run(contextualize(tmp_path, FakeLLM(), pages_chunks=pages_and_chunks(1, 1), context_length=300))


# ----- ingestion: the chunk -> embed path -----------------------------------------------------------------


class FakeFiles:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def local_path(self, file_id: str, owner: Any = None) -> str:
        return str(self.path)

    async def create_file(self, **kw: Any) -> None:
        return None

    async def delete_file(self, file_id: str, owner: Any = None) -> None:
        return None


class FakeIndex:
    def __init__(self) -> None:
        self.chunks: dict[str, StoredChunk] = {}

    async def add(self, chunks: list[StoredChunk]) -> None:
        self.chunks.update({c.id: c.model_copy(deep=True) for c in chunks})

    async def flush(self) -> None:
        return None


class FakeIndexes:
    def __init__(self) -> None:
        self.stores: dict[str, FakeIndex] = {}

    def of(self, store: StoreRecord) -> FakeIndex:
        return self.stores.setdefault(store.object.id, FakeIndex())


def test_ingestion_embeds_and_indexes_the_contextualised_text(tmp_path: Path) -> None:
    """The same PDF into a static and a contextual store: same chunks, the contextual ones prefixed;
    the two stores' chunks stay apart."""
    doc = docs.annual_report_pdf()
    pdf = tmp_path / doc.filename
    pdf.write_bytes(doc.data)
    sizes = {"max_chunk_size_tokens": 120, "chunk_overlap_tokens": 20}
    strategies = {"vs_static": {"type": "static", "static": sizes},
                  "vs_ctx": {"type": "contextual", "contextual": {**sizes, "model_id": MODEL, "max_concurrency": 2}}}
    llm = FakeLLM(answer=lambda req, n: f"From the {docs.COMPANY} annual report, part {n}.", delay=0.005)
    embedded: dict[str, list[str]] = {}

    async def embed(store: StoreRecord, texts: list[str]) -> list[list[float]]:
        embedded.setdefault(store.object.id, []).extend(texts)
        return [[float(len(t)), 1.0, 0.0] for t in texts]

    async def go() -> FakeIndexes:
        router = await make_router(tmp_path, llm)
        indexes = FakeIndexes()
        settings = VectorStoresDefaults(page_image_dpi=36, ocr=False, embedding_batch_size=4)
        ingestor = Ingestor(FakeFiles(pdf), indexes, embed, settings, inference=router)  # type: ignore[arg-type]
        for store_id, strategy in strategies.items():
            store = StoreRecord(object=VectorStoreObject(id=store_id, created_at=0), provider_id="x",
                                embedding_model="fake/embedder", embedding_dimension=3, chunking_strategy=strategy)
            rec = FileRecord(object=VectorStoreFileObject(id="file-1", vector_store_id=store_id, created_at=0,
                                                          status="in_progress", chunking_strategy=strategy,
                                                          attributes={"chunk_context": "user value", "team": "x"}),
                             filename=doc.filename)
            result = await ingestor.ingest(store, rec, "alice", threading.Event())  # type: ignore[arg-type]
            assert result.chunk_count == len(indexes.of(store).chunks) and result.page_count == 6
        return indexes

    indexes = run(go())
    static, contextual = indexes.stores["vs_static"].chunks, indexes.stores["vs_ctx"].chunks
    assert static.keys() == contextual.keys() and len(static) > 6
    image_only = [c for c in contextual.values() if c.metadata["chunk_type"] == "image"]
    assert image_only and image_only[0].metadata["page"] == 5
    # an image-only page's placeholder chunk is not sent to the model (nothing to situate): indexed as it is
    assert len(llm.requests) == len(contextual) - len(image_only) and len({system_of(r) for r in llm.requests}) == 1
    assert all(c.text == static[c.id].text and CONTEXT_KEY not in c.metadata for c in image_only)
    assert docs.COMPANY in system_of(llm.requests[0]) and "[page 6]" in system_of(llm.requests[0])
    assert llm.peak <= 2
    for chunk_id, plain in static.items():
        rich = contextual[chunk_id]
        if rich in image_only:
            continue
        context = rich.metadata[CONTEXT_KEY]
        assert context.startswith(f"From the {docs.COMPANY} annual report")
        assert rich.text == f"{context}\n\n{plain.text}"  # what is embedded and keyword-indexed
        same = {k: v for k, v in rich.metadata.items() if k not in (CONTEXT_KEY, "page_image_file_id")}
        assert same == {k: v for k, v in plain.metadata.items() if k != "page_image_file_id"}  # page, bbox, ...
        assert rich.metadata["page_image_file_id"].startswith("file-")
        assert CONTEXT_KEY not in plain.metadata  # a file attribute never sets the system key
    assert sorted(embedded["vs_ctx"]) == sorted(c.text for c in contextual.values())
    assert sorted(embedded["vs_static"]) == sorted(c.text for c in static.values())
