"""The ``config:`` block of ``inline::transformers`` and the provider's type name."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vistack.images import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, MLLAMA_MAX_SIDE

PROVIDER_TYPE = "inline::transformers"


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
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads on CPU for this provider's model worker (loading and generation) "
        "only; other threads and providers keep their own. Default: one fewer than the machine's cores (at least "
        "1), so the event loop and the HTTP stack keep a core instead of fighting torch's spinning threads.",
    )
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
    grammar_cache_mb: int = Field(
        512, ge=1, description="Memory for compiled output grammars (JSON schemas, regexes) per model, least "
        "recently used evicted first (vLLM's VLLM_XGRAMMAR_CACHE_MB default: about a thousand JSON schemas).",
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
    max_generation_s: float | None = Field(
        300.0, gt=0, description="Generation time limit per request: a generation still running then stops as if it "
        "hit max_tokens (finish_reason length), so one runaway request cannot hold the model's worker; None: no limit."
    )
    max_choices: int = Field(
        16, ge=1, le=128, description="Largest n (and best_of) of one request: its sequences are sampled together "
        "as one batch, so memory grows with it."
    )
    max_queued_requests: int = Field(
        32, ge=1, description="Requests waiting or running per model; beyond this, 429 with Retry-After so clients "
        "back off."
    )
