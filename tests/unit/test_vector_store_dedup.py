"""Deduplicated files in a vector store: whoever leaves, the content stays findable and nothing leaks.

Runs the real ``VectorStoreService`` over a real stack (embedded Chroma,
local files, MiniLM embeddings); each test has its own records, keyword
indexes and store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vistack.api import Api, NotFoundError
from vistack.api.files import FilePurpose
from vistack.api.vector_stores import AttachFileRequest, CreateFileBatchRequest, CreateVectorStoreRequest, SearchRequest
from vistack.config import StackConfig
from vistack.rag.records import FileRecord, Records
from vistack.rag.vector_stores import VectorStoreService
from vistack.stack import Stack
from vistack.storage import MetadataStore
from vistack.testing import documents as docs

OWNER = "alice"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Providers only (embedded Chroma, local files, MiniLM); every test builds its own service on them."""
    config = StackConfig.model_validate({
        "distro_name": "dedup",
        "apis": ["inference", "files", "vector_io"],
        "providers": {
            "inference": [{"provider_id": "sentence-transformers", "provider_type": "inline::sentence-transformers"}],
            "files": [{"provider_id": "localfs", "provider_type": "inline::localfs"}],
            "vector_io": [{"provider_id": "chromadb", "provider_type": "inline::chromadb"}],
        },
        "models": [{"model_id": "all-MiniLM-L6-v2", "provider_id": "sentence-transformers",
                    "model_type": "embedding", "metadata": {"embedding_dimension": 384}}],
        "storage": {"state_dir": str(tmp_path_factory.mktemp("dedup-stack"))},
    })
    stack = Stack(config)
    await stack.start()
    yield stack
    await stack.stop()


def new_service(stack: Stack, state_dir: Path, workers: int = 1) -> VectorStoreService:
    assert stack.files is not None and stack.inference is not None
    return VectorStoreService(
        records=Records(MetadataStore(state_dir / "records.sqlite3")),
        files=stack.files,
        vector_io=stack.by_api(Api.vector_io),  # type: ignore[arg-type]
        inference=stack.inference,
        settings=stack.config.vector_stores.model_copy(
            update={"page_image_dpi": 72, "attach_wait_s": 0, "ingestion_workers": workers}),
        state_dir=state_dir,
    )


@pytest.fixture
async def service(stack: Stack, tmp_path: Path) -> AsyncIterator[VectorStoreService]:
    service = new_service(stack, tmp_path)
    await service.start()
    yield service
    await service.stop()
    service.records.db.close()


async def upload(stack: Stack, filename: str, doc: docs.SampleDocument | None = None) -> str:
    doc = doc or docs.invoice_pdf()

    async def body() -> AsyncIterator[bytes]:
        yield doc.data

    assert stack.files is not None
    info = await stack.files.create_file(
        filename=filename, purpose=FilePurpose.assistants, chunks=body(), owner=OWNER, content_type=doc.mime_type
    )
    return info.file.id


async def new_store(service: VectorStoreService) -> str:
    return (await service.create_store(CreateVectorStoreRequest(name="dedup"), OWNER)).id


async def attach(service: VectorStoreService, store: str, file_id: str, **attributes: str) -> FileRecord:
    await service.attach_file(store, AttachFileRequest(file_id=file_id, attributes=attributes), OWNER)
    return await record(service, store, file_id)


async def record(service: VectorStoreService, store: str, file_id: str) -> FileRecord:
    rec = await service.records.get_file(store, file_id)
    assert rec is not None
    return rec


async def search(service: VectorStoreService, store: str, mode: str, **kw) -> list:
    req = SearchRequest(query=docs.INVOICE_NUMBER, search_mode=mode, max_num_results=10, **kw)
    return (await service.search(store, req, OWNER)).data


async def chunks_of(service: VectorStoreService, store: str, **where) -> list:
    found = await service.records.get_store(store)
    assert found is not None
    return await service.indexes.of(found[0]).get(where)


