"""The Llama Guard 3 prompt, as its model card writes it.

One user message for the guard model: the task line naming the role whose
last message is checked ("User" for input, "Agent" for model output), the
hazard categories S1-S13 (S14 "Code Interpreter Abuse" only for the text
models that were trained on it), the conversation, and the output
instructions. ``excluded_categories`` are left out of the list, so the
model is not asked about them.

Llama Guard 3 11B Vision takes one image, placed before the prompt text.
A conversation with several images is judged with the *most recent* user
image (the one the last turn is about); earlier images are dropped from the
guard input and reported by :func:`build_guard_message` so callers can log
it. Assistant images are never sent (the vision guard was trained on user
images only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vistack.api.inference import ChatMessage, ImageContentPart, ImageURL, TextContentPart
from vistack.api.safety import LLAMA_GUARD_TASK_PREFIX

CATEGORIES: dict[str, str] = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex Crimes",
    "S4": "Child Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}
"""The MLCommons hazard codes with the names Llama Guard 3's prompt format uses (the model card's prompt)."""

TEXT_ONLY_CATEGORIES = frozenset({"S14"})
"""Trained into the text models (Llama-Guard-3-1B / 8B) only, not the 11B vision model."""

GuardKind = Literal["text", "vision"]


def guard_kind(model_id: str, *, vision: bool | None = None) -> GuardKind:
    """``vision`` when the model is the 11B vision guard (by id, or as declared in its metadata)."""
    if vision is not None:
        return "vision" if vision else "text"
    return "vision" if "vision" in model_id.lower() else "text"


def categories_for(kind: GuardKind, excluded: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The codes asked about, in order: S1-S13 (+ S14 for text guards), minus ``excluded``."""
    codes = [c for c in CATEGORIES if kind == "text" or c not in TEXT_ONLY_CATEGORIES]
    return [c for c in codes if c not in excluded]


def _role_name(role: str) -> str:
    return "Agent" if role == "assistant" else "User"


def build_prompt(conversation: list[tuple[str, str]], role: Literal["User", "Agent"], codes: list[str]) -> str:
    """The prompt text for ``conversation`` ((role name, text) pairs), checking the last ``role`` message."""
    categories = "\n".join(f"{code}: {CATEGORIES[code]}." for code in codes)
    turns = "\n\n".join(f"{name}: {text}" for name, text in conversation)
    return (
        f"{LLAMA_GUARD_TASK_PREFIX} '{role}' messages in conversations according our safety "
        "policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{categories}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{turns}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated categories."
    )


@dataclass
class GuardInput:
    """The one message sent to the guard model, and what was left out of it."""

    message: ChatMessage
    role: Literal["User", "Agent"]
    dropped_images: int


def build_guard_message(
    messages: list[ChatMessage], kind: GuardKind, excluded: frozenset[str] | set[str] = frozenset()
) -> GuardInput:
    """Turn the conversation to check into the guard model's single user message.

    System and developer messages are instructions to the model, not conversation, and are
    left out (as Llama Stack does); tool results count as the user side. The role checked is
    the role of the last remaining message. Raises ``ValueError`` when nothing is left to check.
    """
    turns = [m for m in messages if m.role not in ("system", "developer")]
    if not turns:
        raise ValueError("messages must contain at least one user, assistant or tool message to check")
    conversation = [(_role_name(m.role), m.text()) for m in turns]
    role = conversation[-1][0]
    images = [url for m in turns if m.role in ("user", "tool") for url in m.images()]
    text = build_prompt(conversation, role, categories_for(kind, excluded))  # type: ignore[arg-type]
    if kind == "vision" and images:
        content = [ImageContentPart(image_url=ImageURL(url=images[-1])), TextContentPart(text=text)]
        return GuardInput(ChatMessage(role="user", content=content), role, len(images) - 1)  # type: ignore[arg-type]
    return GuardInput(ChatMessage(role="user", content=text), role, len(images))  # type: ignore[arg-type]
