"""Loading a checkpoint: where it is, model + tokenizer/processor, device, dtype, quantization.

Every way loading can fail is a 503 that names what was tried, why it failed and how to fix it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vistack.api import ServiceUnavailableError
from vistack.api.errors import first_line
from vistack.torch_threads import pin_threads

from .config import PROVIDER_TYPE, TransformersInferenceConfig

logger = logging.getLogger(__package__)  # the provider's one logger, named as before the package split

EXAMPLE_HUB_ID = "meta-llama/Llama-3.2-11B-Vision-Instruct"


@dataclass
class Loaded:
    """A model in memory with what generation needs to know about it."""

    model: Any
    tokenizer: Any
    processor: Any | None  # set for Mllama: chat template + image processor
    architecture: str
    device: Any
    context_length: int | None
    eos_ids: list[int]
    pad_id: int | None
    token_texts: Any = None  # logprobs.TokenText, made on first use: each token's text and bytes, cached
    grammar_compiler: Any = None  # xgrammar.GrammarCompiler, made on first structured output: goes with the model

    @property
    def is_vision(self) -> bool:
        return self.processor is not None


class ModelLoader:
    """Loads checkpoints as the provider config says; stateless apart from the config."""

    def __init__(self, config: TransformersInferenceConfig) -> None:
        self.config = config

    def resolve_source(self, rid: str) -> tuple[str, bool]:
        """(where to load from, whether it is a local directory): a checkpoint directory or a hub id."""
        path = Path(os.path.expanduser(rid))
        if path.exists():
            if not path.is_dir():
                raise self.unavailable(rid, f"the local path {path}", "it is a file, not a model directory")
            if not (path / "config.json").is_file():
                raise self.unavailable(
                    rid,
                    f"the local directory {path}",
                    "it has no config.json, so it is not a Hugging Face checkpoint (Meta's original "
                    "consolidated.pth format must be the HF-format download instead)",
                )
            return str(path), True
        if path.is_absolute() or rid.startswith((".", "~")) or rid.count("/") > 1:
            raise self.unavailable(rid, f"the local directory {path}", "it does not exist")
        return rid, False

    def precheck(self, rid: str) -> str | None:
        """Cheap health probe (no weights read): is the checkpoint where loading will look?"""
        try:
            _, local = self.resolve_source(rid)
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
            return self.unavailable(rid, f"the Hugging Face cache for '{rid}'", str(e)).message
        if not isinstance(cached, str):
            return self.unavailable(rid, f"the Hugging Face cache for '{rid}'", "it is not in the cache").message
        return None

    def unavailable(self, rid: str, tried: str, reason: str) -> ServiceUnavailableError:
        hub_id = rid if rid.count("/") == 1 and not rid.startswith((".", "/", "~")) else EXAMPLE_HUB_ID
        fix = (
            f"download it with `huggingface-cli download {hub_id} --local-dir DIR` on a machine with access, copy DIR "
            "here and set the model's provider_model_id to DIR (the packaged distributions read it from "
            "VISTACK_VISION_MODEL for the vision model, VISTACK_GUARD_MODEL for Llama Guard)"
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

    def misconfigured(self, rid: str, reason: str) -> ServiceUnavailableError:
        """The weights may be fine but this provider's config cannot work on this host."""
        return ServiceUnavailableError(
            f"Model '{rid}' cannot be loaded ({PROVIDER_TYPE}): {reason}.", code="provider_misconfigured"
        )

    def load(self, rid: str) -> Loaded:
        started = time.perf_counter()
        source, local = self.resolve_source(rid)
        tried = (
            f"the local directory {source}"
            if local
            else (f"the Hugging Face {'Hub' if self.config.allow_download else 'cache (offline)'} for '{rid}'")
        )
        try:
            import torch
            import transformers
        except ImportError as e:
            raise self.misconfigured(rid, f"{e}; install with pip install torch transformers") from e
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
            reason = first_line(e)
            if not local and not cfg.allow_download and isinstance(e, OSError):
                from huggingface_hub import constants

                reason = f"it is not in the cache at {cfg.cache_dir or constants.HF_HUB_CACHE} and downloads are off"
            raise self.unavailable(rid, tried, reason) from e

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
        if device == "cpu":
            pin_threads(torch, cfg.cpu_threads or max(1, (os.cpu_count() or 2) - 1))

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
            empty_cache(torch)
            raise self.unavailable(
                rid,
                tried,
                f"out of memory loading on {device} ({first_line(e)}); try quantization: 4bit, "
                "a smaller model, or more GPUs",
            ) from e
        except Exception as e:  # any failure to load is "not available", with its reason
            raise self.unavailable(rid, tried, f"{type(e).__name__}: {first_line(e)}") from e

        text_cfg = hf_config.get_text_config() if hasattr(hf_config, "get_text_config") else hf_config
        context = cfg.max_model_len or getattr(text_cfg, "max_position_embeddings", None)
        eos = model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(tokenizer.eos_token_id)
        pad = model.generation_config.pad_token_id
        if pad is None:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids[0] if eos_ids else None)
        loaded = Loaded(
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
            raise self.misconfigured(
                rid,
                f"device is cuda but no CUDA GPU is visible (torch {torch.__version__}, CUDA build "
                f"{torch.version.cuda}); set device: auto or cpu, or install a CUDA build of torch",
            )
        if want == "mps" and not torch.backends.mps.is_available():
            raise self.misconfigured(rid, "device is mps but MPS is not available; set device: auto or cpu")
        return want

    def _dtype(self, torch: Any, device: str) -> Any:
        if self.config.dtype != "auto":
            return getattr(torch, self.config.dtype)
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device == "mps" else torch.float32

    def _quantization(self, rid: str, device: str, dtype: Any) -> Any:
        """The bitsandbytes config for ``quantization``; refused with the fix where it cannot work.

        bitsandbytes quantizes on CUDA only, and transformers loads a quantized model through
        accelerate: a CPU/MPS device or a missing package is a clear 503, never a stack trace
        from deep inside ``from_pretrained``.
        """
        q = self.config.quantization
        if device != "cuda":
            raise self.misconfigured(
                rid,
                f"quantization: {q} needs a CUDA GPU (bitsandbytes), but the device is {device}; "
                "set quantization: none",
            )
        missing = []
        for package in ("bitsandbytes", "accelerate"):
            try:
                importlib.import_module(package)
            except ImportError:
                missing.append(package)
        if missing:
            raise self.misconfigured(
                rid,
                f"quantization: {q} needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                f"not installed; pip install {' '.join(missing)} (or pip install 'vistack[gpu]'), "
                "or set quantization: none",
            )
        from transformers import BitsAndBytesConfig

        if q == "8bit":
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True
        )


def empty_cache(torch: Any) -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _transformers_at_least(version: str) -> bool:
    import transformers
    from packaging.version import Version

    return Version(transformers.__version__) >= Version(version)
