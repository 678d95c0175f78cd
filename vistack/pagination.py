"""Cursor pagination shared by the list routes (OpenAI semantics: ``after``/``before`` ids)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from vistack.api import BadRequestError

T = TypeVar("T")

Order = Literal["asc", "desc"]


def paginate(
    items: Sequence[T],
    *,
    ident: Callable[[T], str],
    key: Callable[[T], tuple] | None = None,
    limit: int,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
) -> tuple[list[T], bool]:
    """Sort by ``key`` in ``order``, cut at the cursors, return (page, has_more).

    Without ``key`` the items are taken to be oldest first already (storage order).

    An unknown cursor id is a client error (400), not silently ignored: a
    client paging through a list that changed should hear about it.
    """
    if key is None:
        ordered = list(reversed(items)) if order == "desc" else list(items)
    else:
        ordered = sorted(items, key=key, reverse=(order == "desc"))
    ids = [ident(x) for x in ordered]
    start, end = 0, len(ordered)
    if after is not None:
        if after not in ids:
            raise BadRequestError(f"unknown cursor after='{after}'", param="after")
        start = ids.index(after) + 1
    if before is not None:
        if before not in ids:
            raise BadRequestError(f"unknown cursor before='{before}'", param="before")
        end = ids.index(before)
    window = ordered[start:end]
    return window[:limit], len(window) > limit
