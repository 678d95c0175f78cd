"""OpenAI attribute filters -> Chroma ``where`` clauses, and the post-check that makes them exact.

Chroma versions disagree on missing keys, mixed types and ``$ne``, so a
filter is pushed down only as a ``where`` that can never be narrower than
:func:`vistack.api.filters.matches`; the adapter then keeps exactly what
``matches`` accepts (over-fetching where the push-down was not exact), so
results never depend on the Chroma version.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ValidationError

from vistack.api import BadRequestError
from vistack.api.filters import ComparisonFilter, CompoundFilter, Filter, matches, parse_filter
from vistack.api.protocols import ChunkMetadataValue

__all__ = [
    "NOTHING",
    "RESERVED_KEY_PREFIXES",
    "coerce_filter",
    "is_number",
    "translate_filter",
    "where_from_equalities",
]

RESERVED_KEY_PREFIXES = ("chroma:", "#", "$")
"""Metadata key prefixes Chroma keeps for itself: no stored chunk can carry such a key."""


class _Nothing:
    """A where that matches nothing (Chroma has no literal for it)."""

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = _Nothing()


def is_number(v: Any) -> bool:
    """A real number; ``bool`` is an ``int`` to Python but never equal to one in a filter."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kind(v: Any) -> str:
    return "bool" if isinstance(v, bool) else "number" if is_number(v) else "str"


def translate_filter(flt: Filter | None) -> tuple[dict[str, Any] | None | _Nothing, bool]:
    """OpenAI filter -> (Chroma ``where``, exact).

    ``where`` is ``None`` for "no restriction" and :data:`NOTHING` for "no
    chunk can match"; otherwise a Chroma where that every chunk satisfying
    ``matches(flt, ...)`` also satisfies. ``exact`` says whether the converse
    holds too (then no over-fetch is needed). Callers still post-filter with
    ``matches``.

    ``ne`` and ``nin`` are never pushed down: Chroma servers have disagreed
    across versions about chunks that lack the key, and ``matches`` keeps them.
    Ordering comparisons on strings or booleans are not pushed down either
    (Chroma only orders numbers).
    """
    if flt is None:
        return None, True
    if isinstance(flt, CompoundFilter):
        parts = [translate_filter(f) for f in flt.filters]
        exact = all(e for _, e in parts)
        if flt.type == "and":
            if any(w is NOTHING for w, _ in parts):
                return NOTHING, True
            wheres = [w for w, _ in parts if w is not None]
            if not wheres:
                return None, exact
            return (wheres[0] if len(wheres) == 1 else {"$and": wheres}), exact
        # or
        live = [(w, e) for w, e in parts if w is not NOTHING]
        if not live:
            return NOTHING, True  # an empty "or", or every branch impossible
        if any(w is None for w, _ in live):
            return None, all(e for _, e in live)
        wheres = [w for w, _ in live]
        return (wheres[0] if len(wheres) == 1 else {"$or": wheres}), all(e for _, e in live)
    return _translate_comparison(flt)


def _translate_comparison(flt: ComparisonFilter) -> tuple[dict[str, Any] | None | _Nothing, bool]:
    key, op, value = flt.key, flt.type, flt.value
    if key.startswith(RESERVED_KEY_PREFIXES):
        # no stored chunk can carry such a key: the answer is what `matches` says of a missing key
        return (None if matches(flt, {}) else NOTHING), True
    if op in ("ne", "nin"):
        if op == "ne" and isinstance(value, list):
            return None, True  # a scalar never equals a list: always true
        if op == "nin" and isinstance(value, list) and not value:
            return None, True
        return None, False
    if op == "eq":
        if isinstance(value, list):
            return NOTHING, True
        return {key: {"$eq": value}}, True
    if op == "in":
        values = value if isinstance(value, list) else [value]
        if not values:
            return NOTHING, True
        groups: dict[str, list[Any]] = {}
        for v in values:
            k = _kind(v)
            v = float(v) if k == "number" else v  # Chroma wants one type per list; 1.0 matches a stored 1
            if v not in groups.setdefault(k, []):
                groups[k].append(v)
        clauses = [{key: {"$in": vs}} for vs in groups.values()]
        return (clauses[0] if len(clauses) == 1 else {"$or": clauses}), True
    # gt / gte / lt / lte
    if isinstance(value, list):
        return NOTHING, True
    if is_number(value) and math.isfinite(value):
        return {key: {f"${op}": value}}, True
    return None, False


def where_from_equalities(where: dict[str, ChunkMetadataValue] | None) -> Filter | None:
    """A protocol ``where`` (equality map) as a filter, so it goes through the same push-down and check."""
    if not where:
        return None
    filters = [ComparisonFilter(type="eq", key=k, value=v) for k, v in where.items()]
    return filters[0] if len(filters) == 1 else CompoundFilter(type="and", filters=filters)


def coerce_filter(filters: Any) -> Filter | None:
    """``query``'s ``filters`` as a parsed filter, whether it came parsed, as a model or as JSON."""
    if filters is None or isinstance(filters, (ComparisonFilter, CompoundFilter)):
        return filters
    if isinstance(filters, BaseModel):
        filters = filters.model_dump(exclude_none=True)
    if isinstance(filters, dict):
        if not filters:
            return None
        try:
            return parse_filter(filters)
        except ValidationError as e:
            raise BadRequestError(f"invalid filters: {e.errors()[0].get('msg', e)}", param="filters") from None
    raise BadRequestError(f"filters must be an OpenAI comparison or compound filter, got {type(filters).__name__}")
