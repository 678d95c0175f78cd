"""Pydantic objects from one project's wire models to the other's.

vistack's ``vistack.api`` models and Llama Stack's ``llama_stack_api`` models describe the same
OpenAI / Llama Stack JSON, so converting is dumping one and validating the other. Fields left unset
(``None``) stay unset, so each side's defaults apply; extra keys (``extra_body`` knobs such as
``top_k``) travel, as both request models accept them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from pydantic import BaseModel

_M = TypeVar("_M", bound=BaseModel)


def convert(obj: BaseModel | dict[str, Any], cls: type[_M]) -> _M:
    """``obj`` (a model of either project, or its JSON as a dict) as a ``cls``."""
    data = obj.model_dump(mode="json", exclude_none=True) if isinstance(obj, BaseModel) else obj
    return cls.model_validate(data)


async def convert_stream(stream: AsyncIterator[BaseModel], cls: type[_M]) -> AsyncIterator[_M]:
    """Each item of ``stream`` as a ``cls``; closing this generator closes ``stream`` (a client that hangs
    up must free the model's worker)."""
    try:
        async for item in stream:
            yield convert(item, cls)
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