@pytest.mark.anyio
async def test_deleting_the_original_hands_its_chunks_to_the_duplicate(service, stack) -> None:
    store = await new_store(service)
    original = (await attach(service, store, await upload(stack, "invoice.pdf"), source="email")).object.id
    await service.wait_idle()
    first = await record(service, store, original)
    assert first.object.status == "completed" and first.chunk_count and first.page_image_file_ids
    copy = (await attach(service, store, await upload(stack, "invoice-copy.pdf"), dept="legal")).object.id
    assert (await record(service, store, copy)).duplicate_of == original

    await service.delete_file(store, original, OWNER)

    heir = await record(service, store, copy)
    assert heir.duplicate_of is None and heir.object.status == "completed"
    assert (heir.page_image_file_ids, heir.page_count, heir.chunk_count) == (
        first.page_image_file_ids, first.page_count, first.chunk_count)
    for image_id in heir.page_image_file_ids:
        await stack.files.get_file(image_id)  # the page images stay: the heir's chunks point at them
    content = (await service.file_content(store, copy, OWNER, False, True)).data
    assert len(content) == first.chunk_count
    for item in content:
        assert (item.metadata["file_id"], item.metadata["filename"], item.metadata["dept"]) == (
            copy, "invoice-copy.pdf", "legal")
        assert "source" not in item.metadata  # the original's attributes left with it
        assert item.chunk_metadata["document_id"] == copy
        assert item.metadata["page_image_file_id"] in heir.page_image_file_ids
    for mode in ("vector", "keyword", "hybrid"):
        hits = await search(service, store, mode)
        assert hits and {h.file_id for h in hits} == {copy}, mode
        assert {h.filename for h in hits} == {"invoice-copy.pdf"}
    legal = {"type": "eq", "key": "dept", "value": "legal"}
    for mode in ("vector", "keyword"):  # both copies carry the heir's attributes
        assert await search(service, store, mode, filters=legal)
    public = await service.get_store(store, OWNER)
    assert (public.file_counts.total, public.file_counts.completed) == (1, 1)
    assert public.usage_bytes == len(docs.invoice_pdf().data)

    await service.delete_file(store, copy, OWNER)  # the last copy goes: so does everything
    assert await chunks_of(service, store) == []
    assert await search(service, store, "keyword") == []
    for image_id in first.page_image_file_ids:
        with pytest.raises(NotFoundError):
            await stack.files.get_file(image_id)


@pytest.mark.anyio
async def test_other_duplicates_follow_the_heir(service, stack) -> None:
    store = await new_store(service)
    a = (await attach(service, store, await upload(stack, "a.pdf"))).object.id
    await service.wait_idle()
    b = (await attach(service, store, await upload(stack, "b.pdf"))).object.id
    c = (await attach(service, store, await upload(stack, "c.pdf"))).object.id

    await service.delete_file(store, a, OWNER)
    assert (await record(service, store, c)).duplicate_of == b
    content = (await service.file_content(store, c, OWNER, False, True)).data
    assert content and {i.metadata["file_id"] for i in content} == {b}

    await service.delete_file(store, b, OWNER)
    assert (await record(service, store, c)).duplicate_of is None
    assert {h.file_id for h in await search(service, store, "hybrid")} == {c}
    assert {chunk.metadata["file_id"] for chunk in await chunks_of(service, store)} == {c}


@pytest.mark.anyio
async def test_deleting_a_duplicate_leaves_the_original_alone(service, stack) -> None:
    store = await new_store(service)
    original = (await attach(service, store, await upload(stack, "invoice.pdf"))).object.id
    await service.wait_idle()
    before = await chunks_of(service, store)
    copy = (await attach(service, store, await upload(stack, "again.pdf"))).object.id
    await service.delete_file(store, copy, OWNER)
    assert [c.model_dump() for c in await chunks_of(service, store)] == [c.model_dump() for c in before]
    assert {h.file_id for h in await search(service, store, "keyword")} == {original}
    rec = await record(service, store, original)
    for image_id in rec.page_image_file_ids:
        await stack.files.get_file(image_id)


