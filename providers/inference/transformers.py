"""``inline::transformers``: Llama 3.2 Vision (Mllama) or any Hugging Face causal LM, in-process.

The provider runs the model inside the server: no engine to operate, which
suits a laptop or a single GPU box. It is built for one-request-at-a-time
latency, not throughput: requests to one model are serialized on a single
worker thread (``generate`` is not re-entrant on one model) while the event
loop stays free; for batching use ``remote::vllm``.

torch and transformers are imported only inside methods, so importing this
module (the registry does it to read the config class) stays cheap.

Errors a client can see: ``BadRequestError`` (400: bad sampling values,
images the model cannot take, template refusals), ``PayloadTooLargeError``
(413: image limits), ``ServiceUnavailableError`` (503: weights missing or
unloadable, GPU out of memory, queue full), ``ModelNotFoundError`` (404, only
if the server forwards a model it did not register here).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vistack.api import (
    BadRequestError,
    HealthResponse,
    HealthStatus,
    InferenceProvider,
    Model,
    ModelNotFoundError,
    ModelType,
    ServiceUnavailableError,
)
from vistack.api.inference import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChoiceDelta,
    ChunkChoice,
    Completion,
    CompletionChoice,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    FileContentPart,
    FinishReason,
    FunctionCall,
    ImageContentPart,
    TextContentPart,
    ToolCall,
    Usage,
    new_id,
    now,
)
from vistack.images import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    MLLAMA_MAX_SIDE,
    decode_image_url,
    stitch_images,
)

logger = logging.getLogger(__name__)

PROVIDER_TYPE = "inline::transformers"
EXAMPLE_HUB_ID = "meta-llama/Llama-3.2-11B-Vision-Instruct"

# Sampling draws from torch's process-wide RNG; a seeded request must not share it with another
# model's concurrent sampling, or the same seed would not give the same output.
_RNG_LOCK = threading.Lock()


class TransformersInferenceConfig(BaseModel):
    """Configuration of ``inline::transformers`` (the ``config:`` block in a distribution YAML).

    Unknown keys are rejected so a typo does not silently fall back to a default.
    """

    model_config = ConfigDict(extra="forbid")

    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="auto = CUDA when a GPU is visible, else CPU. mps must be chosen explicitly."
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto = bfloat16 on CUDA (float16 on GPUs without bf16), float16 on MPS, float32 on CPU."
    )
    quantization: Literal["none", "4bit", "8bit"] = Field(
        "none",
        description="bitsandbytes weight quantization, CUDA only: 4bit fits the 11B vision model in ~8 GB.",
    )
    device_map: str | dict[str, Any] | None = Field(
        None, description='accelerate device map; default "auto" on CUDA (shards over all visible GPUs).'
    )
    attn_implementation: str | None = Field(
        None, description='"sdpa", "eager" or "flash_attention_2"; default lets transformers choose.'
    )
    cpu_threads: int | None = Field(None, ge=1, description="torch intra-op threads on CPU; default: torch's choice.")
    preload: bool = Field(
        False, description="Load registered models in the background at startup instead of on the first request."
    )
    allow_download: bool = Field(
        False, description="Let transformers download from the Hugging Face Hub; off = offline (local files only)."
    )
    cache_dir: str | None = Field(None, description="Hugging Face cache directory; default HF_HOME's.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for hub ids.")
    trust_remote_code: bool = Field(
        False, description="Run model code shipped in the checkpoint. Off: it executes arbitrary Python."
    )
    default_max_tokens: int = Field(256, ge=1, description="Completion length when the request sets none.")
    max_tokens_limit: int | None = Field(
        None, ge=1, description="Reject requests asking for more new tokens than this (protects latency)."
    )
    max_model_len: int | None = Field(
        None, ge=1, description="Context length (prompt + completion); default: the model's max_position_embeddings."
    )
    max_image_bytes: int = Field(DEFAULT_MAX_IMAGE_BYTES, ge=1, description="Per image, encoded; larger is 413.")
    max_image_pixels: int = Field(DEFAULT_MAX_IMAGE_PIXELS, ge=1, description="Per image; larger is 413 (bomb guard).")
    max_images_per_request: int = Field(16, ge=1, description="More images in one request is 400.")
    multi_image: Literal["reject", "stitch", "first"] = Field(
        "reject",
        description="Llama 3.2 Vision attends to one image. reject: 400 on several; stitch: compose them into one "
        "grid within stitch_max_side; first: keep the first image and drop the others.",
    )
    stitch_max_side: int = Field(MLLAMA_MAX_SIDE, ge=64, description="Side of the stitched grid (1120 = 2x2 tiles).")
    system_with_images: Literal["merge", "reject"] = Field(
        "merge",
        description="Llama 3.2 Vision's template refuses a system message with images. merge: move the system "
        "text into the first user turn; reject: 400.",
    )
    sanitize_control_tokens: bool = Field(
        True,
        description="Encode special tokens typed in messages (e.g. <|eot_id|>) as plain text, so user content "
        "cannot forge turns. Needs a transformers version that supports it; ignored otherwise.",
    )
    max_queued_requests: int = Field(
        32, ge=1, description="Requests waiting or running per model; beyond this, 503 so clients back off."
    )


# ----- tool calls --------------------------------------------------------------------------------------


def parse_tool_calls(text: str, tool_names: Collection[str] | None = None) -> list[ToolCall] | None:
    """Parse Llama 3.x JSON tool calls from generated text, or ``None`` if the text is not one.

    Accepts ``{"name": ..., "parameters": {...}}`` (the Llama 3.1/3.2 format), ``"arguments"``
    instead of ``"parameters"`` (as an object or a JSON string), an optional leading
    ``<|python_tag|>``, a ```json fence, several calls separated by ``;`` or newlines, or a JSON
    list of calls. When ``tool_names`` is given, a call naming an unknown tool means the text is
    ordinary content (a model asked for JSON output also writes ``{"name": ...}``).
    """
    s = text.strip()
    for tag in ("<|python_tag|>",):
        if s.startswith(tag):
            s = s[len(tag) :].strip()
    for end in ("<|eom_id|>", "<|eot_id|>"):
        s = s.removesuffix(end).strip()
    if s.startswith("```"):
        s = s.strip("`").strip()
        s = s.removeprefix("json").strip()
    if not s or s[0] not in "{[":
        return None
    decoder = json.JSONDecoder()
    objects: list[Any] = []
    pos = 0
    while pos < len(s):
        try:
            value, pos = decoder.raw_decode(s, pos)
        except json.JSONDecodeError:
            return None
        objects.extend(value if isinstance(value, list) else [value])
        while pos < len(s) and (s[pos].isspace() or s[pos] in ";,"):
            pos += 1
    calls: list[ToolCall] = []
    for obj in objects:
        if not isinstance(obj, dict):
            return None
        inner = obj.get("function")
        fn: dict[str, Any] = inner if isinstance(inner, dict) else obj
        name = fn.get("name")
        if not isinstance(name, str) or not name or not ({"parameters", "arguments"} & fn.keys()):
            return None
        if tool_names is not None and name not in tool_names:
            return None
        args = fn.get("parameters", fn.get("arguments"))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                return None
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return None
        calls.append(
            ToolCall(
                id=f"call_{uuid.uuid4().hex[:24]}",
                function=FunctionCall(name=name, arguments=json.dumps(args, ensure_ascii=False)),
            )
        )
    return calls or None


