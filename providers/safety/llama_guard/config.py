"""The ``config:`` block of ``inline::llama-guard``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .prompt import CATEGORIES

PROVIDER_TYPE = "inline::llama-guard"


class LlamaGuardConfig(BaseModel):
    """How Llama Guard shields are asked and how their answers are read.

    A shield's ``params`` may override ``excluded_categories``, ``vision`` and ``on_unparseable``
    for that shield alone.
    """

    model_config = ConfigDict(extra="forbid")

    excluded_categories: list[str] = Field(
        default_factory=list,
        description="S-codes left out of the prompt and ignored in answers (e.g. [S6] for a medical deployment)",
    )
    on_unparseable: Literal["block", "allow"] = Field(
        "block",
        description="an answer that is neither 'safe' nor 'unsafe' + known codes: block (fail closed, the "
        "default: a broken guard must not wave content through) or allow; either way it is logged",
    )
    max_tokens: int = Field(10, ge=2, le=64, description="'unsafe\\nS1,S10' is 6 tokens; more is never read")
    vision: bool | None = Field(
        None,
        description="whether the guard model is the 11B vision guard (takes one image, no S14); default: from "
        "the model's metadata 'vision', else its id containing 'vision'",
    )

    @field_validator("excluded_categories")
    @classmethod
    def _known_codes(cls, codes: list[str]) -> list[str]:
        unknown = [c for c in codes if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown categories {unknown}; expected S-codes from {', '.join(CATEGORIES)}")
        return codes
