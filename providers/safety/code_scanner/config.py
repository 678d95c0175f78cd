"""The ``config:`` block of ``inline::code-scanner`` and the shield ids it answers to."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

PROVIDER_TYPE = "inline::code-scanner"

ALLOWED_SHIELD_IDS: tuple[str, ...] = ("code-scanner", "code-shield")
"""``provider_shield_id`` values Llama Stack's code scanner accepts; kept so its distributions register unchanged."""

USER_MESSAGE = "Sorry, I found security concerns in the code."
"""Llama Stack's exact ``run_shield`` refusal; its conformance tests assert this text."""

INSTALL_HINT = "codeshield is not installed: pip install codeshield"


class CodeScannerConfig(BaseModel):
    """Configuration of ``inline::code-scanner``: nothing to set.

    CodeShield carries its own rules (regexes plus semgrep rules run by the
    ``semgrep-core`` binary from the ``semgrep`` wheel), works offline and has
    no model to point at. Unknown keys are rejected so a typo is not mistaken
    for a setting that took effect.
    """

    model_config = ConfigDict(extra="forbid")
