"""Contextual chunking through a real server with the tiny Mllama, driven by the ``openai`` SDK.

The tiny model is random: nothing here depends on what its contexts say, only on where they go
(prepended to the chunk's text, noted in ``attributes.chunk_context``) and on the file's lifecycle.
"""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

pytestmark = pytest.mark.slow

MODEL = "transformers/tiny-mllama"
SIZES = {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}
CONTEXTUAL = {"type": "contextual", "contextual": {**SIZES, "model_id": MODEL, "max_concurrency": 2,
                                                    "timeout_seconds": 120}}


@pytest.fixture(scope="module")
def server(tiny_mllama_dir, tmp_path_factory):
    dist = tiny_distribution(tiny_mllama_dir, documents=True, vector_stores={"page_image_dpi": 72})
    with ServerProcess(dist, tmp_path_factory.mktemp("contextual")) as proc:
        yield proc


def wait_completed(client: openai.OpenAI, store_id: str, file_id: str, timeout_s: float = 300):
    deadline = time.monotonic() + timeout_s
    while True:
        f = client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
        if f.status != "in_progress":
            return f
        if time.monotonic() > deadline:
            raise TimeoutError(f"{file_id} still in_progress after {timeout_s}s")
        time.sleep(0.3)


def upload(client: openai.OpenAI, doc: docs.SampleDocument, name: str | None = None) -> str:
    return client.files.create(file=(name or doc.filename, doc.data, doc.mime_type), purpose="assistants").id


def test_contextual_attach_completes_searches_and_echoes_the_strategy(client, http: httpx.Client) -> None:
    doc = docs.invoice_pdf()
    static_store = client.vector_stores.create(name="static")
    static_file = upload(client, doc)
    client.vector_stores.files.create(vector_store_id=static_store.id, file_id=static_file,
                                      chunking_strategy={"type": "static", "static": SIZES})
    assert wait_completed(client, static_store.id, static_file).status == "completed"

    store = client.vector_stores.create(name="contextual")
    file_id = upload(client, doc)
    attached = client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id,
                                                 chunking_strategy=CONTEXTUAL)  # type: ignore[arg-type]
    assert attached.chunking_strategy.type == "contextual"
    done = wait_completed(client, store.id, file_id)
    assert done.status == "completed", done.last_error
    raw = http.get(f"/v1/vector_stores/{store.id}/files/{file_id}").json()
    assert raw["chunking_strategy"]["type"] == "contextual"
    assert {k: raw["chunking_strategy"]["contextual"][k] for k in CONTEXTUAL["contextual"]} == CONTEXTUAL["contextual"]

    # Llama Stack's own comparison (test_openai_vector_store_contextual_vs_static_chunks): same chunks, each
    # contextual one holding the static text after its context and a blank line
    static = client.vector_stores.files.content(static_file, vector_store_id=static_store.id).data
    contextual = http.get(f"/v1/vector_stores/{store.id}/files/{file_id}/content",
                          params={"include_metadata": True}).json()["data"]
    assert len(static) == len(contextual) > 0
    with_context = 0
    for plain, rich in zip(static, contextual, strict=True):
        context = rich["metadata"].get("chunk_context")
        if context:  # a chunk whose (random) answer was empty keeps its text: Llama Stack's rule
            with_context += 1
            assert rich["text"] == f"{context}\n\n{plain.text}"
        else:
            assert rich["text"] == plain.text
        assert rich["metadata"]["page"] == 1 and rich["metadata"]["bbox"]
    assert with_context > 0

    results = client.vector_stores.search(vector_store_id=store.id, query=docs.INVOICE_NUMBER,
                                          max_num_results=5, extra_body={"search_mode": "keyword"})
    assert results.data
    hit = results.data[0]
    assert docs.INVOICE_NUMBER in hit.content[0].text and hit.attributes["page"] == 1
    if hit.attributes.get("chunk_context"):
        assert hit.content[0].text.startswith(f"{hit.attributes['chunk_context']}\n\n")

    # the same bytes again in the contextual store: a duplicate of the ingested file (no second run)
    again = upload(client, doc, name="copy.pdf")
    copy = client.vector_stores.files.create(vector_store_id=store.id, file_id=again,
                                             chunking_strategy=CONTEXTUAL)  # type: ignore[arg-type]
    assert wait_completed(client, store.id, copy.id).status == "completed"
    assert client.vector_stores.files.retrieve(again, vector_store_id=store.id).usage_bytes == 0
    # ... and the static store's chunks are untouched by the contextual store's
    assert [c.text for c in client.vector_stores.files.content(static_file, vector_store_id=static_store.id).data] \
        == [c.text for c in static]


def test_contextual_without_a_model_is_a_400_naming_model_id(client) -> None:
    no_model = {"type": "contextual", "contextual": SIZES}
    with pytest.raises(openai.BadRequestError, match="model_id"):
        client.vector_stores.create(name="no-model", chunking_strategy=no_model)  # type: ignore[arg-type]
    store = client.vector_stores.create(name="plain")
    file_id = upload(client, docs.invoice_pdf())
    with pytest.raises(openai.BadRequestError, match="model_id"):
        client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id,
                                          chunking_strategy=no_model)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="model_id"):
        client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[file_id],
                                                 chunking_strategy=no_model)  # type: ignore[arg-type]
    assert client.vector_stores.files.list(vector_store_id=store.id).data == []
    with pytest.raises(openai.NotFoundError, match="model_id"):
        client.vector_stores.files.create(
            vector_store_id=store.id, file_id=file_id,
            chunking_strategy={"type": "contextual", "contextual": {"model_id": "no-such-model"}},  # type: ignore[arg-type]
        )
