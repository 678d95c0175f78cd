"""``inline::prompt-guard``: Llama Prompt Guard (2) classifier shields through transformers.

- ``config.py``: the provider config, per-shield ``params`` (threshold, guard_type) and their checks.
- ``classifier.py``: finding a checkpoint (local dir, ``~/.llama/checkpoints``, HF cache) with a 503
  naming what was tried, loading it, and scoring text as the max over overlapping token windows.
- ``provider.py``: the ``SafetyProvider``: lazy per-checkpoint loading on one worker thread,
  ``run_shield``, batched ``run_moderation`` and ``score_texts`` (for guardrails screening retrieved chunks).

torch and transformers are imported only when a checkpoint loads, never at server import time.
"""

from .config import PromptGuardConfig
from .provider import PromptGuardSafetyProvider

__all__ = ["PromptGuardConfig", "PromptGuardSafetyProvider"]
