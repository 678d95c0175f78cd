"""The sentence-transformers provider's backends (ONNX Runtime and torch), its fallback, query cache and threads."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vistack.api.inference import EmbeddingsRequest
from vistack.providers.inference import sentence_transformers as st_module
from vistack.providers.inference.sentence_transformers import (
    SentenceTransformersInferenceConfig,
    SentenceTransformersInferenceProvider,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = [
    "Quarterly revenue grew by 12 percent.",
    "The strucplot framework draws mosaic displays of contingency tables.",
    "x",
    "Clustered covariances for panel data: " + "a long chunk of page text that runs past the token limit " * 40,
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def provider(**config) -> SentenceTransformersInferenceProvider:
    config.setdefault("device", "cpu")
    p = SentenceTransformersInferenceProvider(SentenceTransformersInferenceConfig(**config))
    p.provider_id = "sentence-transformers"
    return p


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


async def vectors(p: SentenceTransformersInferenceProvider, texts: list[str], **kw) -> list[list[float]]:
    r = await p.embeddings(EmbeddingsRequest(model=MINILM, input=texts, **kw))
    return [d.embedding for d in r.data]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One fresh export for the module (the real export path, from the packaged weights)."""
    yield tmp_path_factory.mktemp("onnx-cache")


needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnxruntime and onnx are needed for the onnx backend",
)


@needs_onnx
async def test_onnx_matches_torch(onnx_cache: Path) -> None:
    onnx, torch_ = provider(backend="onnx", onnx_cache_dir=str(onnx_cache)), provider(backend="torch")
    try:
        got, want = await vectors(onnx, TEXTS), await vectors(torch_, TEXTS)
        assert onnx.backends() == {MINILM: "onnx"} and torch_.backends() == {MINILM: "torch"}
        for a, b in zip(got, want, strict=True):
            assert len(a) == 384 and abs(math.sqrt(sum(x * x for x in a)) - 1) < 1e-4
            assert cos(a, b) > 0.9999
        # token usage is counted the same way (after truncation to the model's 256)
        r_onnx = await onnx.embeddings(EmbeddingsRequest(model=MINILM, input=TEXTS))
        r_torch = await torch_.embeddings(EmbeddingsRequest(model=MINILM, input=TEXTS))
        assert r_onnx.usage.prompt_tokens == r_torch.usage.prompt_tokens
        # dimensions (Matryoshka-style head) work on both
        short = await vectors(onnx, TEXTS[:1], dimensions=64)
        assert len(short[0]) == 64 and cos(short[0], want[0][:64]) > 0.9999
        exports = [d for d in onnx_cache.iterdir() if (d / "vistack-onnx.json").is_file()]
        assert len(exports) == 1 and (exports[0] / "model.onnx").is_file()
    finally:
        await onnx.shutdown()
        await torch_.shutdown()


@needs_onnx
async def test_cached_export_is_reused_without_exporting(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = provider(backend="onnx", onnx_cache_dir=str(onnx_cache))
    await vectors(p, ["warm the cache"])  # exports if the test above did not run
    await p.shutdown()

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(st_module, "_export_onnx", no_export)
    again = provider(backend="onnx", onnx_cache_dir=str(onnx_cache))
    try:
        [v] = await vectors(again, ["hello world"])
        assert again.backends() == {MINILM: "onnx"} and len(v) == 384
    finally:
        await again.shutdown()


@needs_onnx
async def test_int8_is_quantized_once_close_to_fp32_and_kept_apart(onnx_cache: Path) -> None:
    int8, fp32 = (provider(backend="onnx", onnx_cache_dir=str(onnx_cache), quantization=q) for q in ("int8", "none"))
    try:
        got, want = await vectors(int8, TEXTS), await vectors(fp32, TEXTS)
        assert int8.backends() == {MINILM: "onnx int8"} and fp32.backends() == {MINILM: "onnx"}
        assert all(0.8 < cos(a, b) < 0.99999 for a, b in zip(got, want, strict=True))  # close, but not the same
        assert abs(math.sqrt(sum(x * x for x in got[0])) - 1) < 1e-4
        names = sorted(d.name for d in onnx_cache.iterdir() if (d / "vistack-onnx.json").is_file())
        assert len(names) == 2 and names[1] == names[0] + "-int8"  # its own cache entry, next to the fp32 one
    finally:
        await int8.shutdown()
        await fp32.shutdown()


@needs_onnx
async def test_int8_that_cannot_be_made_serves_fp32_and_says_why(
    onnx_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("quantizer exploded")

    monkeypatch.setattr(st_module, "_quantize_int8", broken)
    p = provider(backend="onnx", onnx_cache_dir=str(tmp_path), quantization="int8")
    try:
        [v] = await vectors(p, ["hello"])
        assert len(v) == 384
        assert p.backends() == {MINILM: "onnx (fallback: int8 not used: quantizer exploded)"}
    finally:
        await p.shutdown()


async def test_falls_back_to_torch_without_onnxruntime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        st_module.importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a)
    )
    p = provider(backend="onnx", onnx_cache_dir=str(tmp_path))
    try:
        before = (await p.health()).message
        assert "onnxruntime is not installed" in before
        [v] = await vectors(p, ["still works"])
        assert len(v) == 384
        backend = p.backends()[MINILM]
        assert backend.startswith("torch (fallback:") and "onnxruntime" in backend
        health = await p.health()
        assert health.status == "OK" and "torch (fallback" in health.message
        assert not any(tmp_path.iterdir())  # nothing exported
    finally:
        await p.shutdown()


