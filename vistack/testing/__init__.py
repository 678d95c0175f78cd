"""Test helpers that need no network: tiny random models with real configs, tokenizers and templates."""

from .tiny_models import (
    LLAMA32_VISION_CHAT_TEMPLATE,
    build_tiny_cross_encoder,
    build_tiny_llama,
    build_tiny_mllama,
    build_tokenizer,
    tiny_model_dir,
)

__all__ = [
    "LLAMA32_VISION_CHAT_TEMPLATE",
    "build_tiny_cross_encoder",
    "build_tiny_llama", "build_tiny_mllama", "build_tokenizer", "tiny_model_dir"]
