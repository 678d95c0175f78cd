"""Reading Llama Guard's answer: ``safe``, or ``unsafe`` and a line of S-codes.

Anything else (an empty answer, prose, unknown codes) is *unparseable*; what
that means is the caller's policy (fail closed by default: treat it as a
violation), so the parser only says what it saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

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
