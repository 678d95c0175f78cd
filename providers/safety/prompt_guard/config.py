"""The ``config:`` block of ``inline::prompt-guard`` and the per-shield ``params`` it accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vistack.api import BadRequestError
from vistack.api.safety import Shield

PROVIDER_TYPE = "inline::prompt-guard"
DEFAULT_MODEL = "meta-llama/Llama-Prompt-Guard-2-86M"
MODEL_ENV = "VISTACK_PROMPT_GUARD_MODEL"  # what distributions put in the shield's provider_shield_id
USER_MESSAGE = "Sorry, I cannot do this."  # Llama Stack's refusal text for Prompt Guard violations

GuardType = Literal["injection", "jailbreak"]


class PromptGuardConfig(BaseModel):
    """Configuration of ``inline::prompt-guard`` (the ``config:`` block in a distribution YAML).

    The checkpoint is not named here: each shield's ``provider_shield_id`` (its
    ``provider_resource_id``) is a local directory or a Hugging Face id, so one
    provider can serve Prompt Guard 2 86M and 22M side by side. Unknown keys are
    rejected so a typo does not silently fall back to a default.
    """

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Flag when the malicious probability is >= this. 0.5 is the argmax decision Meta's Prompt "
        "Guard 2 model card uses (pipeline / logits.argmax): PG2 is trained as a binary classifier with few false "
        "positives on ordinary prompts. Llama Stack's 0.9 was tuned for v1 (Prompt-Guard-86M), whose "
        "injection class fired on much benign third-party text; raise it for v1 checkpoints.",
    )
    guard_type: GuardType = Field(
        "injection",
        description="Kept for Llama Stack configs. Two-label (v2) models: both mean p(malicious). Three-label (v1) "
        "models: injection = p(INJECTION) + p(JAILBREAK), jailbreak = p(JAILBREAK).",
    )
    temperature: float = Field(1.0, gt=0.0, description="Softmax temperature on the logits (1.0 = the model's own).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = CUDA when a GPU is visible, else CPU.")
    cache_dir: str | None = Field(None, description="Hugging Face cache directory; default HF_HOME's.")
    allow_download: bool = Field(
        False, description="Let transformers download from the Hugging Face Hub; off = offline (local files only)."
    )
    max_length: int = Field(
        512,
        ge=8,
        description="Tokens per window, special tokens included (capped at the model's positions: 512 for PG2). "
        "Longer text is scored in overlapping windows and the score is the maximum over them.",
    )
    stride: int = Field(
        64,
        ge=0,
        description="Tokens shared by consecutive windows, so an attack cut at a window edge is still seen whole.",
    )
    batch_size: int = Field(16, ge=1, description="Windows per forward pass.")
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads for this provider's worker thread only (loading and scoring); "
        "default: torch's own setting.",
    )

    @model_validator(mode="after")
    def _stride_below_window(self) -> PromptGuardConfig:
        if self.stride >= self.max_length - 2:  # [CLS] and [SEP] take two of the window's tokens
            raise ValueError(f"stride ({self.stride}) must be smaller than max_length - 2 ({self.max_length - 2})")
        return self


@dataclass(frozen=True)
class ShieldPolicy:
    """What one shield asks of the classifier: the provider defaults with the shield's ``params`` applied."""

    threshold: float
    guard_type: GuardType

    @property
    def category(self) -> str:
        """Moderation category and ``violation_type``: what the score measures."""
        return "jailbreak" if self.guard_type == "jailbreak" else "prompt_injection"


_PARAMS = ("threshold", "guard_type")


def shield_policy(shield: Shield, config: PromptGuardConfig) -> ShieldPolicy:
    """The shield's policy; a bad ``params`` entry is a 400 naming it (checked at register time too).

    Unknown keys are refused rather than ignored: a misspelt ``treshold`` would
    otherwise leave a safety shield on a threshold nobody chose.
    """
    params: dict[str, Any] = shield.params or {}
    unknown = sorted(set(params) - set(_PARAMS))
    if unknown:
        raise BadRequestError(
            f"Shield '{shield.identifier}' ({PROVIDER_TYPE}): unknown params {unknown}; accepted: {list(_PARAMS)}.",
            param="params",
        )
    threshold = params.get("threshold", config.threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= float(threshold) <= 1.0:
        raise BadRequestError(
            f"Shield '{shield.identifier}' ({PROVIDER_TYPE}): params.threshold must be a number in [0, 1], "
            f"got {threshold!r}.",
            param="params.threshold",
        )
    guard_type = params.get("guard_type", config.guard_type)
    if guard_type not in ("injection", "jailbreak"):
        raise BadRequestError(
            f"Shield '{shield.identifier}' ({PROVIDER_TYPE}): params.guard_type must be 'injection' or "
            f"'jailbreak', got {guard_type!r}.",
            param="params.guard_type",
        )
    return ShieldPolicy(threshold=float(threshold), guard_type=guard_type)