def _active_tools(request: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    """The tools to show the model: none for tool_choice "none", only the named one for a forced choice.

    Nothing can force the model to call a tool here (no constrained decoding); "required" is best effort.
    """
    if not request.tools or request.tool_choice == "none":
        return None
    choice = request.tool_choice
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        named = [t for t in request.tools if wanted in _tool_names([t])]
        if not named:
            raise BadRequestError(f"tool_choice names function '{wanted}', which is not in tools.", param="tool_choice")
        return named
    return request.tools


def _tool_names(tools: list[dict[str, Any]]) -> set[str]:
    names = set()
    for t in tools:
        fn = t.get("function", t)
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


# ----- stop strings ------------------------------------------------------------------------------------


class _StopScanner:
    """Cuts streamed text at the first stop string, holding back text that may begin one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buf = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop string was hit)."""
        self.buf += text
        if not self.stops:
            out, self.buf = self.buf, ""
            return out, False
        cut = _first_stop(self.buf, self.stops)
        if cut is not None:
            out, self.buf = self.buf[:cut], ""
            return out, True
        keep = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), keep, -1):
                if self.buf.endswith(s[:k]):
                    keep = k
                    break
        out, self.buf = self.buf[: len(self.buf) - keep], self.buf[len(self.buf) - keep :]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


def _first_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


# ----- loaded models -----------------------------------------------------------------------------------


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    processor: Any | None  # set for Mllama: chat template + image processor
    architecture: str
    device: Any
    context_length: int | None
    eos_ids: list[int]
    pad_id: int | None

    @property
    def is_vision(self) -> bool:
        return self.processor is not None


@dataclass
class _Slot:
    """One provider_resource_id: its identifiers, its weights once loaded, and its worker thread."""

    resource_id: str
    identifiers: set[str] = field(default_factory=set)
    loaded: _Loaded | None = None
    error: ServiceUnavailableError | None = None
    error_at: float = 0.0
    pending: int = 0  # requests queued or running on the worker
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards pending
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="vistack-transformers")
    )


@dataclass
class _Sampling:
    max_new_tokens: int
    temperature: float | None
    top_p: float | None
    seed: int | None
    stop: list[str]
    extra: dict[str, Any]


@dataclass
class _Prepared:
    inputs: dict[str, Any]
    prompt_tokens: int


@dataclass
class _Outcome:
    text: str = ""
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"


# ----- the provider ------------------------------------------------------------------------------------


