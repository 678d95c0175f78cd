"""OpenAI attribute filters for vector store search (comparison and compound)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

ComparisonOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]


class ComparisonFilter(BaseModel):
    type: ComparisonOp
    key: str = Field(min_length=1)
    value: str | int | float | bool | list[str | int | float | bool]


class CompoundFilter(BaseModel):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | CompoundFilter] = Field(default_factory=list)


Filter = ComparisonFilter | CompoundFilter


def parse_filter(raw: dict[str, Any] | None) -> Filter | None:
    """Validate a filter dict; raises pydantic ValidationError (the server answers 400)."""
    if raw is None:
        return None
    if raw.get("type") in ("and", "or"):
        return CompoundFilter.model_validate(raw)
    return ComparisonFilter.model_validate(raw)


def _same_kind(a: Any, b: Any) -> bool:
    """Booleans only compare with booleans, numbers with numbers, strings with strings."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return True
    return type(a) is type(b)


def _equal(a: Any, b: Any) -> bool:
    return _same_kind(a, b) and a == b


def matches(flt: Filter | None, attributes: dict[str, Any]) -> bool:
    """Evaluate ``flt`` against one chunk's attributes.

    A missing key fails every comparison except ``ne`` and ``nin``; ordering
    comparisons apply only between values of the same kind.
    """
    if flt is None:
        return True
    if isinstance(flt, CompoundFilter):
        results = (matches(f, attributes) for f in flt.filters)
        return all(results) if flt.type == "and" else any(results)
    present = flt.key in attributes
    actual = attributes.get(flt.key)
    value = flt.value
    op = flt.type
    if op in ("in", "nin"):
        values = value if isinstance(value, list) else [value]
        hit = present and any(_equal(actual, v) for v in values)
        return hit if op == "in" else not hit
    if op == "eq":
        return present and _equal(actual, value)
    if op == "ne":
        return not (present and _equal(actual, value))
    if not present or isinstance(value, list) or not _same_kind(actual, value):
        return False
    if op == "gt":
        return actual > value
    if op == "gte":
        return actual >= value
    if op == "lt":
        return actual < value
    return actual <= value
