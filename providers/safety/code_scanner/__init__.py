"""``inline::code-scanner``: Meta's CodeShield scanning model output for insecure code (``codeshield`` loads lazily)."""

from .config import CodeScannerConfig
from .provider import CodeScannerSafetyProvider

__all__ = ["CodeScannerConfig", "CodeScannerSafetyProvider"]
