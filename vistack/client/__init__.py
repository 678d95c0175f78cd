"""vistack's Python client.

- :class:`Vistack` (sync) / :class:`AsyncVistack` (async): ingest folders into
  a vector store, ask questions answered from page images with cited pages,
  stream answers as typed events, chat in a Conversation. Built on the
  official ``openai`` SDK (``client.openai`` / ``client.aio.openai`` for every other route).
- :class:`VistackClient`: the thin async HTTP layer the CLI's ``ingest`` and
  ``search`` use; it speaks to a server (``base_url``) or an ASGI app directly.

Every error is a :class:`VistackAPIError` (``status_code``, ``message``, ``code``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .http import VistackAPIError, VistackClient

if TYPE_CHECKING:
    from .documents import AsyncChat, AsyncVistack
    from .sync import Chat, Vistack
    from .types import (
        Answer,
        Citation,
        CitedPage,
        Done,
        Failed,
        FileResult,
        IngestProgress,
        IngestReport,
        SearchDone,
        SearchHit,
        SearchStarted,
        StreamEvent,
        TextDelta,
        Usage,
    )

# Imported on first use: ``openai`` is not needed by ``vistack serve`` or the thin client.
_LAZY = {"AsyncChat": "documents", "AsyncVistack": "documents", "Chat": "sync", "Vistack": "sync"}


def __getattr__(name: str) -> Any:
    if name in __all__ and name not in ("VistackAPIError", "VistackClient"):
        return getattr(importlib.import_module(f".{_LAZY.get(name, 'types')}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Answer", "AsyncChat", "AsyncVistack", "Chat", "Citation", "CitedPage", "Done", "Failed", "FileResult",
    "IngestProgress", "IngestReport", "SearchDone", "SearchHit", "SearchStarted", "StreamEvent", "TextDelta",
    "Usage", "Vistack", "VistackAPIError", "VistackClient",
]
