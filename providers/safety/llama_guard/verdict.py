"""Reading Llama Guard's answer: ``safe``, or ``unsafe`` and a line of S-codes.

Anything else (an empty answer, prose, unknown codes) is *unparseable*; what
that means is the caller's policy (fail closed by default: treat it as a
violation), so the parser only says what it saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from vistack.api.safety import ModerationObjectResults, RunShieldResponse, SafetyViolation, ViolationLevel

from .prompt import CATEGORIES

_CODE = re.compile(r"\bS(\d{1,2})\b")


@dataclass
class Verdict:
    """``safe``, ``unsafe`` (with the codes found, excluded ones removed) or ``unparseable`` (with the raw text)."""

    status: Literal["safe", "unsafe", "unparseable"]
    codes: list[str] = field(default_factory=list)
    raw: str = ""


def parse_verdict(text: str, excluded: frozenset[str] | set[str] = frozenset()) -> Verdict:
    """The guard's answer as a :class:`Verdict`.

    ``unsafe`` whose every code is excluded is ``safe`` (the model flagged only what the
    deployment chose not to enforce). ``unsafe`` without any known code is unparseable.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return Verdict("unparseable", raw=text)
    head = lines[0].lower()
    if head == "safe":
        return Verdict("safe", raw=text)
    if head != "unsafe":
        return Verdict("unparseable", raw=text)
    found = [f"S{int(n)}" for n in _CODE.findall(" ".join(lines[1:]))]
    codes = list(dict.fromkeys(c for c in found if c in CATEGORIES))
    if not codes:
        return Verdict("unparseable", raw=text)
    enforced = [c for c in codes if c not in excluded]
    return Verdict("unsafe", enforced, raw=text) if enforced else Verdict("safe", raw=text)


REFUSAL = "I can't answer that. Can I help with something else?"
"""What the user is told when a shield blocks (Llama Stack's wording)."""


def shield_response(verdict: Verdict) -> RunShieldResponse:
    """``/v1/safety/run-shield``'s answer: no violation when safe, else an error-level violation naming the codes.

    An unparseable verdict must be decided by the caller's policy first (fail closed turns it into ``unsafe``).
    """
    if verdict.status == "unparseable":
        raise ValueError("an unparseable verdict needs the provider's policy applied before it becomes a response")
    if verdict.status == "safe":
        return RunShieldResponse(violation=None)
    return RunShieldResponse(
        violation=SafetyViolation(
            violation_level=ViolationLevel.error,
            user_message=REFUSAL,
            metadata={"violation_type": ",".join(verdict.codes), "categories": category_names(verdict.codes)},
        )
    )


def category_names(codes: list[str]) -> list[str]:
    """The Llama Guard and OpenAI category names the codes stand for (what moderation objects key on)."""
    names = [CATEGORIES[c] for c in codes if c in CATEGORIES]
    names += [n for c in codes for n in OPENAI_CATEGORIES.get(c, ())]
    return list(dict.fromkeys(names))


OPENAI_CATEGORIES: dict[str, tuple[str, ...]] = {
    "S1": ("violence", "illicit/violent"),
    "S2": ("illicit",),
    "S3": ("sexual",),
    "S4": ("sexual/minors",),
    "S5": ("harassment",),
    "S9": ("violence", "illicit/violent"),
    "S10": ("hate",),
    "S11": ("self-harm",),
    "S12": ("sexual",),
}
"""OpenAI moderation categories each S-code implies, so clients written for OpenAI's categories read a Llama
Guard verdict; S6-S8, S13, S14 have no OpenAI counterpart and appear under their Llama Guard names only."""

OPENAI_CATEGORY_NAMES: tuple[str, ...] = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)


def moderation_result(verdict: Verdict, input_type: str = "text") -> ModerationObjectResults:
    """One ``/v1/moderations`` result: every Llama Guard category by name (as Llama Stack reports them) and
    every OpenAI category, flagged ones scored 1.0 with the input type that triggered them.

    A guard that answered nothing readable under a fail-closed policy is flagged with no category set and
    ``metadata.violation_type == ["unparseable"]``.
    """
    if verdict.status == "unparseable":
        raise ValueError("an unparseable verdict needs the provider's policy applied before it becomes a result")
    codes = set(verdict.codes)
    flagged_names = set(category_names(verdict.codes))
    names = [*CATEGORIES.values(), *OPENAI_CATEGORY_NAMES]
    return ModerationObjectResults(
        flagged=bool(codes),
        categories={name: name in flagged_names for name in names},
        category_scores={name: 1.0 if name in flagged_names else 0.0 for name in names},
        category_applied_input_types={name: [input_type] if name in flagged_names else [] for name in names},
        user_message=REFUSAL if codes else None,
        metadata={"violation_type": list(verdict.codes)} if codes else {},
    )