class TransformersInferenceProvider(InferenceProvider):
    """Serves registered models with transformers ``generate``; loads each lazily, once."""

    config: TransformersInferenceConfig

    def __init__(self, config: TransformersInferenceConfig, deps: dict | None = None) -> None:
        super().__init__(config, deps)
        self._slots: dict[str, _Slot] = {}
        self._initialized = False
        self._sanitize_supported: dict[type, bool] = {}  # per tokenizer/processor class

    # -- lifecycle ------------------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Never loads synchronously and never fails for missing weights (health reports it)."""
        self._initialized = True
        if self.config.preload:
            for slot in self._slots.values():
                self._start_preload(slot)

    async def shutdown(self) -> None:
        for slot in list(self._slots.values()):
            self._free(slot)
        self._slots.clear()

    async def health(self) -> HealthResponse:
        if not self._slots:
            return HealthResponse(status=HealthStatus.OK, message="no models registered")
        problems, states = [], []
        for rid, slot in self._slots.items():
            if slot.loaded is not None:
                states.append(f"{rid}: loaded ({slot.loaded.architecture} on {slot.loaded.device})")
                continue
            problem = slot.error.message if slot.error else await asyncio.to_thread(self._precheck, rid)
            if problem:
                problems.append(problem)
            else:
                states.append(f"{rid}: not loaded yet")
        if problems:
            return HealthResponse(status=HealthStatus.ERROR, message=" | ".join(problems))
        return HealthResponse(status=HealthStatus.OK, message="; ".join(states))

    # -- models ---------------------------------------------------------------------------------------

    async def list_models(self) -> list[Model] | None:
        return None  # models come from the distribution

    async def register_model(self, model: Model) -> Model:
        """Remember the model (cheap); weights load on first use, or now in the background with preload."""
        if model.model_type != ModelType.llm:
            raise BadRequestError(
                f"{PROVIDER_TYPE} serves LLMs; model '{model.identifier}' has model_type "
                f"'{model.model_type.value}'. Register embedding models with inline::sentence-transformers.",
                param="model_type",
            )
        slot = self._slots.get(model.provider_resource_id)
        if slot is None:
            slot = self._slots[model.provider_resource_id] = _Slot(model.provider_resource_id)
        slot.identifiers.add(model.identifier)
        if self.config.preload and self._initialized:
            self._start_preload(slot)
        return model

    async def unregister_model(self, model: Model) -> None:
        slot = self._slots.get(model.provider_resource_id)
        if slot is None:
            return
        slot.identifiers.discard(model.identifier)
        if not slot.identifiers:
            del self._slots[model.provider_resource_id]
            self._free(slot)

    def _free(self, slot: _Slot) -> None:
        """Drop the weights after in-flight requests finish (FIFO on the slot's worker)."""

        def release() -> None:
            cuda = slot.loaded is not None and str(slot.loaded.device).startswith("cuda")
            slot.loaded = None
            gc.collect()
            if cuda:
                import torch

                torch.cuda.empty_cache()

        with contextlib.suppress(RuntimeError):  # executor already shut down
            slot.executor.submit(release)
        slot.executor.shutdown(wait=False)

    def _start_preload(self, slot: _Slot) -> None:
        if slot.loaded is not None:
            return
        fut = slot.executor.submit(self._load_sync, slot, time.monotonic())

        def report(f: Future) -> None:
            error = None if f.cancelled() else f.exception()
            if error is not None:
                logger.warning("preload of %s failed: %s", slot.resource_id, getattr(error, "message", error))

        fut.add_done_callback(report)

    # -- loading --------------------------------------------------------------------------------------

    async def _ensure_loaded(self, slot: _Slot) -> _Loaded:
        if slot.loaded is not None:
            return slot.loaded
        try:
            fut = slot.executor.submit(self._load_sync, slot, time.monotonic())
        except RuntimeError as e:  # executor shut down: unregistered meanwhile
            raise ServiceUnavailableError(f"model '{slot.resource_id}' was unloaded; retry.") from e
        return await asyncio.wrap_future(fut)

    def _load_sync(self, slot: _Slot, requested_at: float) -> _Loaded:
        """Runs on the slot's single worker, so loads never overlap and happen once."""
        if slot.loaded is not None:
            return slot.loaded
        # Requests that queued behind a failed attempt share its error instead of each retrying
        # a slow load; a later request retries (the operator may have fixed the path).
        if slot.error is not None and slot.error_at >= requested_at:
            raise slot.error
        try:
            slot.loaded = self._load(slot.resource_id)
            slot.error = None
            return slot.loaded
        except ServiceUnavailableError as e:
            slot.error, slot.error_at = e, time.monotonic()
            raise

    def _resolve_source(self, rid: str) -> tuple[str, bool]:
        """(where to load from, whether it is a local directory): a checkpoint directory or a hub id."""
        path = Path(os.path.expanduser(rid))
        if path.exists():
            if not path.is_dir():
                raise self._unavailable(rid, f"the local path {path}", "it is a file, not a model directory")
            if not (path / "config.json").is_file():
                raise self._unavailable(
                    rid,
                    f"the local directory {path}",
                    "it has no config.json, so it is not a Hugging Face checkpoint (Meta's original "
                    "consolidated.pth format must be the HF-format download instead)",
                )
            return str(path), True
        if path.is_absolute() or rid.startswith((".", "~")) or rid.count("/") > 1:
            raise self._unavailable(rid, f"the local directory {path}", "it does not exist")
        return rid, False

    def _precheck(self, rid: str) -> str | None:
        """Cheap health probe (no weights read): is the checkpoint where loading will look?"""
        try:
            _, local = self._resolve_source(rid)
        except ServiceUnavailableError as e:
            return e.message
        if local or self.config.allow_download:
            return None
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(
                rid, "config.json", cache_dir=self.config.cache_dir, revision=self.config.revision
            )
        except Exception as e:  # noqa: BLE001 - malformed ids etc.
            return self._unavailable(rid, f"the Hugging Face cache for '{rid}'", str(e)).message
        if not isinstance(cached, str):
            return self._unavailable(rid, f"the Hugging Face cache for '{rid}'", "it is not in the cache").message
        return None

    def _unavailable(self, rid: str, tried: str, reason: str) -> ServiceUnavailableError:
        hub_id = rid if rid.count("/") == 1 and not rid.startswith((".", "/", "~")) else EXAMPLE_HUB_ID
        fix = (
            f"download it with `huggingface-cli download {hub_id} --local-dir DIR` on a machine with access, copy DIR "
            "here and set VISTACK_VISION_MODEL=DIR (or the model's provider_model_id)"
        )
        if not self.config.allow_download:
            fix += "; or set allow_download: true in the transformers provider config if this host may reach the Hub"
        else:
            fix += "; for gated models (meta-llama/*) set HF_TOKEN to a token with access"
        return ServiceUnavailableError(
            f"Model '{rid}' is not available ({PROVIDER_TYPE}): tried {tried}; reason: {reason.rstrip('. ')}. "
            f"Fix: {fix}.",
            code="model_unavailable",
        )

    def _misconfigured(self, rid: str, reason: str) -> ServiceUnavailableError:
        """The weights may be fine but this provider's config cannot work on this host."""
        return ServiceUnavailableError(
            f"Model '{rid}' cannot be loaded ({PROVIDER_TYPE}): {reason}.", code="provider_misconfigured"
        )

    def _load(self, rid: str) -> _Loaded:
        started = time.perf_counter()
        source, local = self._resolve_source(rid)
        tried = (
            f"the local directory {source}"
            if local
            else (f"the Hugging Face {'Hub' if self.config.allow_download else 'cache (offline)'} for '{rid}'")
        )
        try:
            import torch
            import transformers
        except ImportError as e:
            raise self._misconfigured(rid, f"{e}; install with pip install torch transformers") from e
        cfg = self.config
        common: dict[str, Any] = {
            "local_files_only": not cfg.allow_download,
            "trust_remote_code": cfg.trust_remote_code,
        }
        if cfg.cache_dir:
            common["cache_dir"] = cfg.cache_dir
        if cfg.revision:
            common["revision"] = cfg.revision
        try:
            hf_config = transformers.AutoConfig.from_pretrained(source, **common)
        except Exception as e:  # OSError, ValueError, gated-repo errors: all mean "not usable"
            reason = _first_line(e)
            if not local and not cfg.allow_download and isinstance(e, OSError):
                from huggingface_hub import constants

                reason = f"it is not in the cache at {cfg.cache_dir or constants.HF_HUB_CACHE} and downloads are off"
            raise self._unavailable(rid, tried, reason) from e

        device = self._device(rid, torch)
        dtype = self._dtype(torch, device)
        load: dict[str, Any] = dict(common)
        load["dtype" if _transformers_at_least("4.56") else "torch_dtype"] = dtype
        if cfg.attn_implementation:
            load["attn_implementation"] = cfg.attn_implementation
        if cfg.device_map:
            load["device_map"] = cfg.device_map
        elif device == "cuda" and importlib.util.find_spec("accelerate") is not None:
            load["device_map"] = "auto"  # shard over all visible GPUs; without accelerate: .to("cuda") below
        if cfg.quantization != "none":
            load["quantization_config"] = self._quantization(rid, device, dtype)
        if device == "cpu" and cfg.cpu_threads:
            torch.set_num_threads(cfg.cpu_threads)

        is_mllama = getattr(hf_config, "model_type", None) == "mllama"
        logger.info("loading %s (%s) from %s on %s as %s", rid, hf_config.model_type, source, device, dtype)
        try:
            if is_mllama:
                processor = transformers.AutoProcessor.from_pretrained(source, **common)
                tokenizer = processor.tokenizer
                model = transformers.MllamaForConditionalGeneration.from_pretrained(source, **load)
            else:
                processor = None
                tokenizer = transformers.AutoTokenizer.from_pretrained(source, **common)
                model = transformers.AutoModelForCausalLM.from_pretrained(source, **load)
            if "device_map" not in load and device != "cpu":
                model = model.to(device)
            model.eval()
        except torch.OutOfMemoryError as e:
            _empty_cache(torch)
            raise self._unavailable(
                rid,
                tried,
                f"out of memory loading on {device} ({_first_line(e)}); try quantization: 4bit, "
                "a smaller model, or more GPUs",
            ) from e
        except Exception as e:  # any failure to load is "not available", with its reason
            raise self._unavailable(rid, tried, f"{type(e).__name__}: {_first_line(e)}") from e

        text_cfg = hf_config.get_text_config() if hasattr(hf_config, "get_text_config") else hf_config
        context = cfg.max_model_len or getattr(text_cfg, "max_position_embeddings", None)
        eos = model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(tokenizer.eos_token_id)
        pad = model.generation_config.pad_token_id
        if pad is None:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids[0] if eos_ids else None)
        loaded = _Loaded(
            model=model,
            tokenizer=tokenizer,
            processor=processor,
            architecture=type(model).__name__,
            device=model.device,
            context_length=context,
            eos_ids=eos_ids,
            pad_id=pad,
        )
        logger.info("loaded %s in %.1fs", rid, time.perf_counter() - started)
        return loaded

    def _device(self, rid: str, torch: Any) -> str:
        want = self.config.device
        if want == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if want == "cuda" and not torch.cuda.is_available():
            raise self._misconfigured(
                rid,
                f"device is cuda but no CUDA GPU is visible (torch {torch.__version__}, CUDA build "
                f"{torch.version.cuda}); set device: auto or cpu, or install a CUDA build of torch",
            )
        if want == "mps" and not torch.backends.mps.is_available():
            raise self._misconfigured(rid, "device is mps but MPS is not available; set device: auto or cpu")
        return want

    def _dtype(self, torch: Any, device: str) -> Any:
        if self.config.dtype != "auto":
            return getattr(torch, self.config.dtype)
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device == "mps" else torch.float32

    def _quantization(self, rid: str, device: str, dtype: Any) -> Any:
        q = self.config.quantization
        if device != "cuda":
            raise self._misconfigured(
                rid,
                f"quantization: {q} needs a CUDA GPU (bitsandbytes), but the device is {device}; "
                "set quantization: none",
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as e:
            raise self._misconfigured(
                rid, f"quantization: {q} needs bitsandbytes, which is not installed; pip install bitsandbytes"
            ) from e
        from transformers import BitsAndBytesConfig

        if q == "8bit":
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
        )

    # -- requests -------------------------------------------------------------------------------------

    def _slot(self, model: str) -> _Slot:
        slot = self._slots.get(model)
        if slot is None:
            raise ModelNotFoundError(model, sorted(i for s in self._slots.values() for i in s.identifiers))
        return slot

    async def chat_completion(
        self, request: ChatCompletionRequest
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        """Chat through the model's chat template; a stream is returned only once nothing can fail with 4xx/503.

        Sampling parameters the request leaves unset fall back to the checkpoint's
        ``generation_config.json`` (as vLLM does): Llama 3.2 Vision Instruct samples at 0.6 / 0.9.
        ``temperature: 0`` is greedy. vLLM-style extras are honoured: ``top_k``, ``min_p``,
        ``repetition_penalty``, ``min_tokens``, ``ignore_eos``. Accepted and ignored:
        ``frequency_penalty``, ``presence_penalty``, ``logit_bias``, ``parallel_tool_calls``, ``user``.
        """
        slot = self._slot(request.model)
        tools = _active_tools(request)
        if request.n not in (None, 1):
            raise BadRequestError(f"{PROVIDER_TYPE} generates one choice per request; got n={request.n}.", param="n")
        if request.logprobs:
            raise BadRequestError(f"{PROVIDER_TYPE} does not return logprobs.", param="logprobs")
        fmt = (request.response_format or {}).get("type", "text")
        if fmt != "text":
            raise BadRequestError(
                f"response_format '{fmt}' is not supported by {PROVIDER_TYPE} (no constrained decoding); "
                "describe the JSON in the prompt, or serve the model with remote::vllm for guided decoding.",
                param="response_format",
            )
        images = await asyncio.to_thread(self._decode_images, request.messages)
        loaded = await self._ensure_loaded(slot)
        prepared = await asyncio.to_thread(self._prepare_chat, loaded, request, images, tools)
        sampling = self._sampling(loaded, request, request.max_new_tokens, prepared.prompt_tokens)
        if request.stream:
            self._check_capacity(slot)  # a full queue is a 503 now, not an error in the middle of a stream
            return self._stream_chat(slot, loaded, prepared, sampling, request, tools)
        outcome = await self._generate(slot, loaded, prepared, sampling)
        tool_calls = None
        if tools and outcome.finish_reason != "length":
            tool_calls = parse_tool_calls(outcome.text, _tool_names(tools))
        message = AssistantMessage(content=None if tool_calls else outcome.text, tool_calls=tool_calls)
        return ChatCompletion(
            model=request.model,
            choices=[ChatChoice(message=message, finish_reason="tool_calls" if tool_calls else outcome.finish_reason)],
            usage=_usage(prepared.prompt_tokens, outcome.completion_tokens),
        )

    async def completion(self, request: CompletionRequest) -> Completion | AsyncIterator[Completion]:
        slot = self._slot(request.model)
        for name, value in (("n", request.n), ("best_of", request.best_of)):
            if value not in (None, 1):
                raise BadRequestError(
                    f"{PROVIDER_TYPE} generates one choice per request; got {name}={value}.", param=name
                )
        if request.logprobs:
            raise BadRequestError(f"{PROVIDER_TYPE} does not return logprobs.", param="logprobs")
        if request.suffix:
            raise BadRequestError(f"{PROVIDER_TYPE} does not support suffix (fill-in-the-middle).", param="suffix")
        loaded = await self._ensure_loaded(slot)
        prepared, prompt_text = await asyncio.to_thread(self._prepare_completion, loaded, request)
        sampling = self._sampling(loaded, request, request.max_tokens, prepared.prompt_tokens)
        echo = prompt_text if request.echo else ""
        if request.stream:
            self._check_capacity(slot)
            return self._stream_completion(slot, loaded, prepared, sampling, request, echo)
        outcome = await self._generate(slot, loaded, prepared, sampling)
        return Completion(
            model=request.model,
            choices=[CompletionChoice(text=echo + outcome.text, finish_reason=outcome.finish_reason)],
            usage=_usage(prepared.prompt_tokens, outcome.completion_tokens),
        )

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        raise BadRequestError(
            f"model '{request.model}' is served by {PROVIDER_TYPE}, which serves LLMs, not embeddings; "
            "use an embedding model (inline::sentence-transformers).",
            param="model",
        )

    # -- request preparation --------------------------------------------------------------------------

    def _decode_images(self, messages: list[ChatMessage]) -> list[Any]:
        urls = [u for m in messages for u in m.images()]
        cfg = self.config
        if len(urls) > cfg.max_images_per_request:
            raise BadRequestError(
                f"{len(urls)} images in one request; the limit is {cfg.max_images_per_request} (max_images_per_request).",
                param="messages",
            )
        if len(urls) > 1 and cfg.multi_image == "reject":
            raise BadRequestError(
                f"Llama 3.2 Vision attends to one image per request; got {len(urls)} images in the conversation. "
                "Send one image (e.g. the best-matching page), or have the operator set multi_image: stitch "
                "(compose them into one 1120x1120 grid) or multi_image: first in the inline::transformers config.",
                code="too_many_images",
                param="messages",
            )
        if cfg.multi_image == "first":
            urls = urls[:1]
        images = [
            decode_image_url(u, index=i, max_bytes=cfg.max_image_bytes, max_pixels=cfg.max_image_pixels)
            for i, u in enumerate(urls, start=1)
        ]
        if len(images) > 1:  # stitch
            images = [stitch_images(images, cfg.stitch_max_side)]
        return images

    def _conversation(self, loaded: _Loaded, request: ChatCompletionRequest, images: list[Any]) -> list[dict]:
        """OpenAI messages → the template's format: text parts plus {"type": "image"} placeholders."""
        remaining = list(images)  # one image left after the multi_image policy; placed at the first image part
        conv: list[dict[str, Any]] = []
        for m in request.messages:
            role = "system" if m.role == "developer" else m.role
            if any(isinstance(p, FileContentPart) for p in (m.content if isinstance(m.content, list) else [])):
                raise BadRequestError(
                    "file content parts are not supported in chat; upload the file and use file_search, "
                    "or send page images as image_url parts.",
                    param="messages",
                )
            if m.images() and not loaded.is_vision:
                raise BadRequestError(
                    f"model '{request.model}' ({loaded.architecture}) is text-only and cannot read images; "
                    "use a vision model such as Llama 3.2 Vision.",
                    param="messages",
                )
            if role == "user" and isinstance(m.content, list) and loaded.is_vision:
                parts: list[dict[str, Any]] = []
                for p in m.content:
                    if isinstance(p, TextContentPart):
                        parts.append({"type": "text", "text": p.text})
                    elif isinstance(p, ImageContentPart) and remaining:
                        parts.append({"type": "image", "image": remaining.pop(0)})
                conv.append({"role": role, "content": parts})
            elif role == "assistant" and m.tool_calls:
                msg: dict[str, Any] = {"role": "assistant", "content": m.text() or None}
                msg["tool_calls"] = [
                    {"id": tc.id, "type": "function", "function": {"name": tc.function.name, "arguments": _args(tc)}}
                    for tc in m.tool_calls
                ]
                conv.append(msg)
            elif role == "tool":
                conv.append({"role": "tool", "content": m.text(), "tool_call_id": m.tool_call_id})
            else:
                conv.append({"role": role, "content": m.text()})
        if loaded.is_vision:
            token = getattr(loaded.processor, "image_token", "<|image|>")
            if any(token in (p.get("text") or "") for msg in conv for p in _parts(msg)):
                raise BadRequestError(f"message text may not contain the reserved token {token}.", param="messages")
        return conv

    def _prepare_chat(
        self, loaded: _Loaded, request: ChatCompletionRequest, images: list[Any], tools: list[dict] | None
    ) -> _Prepared:
        from jinja2.exceptions import TemplateError

        target = loaded.processor or loaded.tokenizer
        if not getattr(target, "chat_template", None) and not getattr(loaded.tokenizer, "chat_template", None):
            raise BadRequestError(
                f"model '{request.model}' has no chat template; use /v1/completions with a raw prompt.", param="model"
            )
        conv = self._conversation(loaded, request, images)
        try:
            try:
                inputs = self._apply_template(loaded, conv, tools)
            except TemplateError:
                has_system = any(m["role"] == "system" for m in conv)
                if not (images and has_system and self.config.system_with_images == "merge"):
                    raise
                inputs = self._apply_template(loaded, _merge_system(conv), tools)
        except TemplateError as e:
            raise BadRequestError(
                f"the chat template of model '{request.model}' rejected the conversation: {e}", param="messages"
            ) from e
        except ValueError as e:
            if images and "image" in str(e):
                raise BadRequestError(
                    f"the prompt and the images do not line up for model '{request.model}': {e}. Llama 3.2 Vision's "
                    "template turns the first user message into plain text when tools are given, so put the image "
                    "in a later user message or send no tools.",
                    param="messages",
                ) from e
            raise BadRequestError(f"could not build the prompt for model '{request.model}': {e}") from e
        inputs = dict(inputs)
        inputs.pop("token_type_ids", None)  # some tokenizers return it; decoder-only generate() rejects it
        return _Prepared(inputs=inputs, prompt_tokens=int(inputs["input_ids"].shape[1]))

    def _apply_template(self, loaded: _Loaded, conv: list[dict], tools: list[dict] | None) -> Any:
        target = loaded.processor or loaded.tokenizer
        kwargs: dict[str, Any] = {
            "add_generation_prompt": True,
            "tokenize": True,
            "return_dict": True,
            "return_tensors": "pt",
        }
        if tools:
            kwargs["tools"] = tools
        if self.config.sanitize_control_tokens and self._supports_sanitize(target):
            try:
                return target.apply_chat_template(conv, sanitize_control_tokens=True, **kwargs)
            except NotImplementedError:  # template writes no special tokens: nothing to protect
                pass
        return target.apply_chat_template(conv, **kwargs)

    def _supports_sanitize(self, target: Any) -> bool:
        kind = type(target)
        if kind not in self._sanitize_supported:
            import inspect

            params = inspect.signature(target.apply_chat_template).parameters
            self._sanitize_supported[kind] = "sanitize_control_tokens" in params
        return self._sanitize_supported[kind]

    def _prepare_completion(self, loaded: _Loaded, request: CompletionRequest) -> tuple[_Prepared, str]:
        import torch

        tok = loaded.tokenizer
        prompt = request.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
            if len(prompt) != 1:
                raise BadRequestError(
                    f"{PROVIDER_TYPE} takes one prompt per request; got {len(prompt)}.", param="prompt"
                )
            prompt = prompt[0]
        if isinstance(prompt, str):
            add_special = not (tok.bos_token and prompt.startswith(tok.bos_token))
            ids = tok(prompt, add_special_tokens=add_special)["input_ids"]
            text = prompt
        else:
            ids = list(prompt)
            vocab = len(tok)
            if any(not isinstance(i, int) or i < 0 or i >= vocab for i in ids):
                raise BadRequestError(f"prompt token ids must be integers in [0, {vocab}).", param="prompt")
            text = tok.decode(ids)
        if not ids:
            raise BadRequestError("the prompt is empty.", param="prompt")
        if loaded.is_vision:
            image_id = getattr(loaded.processor, "image_token_id", None)
            if image_id is not None and image_id in ids:
                raise BadRequestError(
                    "completions take no images; use /v1/chat/completions with an image_url part.", param="prompt"
                )
        input_ids = torch.tensor([ids], dtype=torch.long)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        return _Prepared(inputs=inputs, prompt_tokens=len(ids)), text

    def _sampling(
        self,
        loaded: _Loaded,
        request: ChatCompletionRequest | CompletionRequest,
        requested: int | None,
        prompt_tokens: int,
    ) -> _Sampling:
        cfg = self.config
        if requested and cfg.max_tokens_limit and requested > cfg.max_tokens_limit:
            raise BadRequestError(
                f"max_tokens={requested} exceeds this server's limit of {cfg.max_tokens_limit} (max_tokens_limit).",
                param="max_tokens",
            )
        ctx = loaded.context_length
        if ctx:
            if prompt_tokens >= ctx:
                raise BadRequestError(
                    f"This model's maximum context length is {ctx} tokens, but the prompt has {prompt_tokens} tokens.",
                    code="context_length_exceeded",
                    param="messages",
                )
            if requested and prompt_tokens + requested > ctx:
                raise BadRequestError(
                    f"This model's maximum context length is {ctx} tokens. However, you requested "
                    f"{prompt_tokens + requested} tokens ({prompt_tokens} in the prompt, {requested} for the completion).",
                    code="context_length_exceeded",
                    param="max_tokens",
                )
        max_new = requested or min(cfg.default_max_tokens, (ctx - prompt_tokens) if ctx else cfg.default_max_tokens)
        return _Sampling(
            max_new_tokens=max_new,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop=request.stop_sequences,
            extra=_extra_sampling(request.model_extra or {}),
        )

    # -- generation -----------------------------------------------------------------------------------

    def _check_capacity(self, slot: _Slot) -> None:
        if slot.pending >= self.config.max_queued_requests:
            raise ServiceUnavailableError(
                f"model '{slot.resource_id}' is busy: {slot.pending} requests are running or waiting "
                f"(max_queued_requests={self.config.max_queued_requests}); retry later.",
                code="model_busy",
            )

    def _submit(self, slot: _Slot, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue ``fn`` on the model's single worker: generate() calls on one model never interleave."""
        with slot.lock:
            self._check_capacity(slot)
            slot.pending += 1

        def done(_: Future | None) -> None:
            with slot.lock:
                slot.pending -= 1

        try:
            fut = slot.executor.submit(fn, *args)
        except RuntimeError as e:  # executor shut down: the model was unregistered meanwhile
            done(None)
            raise ServiceUnavailableError(f"model '{slot.resource_id}' was unloaded; retry.") from e
        fut.add_done_callback(done)
        return fut

    async def _generate(self, slot: _Slot, loaded: _Loaded, prepared: _Prepared, sampling: _Sampling) -> _Outcome:
        cancel = threading.Event()
        fut = self._submit(slot, self._generate_sync, slot, loaded, prepared, sampling, cancel, None)
        try:
            outcome: _Outcome = await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            cancel.set()  # client went away: stop spending compute on it
            raise
        cut = _first_stop(outcome.text, sampling.stop)
        if cut is not None:
            outcome.text, outcome.finish_reason = outcome.text[:cut], "stop"
        return outcome

    def _generate_sync(
        self,
        slot: _Slot,
        loaded: _Loaded,
        prepared: _Prepared,
        sampling: _Sampling,
        cancel: threading.Event,
        streamer: Any | None,
    ) -> _Outcome:
        import torch

        try:
            if cancel.is_set():
                return _Outcome(finish_reason="stop")
            model, tok = loaded.model, loaded.tokenizer
            gen_config = self._generation_config(loaded, sampling)
            inputs = {k: (v.to(loaded.device) if hasattr(v, "to") else v) for k, v in prepared.inputs.items()}
            prompt_len = int(inputs["input_ids"].shape[1])
            criteria = _stopping_criteria(tok, prompt_len, sampling.stop, cancel)
            rng = _RNG_LOCK if gen_config.do_sample else contextlib.nullcontext()
            with rng:
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                output = model.generate(
                    **inputs, generation_config=gen_config, stopping_criteria=criteria, streamer=streamer
                )
            new_ids = output[0, prompt_len:].tolist()
            hit_eos = bool(new_ids) and new_ids[-1] in loaded.eos_ids
            finish: FinishReason = "length" if len(new_ids) >= sampling.max_new_tokens and not hit_eos else "stop"
            text = "" if streamer is not None else tok.decode(new_ids, skip_special_tokens=True)
            return _Outcome(text=text, completion_tokens=len(new_ids), finish_reason=finish)
        except torch.OutOfMemoryError as e:
            _empty_cache(torch)
            raise ServiceUnavailableError(
                f"out of memory while generating with model '{slot.resource_id}' ({_first_line(e)}); "
                "send a smaller image or fewer max_tokens, or use quantization: 4bit.",
                code="out_of_memory",
            ) from e

    def _generation_config(self, loaded: _Loaded, s: _Sampling) -> Any:
        gc_ = copy.deepcopy(loaded.model.generation_config)
        gc_.max_new_tokens = s.max_new_tokens
        gc_.max_length = None
        if s.temperature is not None and s.temperature == 0:
            # Neutral values, not None: generate() fills None from the checkpoint's sampling defaults.
            gc_.do_sample, gc_.temperature, gc_.top_p, gc_.top_k = False, 1.0, 1.0, 50
        elif s.temperature is not None:
            gc_.do_sample, gc_.temperature = True, s.temperature
        if s.top_p is not None and gc_.do_sample:
            gc_.top_p = s.top_p
        extra = dict(s.extra)
        if extra.pop("ignore_eos", False):  # EOS is masked until max_new_tokens (None would fall back to the default)
            extra["min_new_tokens"] = s.max_new_tokens
        for key, value in extra.items():
            setattr(gc_, key, value)
        if gc_.pad_token_id is None:
            gc_.pad_token_id = loaded.pad_id
        return gc_

    async def _stream_text(
        self, slot: _Slot, loaded: _Loaded, prepared: _Prepared, sampling: _Sampling, outcome: _Outcome
    ) -> AsyncGenerator[str, None]:
        """Text deltas, cut at stop strings; fills ``outcome`` when done. Closing it stops generation."""
        from transformers import AsyncTextIteratorStreamer

        streamer = AsyncTextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()

        def run() -> _Outcome:
            try:
                return self._generate_sync(slot, loaded, prepared, sampling, cancel, streamer)
            except BaseException:
                with contextlib.suppress(RuntimeError):  # the reader's loop may be gone already
                    streamer.on_finalized_text("", stream_end=True)  # unblock the reader; the error follows
                raise

        fut = self._submit(slot, run)
        scanner = _StopScanner(sampling.stop)
        stopped = False
        try:
            async for piece in streamer:
                out, stopped = scanner.feed(piece)
                if out:
                    yield out
                if stopped:
                    cancel.set()
                    break
            if not stopped and (tail := scanner.flush()):
                yield tail
            result: _Outcome = await asyncio.wrap_future(fut)
            outcome.completion_tokens = result.completion_tokens
            outcome.finish_reason = "stop" if stopped else result.finish_reason
        finally:
            cancel.set()  # consumer stopped early (disconnect) or we hit a stop string
            fut.cancel()  # still queued: never starts

    async def _stream_chat(
        self,
        slot: _Slot,
        loaded: _Loaded,
        prepared: _Prepared,
        sampling: _Sampling,
        request: ChatCompletionRequest,
        tools: list[dict[str, Any]] | None,
    ) -> AsyncIterator[ChatCompletionChunk]:
        cid, created = new_id("chatcmpl"), now()

        def chunk(delta: ChoiceDelta, finish: FinishReason | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=cid, created=created, model=request.model, choices=[ChunkChoice(delta=delta, finish_reason=finish)]
            )

        yield chunk(ChoiceDelta(role="assistant", content=""))
        outcome = _Outcome()
        # With tools, text that may be a JSON tool call is held back until it is complete.
        held, holding = "", bool(tools)
        texts = self._stream_text(slot, loaded, prepared, sampling, outcome)
        try:
            async for piece in texts:
                if holding:
                    held += piece
                    lead = held.lstrip()
                    if not lead or lead[0] in "{[`":
                        continue
                    piece, held, holding = held, "", False
                yield chunk(ChoiceDelta(content=piece))
        finally:
            await texts.aclose()
        finish = outcome.finish_reason
        if held:
            calls = parse_tool_calls(held, _tool_names(tools or [])) if finish != "length" else None
            if calls:
                finish = "tool_calls"
                yield chunk(
                    ChoiceDelta(
                        tool_calls=[{"index": i, **c.model_dump(exclude_none=True)} for i, c in enumerate(calls)]
                    )
                )
            else:
                yield chunk(ChoiceDelta(content=held))
        yield chunk(ChoiceDelta(), finish)
        if request.include_usage_in_stream:
            yield ChatCompletionChunk(
                id=cid,
                created=created,
                model=request.model,
                choices=[],
                usage=_usage(prepared.prompt_tokens, outcome.completion_tokens),
            )

    async def _stream_completion(
        self,
        slot: _Slot,
        loaded: _Loaded,
        prepared: _Prepared,
        sampling: _Sampling,
        request: CompletionRequest,
        echo: str,
    ) -> AsyncIterator[Completion]:
        cid, created = new_id("cmpl"), now()

        def chunk(text: str, finish: FinishReason | None = None) -> Completion:
            return Completion(
                id=cid,
                created=created,
                model=request.model,
                choices=[CompletionChoice(text=text, finish_reason=finish)],
            )

        if echo:
            yield chunk(echo)
        outcome = _Outcome()
        texts = self._stream_text(slot, loaded, prepared, sampling, outcome)
        try:
            async for piece in texts:
                yield chunk(piece)
        finally:
            await texts.aclose()
        yield chunk("", outcome.finish_reason)
        if request.include_usage_in_stream:
            yield Completion(
                id=cid,
                created=created,
                model=request.model,
                choices=[],
                usage=_usage(prepared.prompt_tokens, outcome.completion_tokens),
            )


# ----- helpers -----------------------------------------------------------------------------------------


def _stopping_criteria(tokenizer: Any, prompt_len: int, stops: list[str], cancel: threading.Event) -> Any:
    """Stop when the request is cancelled (client gone) or a stop string appears in the new text."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    stops = [s for s in stops if s]
    window = max((len(s) for s in stops), default=0) + 8  # tokens: enough to contain any stop string

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = cancel.is_set()
            if not done and stops:
                tail = input_ids[0, max(prompt_len, input_ids.shape[1] - window) :]
                text = tokenizer.decode(tail, skip_special_tokens=True)
                done = any(s in text for s in stops)
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])


_EXTRA_SAMPLING: dict[str, tuple[str, type]] = {
    # vLLM-compatible extra_body knobs → GenerationConfig attributes
    "top_k": ("top_k", int),
    "min_p": ("min_p", float),
    "repetition_penalty": ("repetition_penalty", float),
    "min_tokens": ("min_new_tokens", int),
}


def _extra_sampling(extra: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (attr, typ) in _EXTRA_SAMPLING.items():
        value = extra.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise BadRequestError(f"{key} must be a non-negative number, got {value!r}.", param=key)
        out[attr] = typ(value)
    if extra.get("ignore_eos"):
        out["ignore_eos"] = True
    return out


def _args(tc: ToolCall) -> Any:
    """Tool-call arguments as a dict: templates serialize them with ``tojson``, so a JSON string would be double-encoded."""
    raw = tc.function.arguments or "{}"
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _parts(msg: dict[str, Any]) -> list[dict[str, Any]]:
    content = msg.get("content")
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if isinstance(content, str) else []


def _merge_system(conv: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Move system text into the first user turn, after its leading images (Llama 3.2 Vision's convention)."""
    system = "\n\n".join(m["content"] for m in conv if m["role"] == "system" and m.get("content"))
    rest = [dict(m) for m in conv if m["role"] != "system"]
    for m in rest:
        if m["role"] != "user":
            continue
        if isinstance(m["content"], list):
            parts = list(m["content"])
            at = next((i for i, p in enumerate(parts) if p.get("type") == "text"), len(parts))
            if at < len(parts):
                parts[at] = {"type": "text", "text": f"{system}\n\n{parts[at]['text']}"}
            else:
                parts.append({"type": "text", "text": system})
            m["content"] = parts
        else:
            m["content"] = f"{system}\n\n{m['content'] or ''}"
        break
    return rest


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line[:400]


def _empty_cache(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _transformers_at_least(version: str) -> bool:
    import transformers
    from packaging.version import Version

    return Version(transformers.__version__) >= Version(version)
