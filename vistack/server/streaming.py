"""OpenAI-style server-sent events: ``data: {chunk}`` lines ending with ``data: [DONE]``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from vistack.api import VistackError
from vistack.server.errors import error_body

log = logging.getLogger(__name__)


async def sse_response(
    chunks: AsyncIterator[BaseModel], fix: Callable[[BaseModel], BaseModel] = lambda c: c
) -> EventSourceResponse:
    """Start streaming only after the first chunk exists.

    Pulling the first chunk before sending headers means errors a provider
    raises lazily (missing weights, bad image) still reach the client as a
    proper HTTP status instead of a broken 200 stream.
    """
    try:
        first: BaseModel | None = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await close_stream(chunks)
        raise

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            if first is not None:
                yield {"data": fix(first).model_dump_json()}
            async for chunk in chunks:
                yield {"data": fix(chunk).model_dump_json()}
            yield {"data": "[DONE]"}
        except VistackError as e:
            yield {"data": json.dumps(e.to_body())}
        except Exception as e:  # mid-stream failure: tell the client in-band, as OpenAI does
            log.exception("stream failed")
            yield {"data": json.dumps(error_body(f"stream failed: {type(e).__name__}: {e}", 500))}
        finally:
            await close_stream(chunks)

    return EventSourceResponse(events(), ping=15, sep="\n")


async def close_stream(chunks: AsyncIterator[Any]) -> None:
    """Close a provider's or the agent's stream (a client that went away stops the work)."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # closing must never mask the real outcome
            log.debug("error while closing stream", exc_info=True)
