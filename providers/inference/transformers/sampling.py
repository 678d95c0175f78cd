"""Sampling: a request's token budget and sampling knobs, checked, and turned into a ``GenerationConfig``."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from vistack.api import BadRequestError
from vistack.api.inference import ChatCompletionRequest, CompletionRequest

from .config import TransformersInferenceConfig
from .loading import Loaded
from .penalties import parse_logit_bias

_EXTRA_SAMPLING: dict[str, tuple[str, type]] = {
    # vLLM-compatible extra_body knobs → GenerationConfig attributes
    "top_k": ("top_k", int),
    "min_p": ("min_p", float),
    "repetition_penalty": ("repetition_penalty", float),
    "min_tokens": ("min_new_tokens", int),
}


@dataclass
class Sampling:
    max_new_tokens: int
    temperature: float | None
    top_p: float | None
    seed: int | None
    stop: list[str]
    extra: dict[str, Any]
    max_time: float | None = None  # seconds of generation before it stops (finish_reason "length")
    logit_bias: dict[int, float] = field(default_factory=dict)
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0


def sampling_for(
    config: TransformersInferenceConfig,
    loaded: Loaded,
    request: ChatCompletionRequest | CompletionRequest,
    requested: int | None,
    prompt_tokens: int,
) -> Sampling:
    """The request's sampling, with max_tokens checked against the server's limit and the context length."""
    if requested and config.max_tokens_limit and requested > config.max_tokens_limit:
        raise BadRequestError(
            f"max_tokens={requested} exceeds this server's limit of {config.max_tokens_limit} (max_tokens_limit).",
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
    default = config.default_max_tokens
    max_new = requested or min(default, (ctx - prompt_tokens) if ctx else default)
    return Sampling(
        max_new_tokens=max_new,
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        stop=request.stop_sequences,
        extra=_extra_sampling(request.model_extra or {}),
        max_time=config.max_generation_s,
        logit_bias=parse_logit_bias(request.logit_bias, loaded.model.get_output_embeddings().weight.shape[0])
        if request.logit_bias else {},
        frequency_penalty=request.frequency_penalty or 0.0,
        presence_penalty=request.presence_penalty or 0.0,
    )


def generation_config(loaded: Loaded, s: Sampling) -> Any:
    """The checkpoint's generation config with the request's sampling applied (unset values keep its defaults)."""
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
    if s.max_time is not None:
        gc_.max_time = s.max_time
    return gc_


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