@pytest.mark.anyio
async def test_an_original_still_ingesting_is_replaced_by_ingesting_the_heir(stack, tmp_path) -> None:
    service = new_service(stack, tmp_path)  # no workers yet: the original stays in_progress
    try:
        store = await new_store(service)
        original = (await attach(service, store, await upload(stack, "invoice.pdf"))).object.id
        copy = (await attach(service, store, await upload(stack, "copy.pdf"), dept="legal")).object.id
        assert (await record(service, store, copy)).duplicate_of == original

        await service.delete_file(store, original, OWNER)
        heir = await record(service, store, copy)
        assert heir.duplicate_of is None and heir.object.status == "in_progress"

        await service.start()
        await service.wait_idle()
        heir = await record(service, store, copy)
        assert heir.object.status == "completed" and heir.chunk_count and heir.page_image_file_ids
        chunks = await chunks_of(service, store)
        assert chunks and {(c.metadata["file_id"], c.metadata["dept"]) for c in chunks} == {(copy, "legal")}
    finally:
        await service.stop()
        service.records.db.close()


@pytest.mark.anyio
async def test_a_copy_left_in_progress_by_a_restart_is_never_ingested_itself(stack, tmp_path) -> None:
    """After a restart the copy waits for its original (two workers would otherwise ingest both: the content
    twice in search, and the copy's chunks orphaned when it is detached)."""
    first = new_service(stack, tmp_path)  # no workers: both stay in_progress, as a crash would leave them
    store = await new_store(first)
    original = (await attach(first, store, await upload(stack, "invoice.pdf"))).object.id
    copy = (await attach(first, store, await upload(stack, "copy.pdf"))).object.id
    assert (await record(first, store, copy)).object.status == "in_progress"
    first.records.db.close()

    service = new_service(stack, tmp_path, workers=2)
    try:
        await service.start()
        await service.wait_idle()
        assert (await record(service, store, original)).object.status == "completed"
        assert (await record(service, store, copy)).object.status == "completed"
        assert await chunks_of(service, store, file_id=original) and not await chunks_of(service, store, file_id=copy)
        hits = await search(service, store, "hybrid")
        assert hits and len({(h.file_id, h.content[0].text) for h in hits}) == len(hits)
    finally:
        await service.stop()
        service.records.db.close()


@pytest.mark.anyio
async def test_cancelling_an_original_hands_its_copies_a_fresh_ingestion(stack, tmp_path) -> None:
    """A copy outside the cancelled batch was not cancelled: it becomes the original and is ingested."""
    service = new_service(stack, tmp_path)  # no workers yet: the original is still in_progress when cancelled
    try:
        store = await new_store(service)
        original = await upload(stack, "invoice.pdf")
        batch = await service.create_batch(store, CreateFileBatchRequest(file_ids=[original]), OWNER)
        copy = (await attach(service, store, await upload(stack, "copy.pdf"), dept="legal")).object.id
        assert (await record(service, store, copy)).duplicate_of == original

        await service.cancel_batch(store, batch.id, OWNER)
        assert (await record(service, store, original)).object.status == "cancelled"
        heir = await record(service, store, copy)
        assert heir.duplicate_of is None and heir.object.status == "in_progress"

        await service.start()
        await service.wait_idle()
        heir = await record(service, store, copy)
        assert heir.object.status == "completed" and heir.chunk_count
        chunks = await chunks_of(service, store)
        assert chunks and {(c.metadata["file_id"], c.metadata["dept"]) for c in chunks} == {(copy, "legal")}
    finally:
        await service.stop()
        service.records.db.close()


@pytest.mark.anyio
async def test_deleting_the_store_deletes_every_copy(service, stack, tmp_path) -> None:
    store = await new_store(service)
    original = (await attach(service, store, await upload(stack, "invoice.pdf"))).object.id
    await service.wait_idle()
    await attach(service, store, await upload(stack, "again.pdf"))
    images = (await record(service, store, original)).page_image_file_ids
    found = await service.records.get_store(store)
    assert found is not None
    index = service.indexes.of(found[0])
    await index.flush()
    assert (tmp_path / "keyword" / store).is_dir()

    await service.delete_store(store, OWNER)
    assert await service.records.list_files(store) == []
    assert not (tmp_path / "keyword" / store).exists()
    with pytest.raises(NotFoundError):
        await index.get({})
    for image_id in images:
        with pytest.raises(NotFoundError):
            await stack.files.get_file(image_id)


