"""``inline::llama-guard``: Llama Guard 3 through the inference router (prompt, verdict, provider)."""

from .config import LlamaGuardConfig
from .provider import LlamaGuardSafetyProvider

__all__ = ["LlamaGuardConfig", "LlamaGuardSafetyProvider"]
