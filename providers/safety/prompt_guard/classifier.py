"""Finding, loading and running a Prompt Guard checkpoint (blocking code: the provider calls it from its worker).

Every way a checkpoint can be unusable is a 503 that names the shield's model id,
the place(s) looked in and the fix; scoring is pure torch on token windows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vistack.api import ServiceUnavailableError
from vistack.api.errors import first_line

from .config import DEFAULT_MODEL, MODEL_ENV, PROVIDER_TYPE, GuardType, PromptGuardConfig

logger = logging.getLogger(__package__)

LLAMA_CHECKPOINTS = Path("~/.llama/checkpoints")  # where `llama model download` puts Prompt-Guard-86M
_BENIGN = {"BENIGN", "SAFE", "LABEL_0"}


# ----- where the checkpoint is ---------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where to load a checkpoint from: a local directory, or a hub id (in the cache, or downloadable)."""

    location: str
    local: bool
    tried: str  # for error messages: what was looked at


def unavailable(rid: str, tried: str, reason: str, config: PromptGuardConfig) -> ServiceUnavailableError:
    """The 503 for a checkpoint that cannot be used: model id, what was tried, why, and how to fix it."""
    hub_id = rid if rid.count("/") == 1 and not rid.startswith((".", "/", "~")) else DEFAULT_MODEL
    fix = (
        f"download it with `huggingface-cli download {hub_id} --local-dir DIR` on a machine with access, copy DIR "
        f"here and set the shield's provider_shield_id to DIR (distributions read {MODEL_ENV}=DIR)"
    )
    if not config.allow_download:
        fix += "; or set allow_download: true in the prompt-guard provider config if this host may reach the Hub"
    else:
        fix += "; Prompt Guard is gated: set HF_TOKEN to a token that accepted the Llama license"
    return ServiceUnavailableError(
        f"Prompt Guard model '{rid}' is not available ({PROVIDER_TYPE}): tried {tried}; reason: "
        f"{reason.rstrip('. ')}. Fix: {fix}.",
        code="model_unavailable",
    )


def _checkpoint_dir(rid: str, path: Path, config: PromptGuardConfig) -> Source:
    if not path.is_dir():
        raise unavailable(rid, f"the local path {path}", "it is a file, not a model directory", config)
    if not (path / "config.json").is_file():
        raise unavailable(
            rid, f"the local directory {path}", "it has no config.json, so it is not a Hugging Face checkpoint", config
        )
    return Source(str(path), True, f"the local directory {path}")


def resolve(rid: str, config: PromptGuardConfig) -> Source:
    """Where ``rid`` (a shield's ``provider_resource_id``) loads from; no weights are read.

    A path that exists is used as is; something that looks like a path and does not exist is a 503.
    A bare name such as Llama Stack's ``Prompt-Guard-86M`` is also looked for under
    ``~/.llama/checkpoints`` and as ``meta-llama/<name>``. Hub ids must be in the HF cache
    unless ``allow_download`` is on.
    """
    path = Path(os.path.expanduser(rid))
    if path.exists():
        return _checkpoint_dir(rid, path, config)
    if path.is_absolute() or rid.startswith((".", "~")) or rid.count("/") > 1:
        raise unavailable(rid, f"the local directory {path}", "it does not exist", config)
    tried = []
    hub_id = rid
    if "/" not in rid:
        llama_dir = LLAMA_CHECKPOINTS.expanduser() / rid
        if llama_dir.exists():
            return _checkpoint_dir(rid, llama_dir, config)
        tried.append(f"the local directories {path.resolve()} and {llama_dir}")
        hub_id = f"meta-llama/{rid}"
    if config.allow_download:
        return Source(hub_id, False, f"the Hugging Face Hub for '{hub_id}'")
    from huggingface_hub import constants, try_to_load_from_cache

    cache = config.cache_dir or constants.HF_HUB_CACHE
    tried.append(f"the Hugging Face cache at {cache} for '{hub_id}'")
    try:
        cached = try_to_load_from_cache(hub_id, "config.json", cache_dir=config.cache_dir)
    except Exception as e:  # noqa: BLE001 - a malformed repo id is "not available", with its reason
        raise unavailable(rid, " and ".join(tried), first_line(e), config) from e
    if not isinstance(cached, str):
        raise unavailable(rid, " and ".join(tried), "it is not there and downloads are off", config)
    return Source(hub_id, False, " and ".join(tried))


def precheck(rid: str, config: PromptGuardConfig) -> str | None:
    """Cheap health probe: ``None`` when the checkpoint is where loading will look, else the 503's message."""
    try:
        resolve(rid, config)
    except ServiceUnavailableError as e:
        return e.message
    return None


# ----- which probabilities mean "malicious" --------------------------------------------------------


def malicious_indices(id2label: dict[int, str], guard_type: GuardType) -> tuple[int, ...]:
    """The label ids whose probabilities add up to the score.

    Two labels (Prompt Guard 2: ``LABEL_0`` benign, ``LABEL_1`` malicious): the non-benign one,
    whatever ``guard_type`` says. Three labels (Prompt Guard v1: BENIGN, INJECTION, JAILBREAK,
    also when named ``LABEL_0..2``): injection = INJECTION + JAILBREAK (anything not benign),
    jailbreak = JAILBREAK alone, as Llama Stack scores them.
    """
    names = {i: str(name).upper() for i, name in id2label.items()}
    if len(names) == 2:
        benign = [i for i, n in names.items() if n in _BENIGN]
        return tuple(i for i in sorted(names) if i not in benign) if len(benign) == 1 else (1,)
    if len(names) == 3:
        by_name = {n: i for i, n in names.items()}
        jailbreak = by_name.get("JAILBREAK", 2)
        injection = by_name.get("INJECTION", 1)
        return (jailbreak,) if guard_type == "jailbreak" else tuple(sorted({injection, jailbreak}))
    raise ValueError(
        f"expected a Prompt Guard classifier with 2 labels (v2) or 3 (v1: BENIGN, INJECTION, JAILBREAK), "
        f"got {len(names)}: {sorted(names.values())}"
    )