@pytest.mark.anyio
@pytest.mark.parametrize("default_mode", ["keyword", "vector", "hybrid"])
async def test_a_search_without_a_mode_uses_the_distribution_default(stack, tmp_path, default_mode) -> None:
    service = new_service(stack, tmp_path)
    service.settings = service.settings.model_copy(update={"default_search_mode": default_mode})
    await service.start()
    store = await new_store(service)
    await attach(service, store, await upload(stack, "invoice.pdf"))
    await service.wait_idle()
    unmatched = SearchRequest(query="zyxwvut qqqq", max_num_results=5)  # shares no word with the invoice
    hits = (await service.search(store, unmatched, OWNER)).data
    assert bool(hits) == (default_mode != "keyword")  # BM25 finds nothing; any dense search finds the nearest
    explicit = SearchRequest(query="zyxwvut qqqq", max_num_results=5, search_mode="keyword")
    assert (await service.search(store, explicit, OWNER)).data == []  # an explicit mode still wins
    found = (await service.search(store, SearchRequest(query=docs.INVOICE_NUMBER), OWNER)).data
    assert found and found[0].attributes["page"] == 1
    if default_mode == "hybrid":  # fused scores are reciprocal ranks: at most 2 / (60 + 1)
        assert 0 < found[0].score <= 2 / 61


async def one_ingested_file(stack: Stack, tmp_path: Path, filename: str) -> tuple[VectorStoreService, str, str]:
    """A started service with one store holding one ingested file: (service, store id, file id)."""
    service = new_service(stack, tmp_path)
    await service.start()
    store = await service.create_store(CreateVectorStoreRequest(name=filename), OWNER)
    file_id = await upload(stack, filename)
    await service.attach_file(store.id, AttachFileRequest(file_id=file_id), OWNER)
    await service.wait_idle()
    return service, store.id, file_id


async def restarted(service: VectorStoreService, stack: Stack, tmp_path: Path) -> VectorStoreService:
    """A new service on the same records, started as after a crash of ``service``."""
    await service.stop()
    again = new_service(stack, tmp_path)
    again.records = service.records
    await again.start()
    return again


@pytest.mark.anyio
async def test_a_deletion_cut_by_a_crash_is_invisible_and_finished_at_start(stack: Stack, tmp_path: Path):
    service, store_id, file_id = await one_ingested_file(stack, tmp_path, "doomed.pdf")
    record = (await service.records.get_store(store_id))[0]
    images = (await service.records.get_file(store_id, file_id)).page_image_file_ids
    assert images
    record.deleting = True  # what delete_store writes first; then "the process dies"
    await service.records.put_store(record, OWNER)
    with pytest.raises(NotFoundError):
        await service.get_store(store_id, OWNER)
    assert store_id not in [s.id for s in (await service.list_stores(OWNER, 100, "desc", None, None)).data]

    again = await restarted(service, stack, tmp_path)
    try:
        assert await again.records.get_store(store_id) is None
        assert await again.records.list_files(store_id) == []
        for image_id in images:
            with pytest.raises(NotFoundError):
                await stack.files.get_file(image_id)
    finally:
        await again.stop()
        service.records.db.close()


@pytest.mark.anyio
async def test_a_detach_cut_by_a_crash_is_invisible_and_finished_at_start(stack: Stack, tmp_path: Path):
    service, store_id, file_id = await one_ingested_file(stack, tmp_path, "leaving.pdf")
    rec = await service.records.get_file(store_id, file_id)
    rec.detaching = True  # what delete_file writes first; then "the process dies"
    await service.records.put_file(rec, OWNER)
    with pytest.raises(NotFoundError):
        await service.get_file(store_id, file_id, OWNER)
    assert (await service.get_store(store_id, OWNER)).file_counts.total == 0

    again = await restarted(service, stack, tmp_path)
    try:
        assert await again.records.get_file(store_id, file_id, include_detaching=True) is None
        assert await chunks_of(again, store_id, file_id=file_id) == []
    finally:
        await again.stop()
        service.records.db.close()
