"""Shields, Safety and Moderations: the Llama Stack 0.7 wire shapes (``llama_stack_api.shields`` / ``.safety``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from vistack.api.inference import ChatMessage, ImageContentPart, TextContentPart

LLAMA_GUARD_TASK_PREFIX = "Task: Check if there is unsafe content in"
"""How a finished Llama Guard prompt begins. Llama Guard checkpoints ship a chat template that builds this
prompt from a plain conversation; an inference provider that receives a message already starting with it
must not build it a second time (see ``inline::transformers``)."""


class Shield(BaseModel):
    """A registered shield as ``GET /v1/shields/{id}`` returns it (Llama Stack resource)."""

    identifier: str
    provider_resource_id: str | None = None
    provider_id: str
    type: Literal["shield"] = "shield"
    params: dict[str, Any] | None = None


class ListShieldsResponse(BaseModel):
    data: list[Shield]


class RegisterShieldRequest(BaseModel):
    shield_id: str = Field(..., min_length=1)
    provider_shield_id: str | None = None
    provider_id: str | None = None
    params: dict[str, Any] | None = None


class ViolationLevel(StrEnum):
    info = "info"
    warn = "warn"
    error = "error"


class SafetyViolation(BaseModel):
    violation_level: ViolationLevel
    user_message: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RunShieldRequest(BaseModel):
    shield_id: str = Field(..., min_length=1)
    messages: list[ChatMessage]


class RunShieldResponse(BaseModel):
    violation: SafetyViolation | None = None


class RunModerationRequest(BaseModel):
    """``input``: a string, a list of strings (one result each), or OpenAI's multi-modal form: a list of
    ``{"type": "text"}`` / ``{"type": "image_url"}`` parts judged together as one input (one result)."""

    input: str | list[str] | list[TextContentPart | ImageContentPart] = Field(union_mode="left_to_right")
    model: str | None = None


class ModerationObjectResults(BaseModel):
    flagged: bool
    categories: dict[str, bool] | None = None
    category_applied_input_types: dict[str, list[str]] | None = None
    category_scores: dict[str, float] | None = None
    user_message: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ModerationObject(BaseModel):
    id: str
    model: str
    results: list[ModerationObjectResults]


def moderation_result_from_violation(
    violation: SafetyViolation | None, category: str, input_type: str = "text"
) -> ModerationObjectResults:
    """A moderation result for a shield that knows one category (a classifier or scanner): flagged
    when it reported a violation, with that violation's message and metadata (Llama Stack's
    ``ShieldToModerationMixin`` does the same)."""
    flagged = violation is not None and violation.violation_level == ViolationLevel.error
    return ModerationObjectResults(
        flagged=flagged,
        categories={category: flagged},
        category_scores={category: 1.0 if flagged else 0.0},
        category_applied_input_types={category: [input_type] if flagged else []},
        user_message=violation.user_message if violation is not None else None,
        metadata=dict(violation.metadata) if violation is not None else {},
    )