# ----- windows -------------------------------------------------------------------------------------


@dataclass
class Windows:
    """Token windows of a batch of texts: ``owners[k]`` is the index of the text window ``k`` came from."""

    input_ids: list[list[int]]
    owners: list[int]


def encode_windows(tokenizer: Any, texts: Sequence[str], max_length: int, stride: int) -> Windows:
    """Split each text into windows of at most ``max_length`` tokens (special tokens included).

    Consecutive windows of one text share ``stride`` tokens, and the last window ends at the
    text's last token, so an injection appended to a long chunk lands whole in some window.
    This is the fast tokenizer's own overflow mechanism (one Rust call for the whole batch);
    ``stride`` is clamped below the window's content size.
    """
    if not texts:
        return Windows([], [])
    content = max_length - tokenizer.num_special_tokens_to_add()
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        stride=max(0, min(stride, content - 1)),
        return_overflowing_tokens=True,
        return_attention_mask=False,
    )
    owners = enc.get("overflow_to_sample_mapping")
    if owners is None:  # a single text without overflow may come back without the mapping
        owners = [0] * len(enc["input_ids"])
    return Windows([list(ids) for ids in enc["input_ids"]], [int(o) for o in owners])


# ----- the loaded classifier -----------------------------------------------------------------------


@dataclass
class PromptGuardClassifier:
    """A loaded checkpoint and how to score with it. Not thread-safe: the provider runs it on one worker."""

    rid: str
    model: Any
    tokenizer: Any
    device: Any
    max_length: int
    load_seconds: float

    @property
    def id2label(self) -> dict[int, str]:
        return {int(i): str(n) for i, n in self.model.config.id2label.items()}

    def describe(self) -> str:
        labels = "/".join(self.id2label[i] for i in sorted(self.id2label))
        return f"{self.rid}: loaded ({type(self.model).__name__}, {labels}, on {self.device})"

    def scores(
        self, texts: Sequence[str], *, guard_type: GuardType, temperature: float, stride: int, batch_size: int
    ) -> list[float]:
        """One probability per text: the maximum over its windows of the malicious probability.

        Empty or whitespace-only text scores 0.0 without running the model (there is nothing to judge).
        """
        import torch

        indices = list(malicious_indices(self.id2label, guard_type))
        live = [i for i, t in enumerate(texts) if t and t.strip()]
        result = [0.0] * len(texts)
        if not live:
            return result
        windows = encode_windows(self.tokenizer, [texts[i] for i in live], self.max_length, stride)
        window_scores: list[float] = []
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with torch.inference_mode():
            for start in range(0, len(windows.input_ids), batch_size):
                batch = windows.input_ids[start : start + batch_size]
                width = max(len(ids) for ids in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, seq in enumerate(batch):  # right padding: the classifier reads [CLS] at position 0
                    ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                    mask[row, : len(seq)] = 1
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                window_scores.extend(probs[:, indices].sum(dim=-1).clamp(0.0, 1.0).tolist())
        for owner, score in zip(windows.owners, window_scores, strict=True):
            text_index = live[owner]
            result[text_index] = max(result[text_index], float(score))
        return result


def load(rid: str, config: PromptGuardConfig) -> PromptGuardClassifier:
    """Load ``rid`` as a sequence classifier on the configured device (blocking; run it off the event loop)."""
    started = time.perf_counter()
    source = resolve(rid, config)
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ServiceUnavailableError(
            f"Prompt Guard model '{rid}' cannot be loaded ({PROVIDER_TYPE}): {e}; pip install torch transformers.",
            code="provider_misconfigured",
        ) from e
    device = _device(rid, config, torch)
    common: dict[str, Any] = {"local_files_only": not config.allow_download}
    if config.cache_dir:
        common["cache_dir"] = config.cache_dir
    dtype_key = "dtype" if _transformers_at_least("4.56") else "torch_dtype"
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source.location, **common)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            source.location,
            **common,
            **{dtype_key: torch.float32},  # 86M params: fp32 everywhere, exact scores
        )
        malicious_indices({int(i): n for i, n in model.config.id2label.items()}, "injection")
        model = model.to(device).eval()
    except Exception as e:  # OSError, ValueError, gated repos, wrong head: all mean "not usable", with the reason
        raise unavailable(rid, source.tried, f"{type(e).__name__}: {first_line(e)}", config) from e
    positions = getattr(model.config, "max_position_embeddings", None) or config.max_length
    loaded = PromptGuardClassifier(
        rid=rid,
        model=model,
        tokenizer=tokenizer,
        device=model.device,
        max_length=min(config.max_length, int(positions)),
        load_seconds=time.perf_counter() - started,
    )
    logger.info("loaded %s from %s on %s in %.1fs", rid, source.location, device, loaded.load_seconds)
    return loaded


def _device(rid: str, config: PromptGuardConfig, torch: Any) -> str:
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ServiceUnavailableError(
            f"Prompt Guard model '{rid}' cannot be loaded ({PROVIDER_TYPE}): device is cuda but no CUDA GPU is "
            f"visible (torch {torch.__version__}); set device: auto or cpu.",
            code="provider_misconfigured",
        )
    return config.device


def _transformers_at_least(version: str) -> bool:
    import transformers
    from packaging.version import Version

    return Version(transformers.__version__) >= Version(version)
