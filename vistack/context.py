"""Per-request context: who is calling and what provider settings they sent.

Kept in context variables so providers deep in a call (a remote engine
needing the caller's API key) can read them without threading arguments
through every layer.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from vistack.access import ANONYMOUS, Principal
from vistack.api.errors import BadRequestError

_principal: ContextVar[Principal] = ContextVar("vistack_principal", default=ANONYMOUS)
_provider_data: ContextVar[dict[str, Any] | None] = ContextVar("vistack_provider_data", default=None)

PROVIDER_DATA_HEADER = "X-LlamaStack-Provider-Data"


def current_principal() -> Principal:
    """The authenticated principal (``ANONYMOUS`` when auth is off): every stored object's owner."""
    return _principal.get()


def set_principal(principal: Principal):
    return _principal.set(principal)


def provider_data() -> dict[str, Any]:
    """The parsed ``X-LlamaStack-Provider-Data`` header of the current request."""
    return _provider_data.get() or {}


def set_provider_data(data: dict[str, Any]):
    return _provider_data.set(data)


def parse_provider_data(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BadRequestError(f"{PROVIDER_DATA_HEADER} must be a JSON object: {e.msg}") from e
    if not isinstance(value, dict):
        raise BadRequestError(f"{PROVIDER_DATA_HEADER} must be a JSON object, got {type(value).__name__}")
    return value