async def test_failed_export_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(st_module, "_export_onnx", broken)
    p = provider(backend="onnx", onnx_cache_dir=str(tmp_path))
    try:
        [v] = await vectors(p, ["still works"])
        assert len(v) == 384 and "exporter exploded" in p.backends()[MINILM]
    finally:
        await p.shutdown()


async def test_query_cache_hits_skip_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    p = provider(backend="torch", query_cache_size=2)
    calls: list[int] = []
    real = p._encode

    def counting(encoder, texts, dims):
        calls.append(len(texts))
        return real(encoder, texts, dims)

    monkeypatch.setattr(p, "_encode", counting)
    try:
        first = await p.embeddings(EmbeddingsRequest(model=MINILM, input="clustered covariance"))
        second = await p.embeddings(EmbeddingsRequest(model=MINILM, input="clustered covariance"))
        assert calls == [1]
        assert second.data[0].embedding == first.data[0].embedding
        assert second.usage.prompt_tokens == first.usage.prompt_tokens > 0
        assert p._cache.hits == 1 and p._cache.misses == 1
        # another dimension is another entry
        await p.embeddings(EmbeddingsRequest(model=MINILM, input="clustered covariance", dimensions=64))
        assert calls == [1, 1]
        # big requests (ingestion batches) bypass the cache
        batch = [f"chunk {i}" for i in range(8)]
        await p.embeddings(EmbeddingsRequest(model=MINILM, input=batch))
        await p.embeddings(EmbeddingsRequest(model=MINILM, input=batch))
        assert calls == [1, 1, 8, 8]
        # LRU: size 2, so the first entry has been evicted by now? (64-dim entry and the first remain)
        await p.embeddings(EmbeddingsRequest(model=MINILM, input="third query"))
        assert len(p._cache.entries) == 2
        await p.embeddings(EmbeddingsRequest(model=MINILM, input="clustered covariance"))  # evicted: recomputed
        assert calls == [1, 1, 8, 8, 1, 1]
        assert "hits" in (await p.health()).message
    finally:
        await p.shutdown()


async def test_query_cache_off() -> None:
    p = provider(backend="torch", query_cache_size=0)
    try:
        await vectors(p, ["q"])
        await vectors(p, ["q"])
        assert p._cache.hits == 0 and not p._cache.entries
    finally:
        await p.shutdown()


async def test_torch_threads_are_the_providers_own() -> None:
    import torch

    p = provider(backend="torch", cpu_threads=1)
    try:
        await vectors(p, ["warm up"])
        other = threading.Thread(target=torch.set_num_threads, args=(2,))  # e.g. another provider changes it
        other.start()
        other.join()
        await vectors(p, ["encode again"])
        worker_threads = await p._run(torch.get_num_threads)
        assert worker_threads == 1
        assert threading.current_thread().name not in {t.name for t in threading.enumerate() if "embeddings" in t.name}
    finally:
        await p.shutdown()


@needs_onnx
async def test_onnx_session_threads(onnx_cache: Path) -> None:
    p = provider(backend="onnx", onnx_cache_dir=str(onnx_cache), cpu_threads=1)
    try:
        await vectors(p, ["warm up"])
        encoder = p._models[MINILM].encoder
        options = encoder.session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert "1 threads" in (await p.health()).message
    finally:
        await p.shutdown()


async def test_forward_passes_run_on_one_named_worker_thread() -> None:
    p = provider(backend="torch")
    try:
        names = await asyncio.gather(*(p._run(lambda: threading.current_thread().name) for _ in range(4)))
        assert len(set(names)) == 1 and names[0].startswith("vistack-embeddings")
    finally:
        await p.shutdown()
