"""MCP tool client for the agent loop (Responses API ``tools: [{"type": "mcp", ...}]``).

One :class:`McpSessions` lives for one response: it opens at most one MCP session per
(url, headers, authorization), reuses it for every later list/call, and closes all of
them on exit. Each session is owned by its own background task, so the SDK's anyio task
groups are entered and exited in one task whatever task the caller uses (concurrent tool
calls from ``gather`` are fine); ``__aexit__`` tears them down, also on cancellation.
Every connect, list and call is bounded by ``McpServerRef.timeout_s``; failures become
:class:`McpError` with a message a user can act on. Written against the ``mcp`` 2.x SDK.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, Self
from urllib.parse import urlparse

import anyio
import httpx2
from anyio.abc import TaskGroup
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

__all__ = ["McpCallResult", "McpError", "McpServerRef", "McpSessions", "McpToolInfo"]

ErrorKind = Literal["unreachable", "timeout", "auth", "not_mcp", "protocol", "unknown_tool"]
_SSE_READ_TIMEOUT_S = 300.0  # an open SSE stream may sit idle while the model thinks
_CLOSE_GRACE_S = 2.0  # how long exit waits for polite session teardown (DELETE) before cancelling
_MAX_PAGES = 50  # tools/list pagination bound


@dataclass(frozen=True)
class McpServerRef:
    """Where an MCP server is and how to reach it (from the request's ``mcp`` tool entry)."""

    label: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    authorization: str | None = None  # OAuth access token, sent as ``Authorization: Bearer ...``
    timeout_s: float = 30.0

    def http_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.authorization:
            token = self.authorization.strip()
            headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        return headers

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.url, tuple(sorted(self.http_headers().items()))


@dataclass(frozen=True)
class McpToolInfo:
    name: str
    description: str | None
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class McpCallResult:
    output: str
    is_error: bool


class McpError(Exception):
    """A failure talking to an MCP server; ``str()`` names the server and says what went wrong."""

    def __init__(self, ref: McpServerRef, problem: str, kind: ErrorKind = "protocol") -> None:
        super().__init__(f"MCP server '{ref.label}' ({ref.url}): {problem}")
        self.label, self.url, self.kind = ref.label, ref.url, kind


class _Session:
    """One connection, owned by a background task that enters and exits the SDK client."""

    def __init__(self, sse: bool) -> None:
        self.sse = sse
        self.client: Client | None = None
        self.error: Exception | None = None
        self.ready, self.stop, self.done = anyio.Event(), anyio.Event(), anyio.Event()
        self.scope = anyio.CancelScope()
        self.statuses: list[tuple[str, int]] = []  # (method, status) of HTTP error responses
        self.tools: dict[str, McpToolInfo] | None = None

    async def on_response(self, response: httpx2.Response) -> None:
        # Streamable HTTP: only POSTs carry messages; a 405 on the optional GET stream or DELETE is benign.
        if response.status_code >= 400 and (self.sse or response.request.method == "POST"):
            self.statuses.append((response.request.method, response.status_code))

    def status(self, *codes: int) -> int | None:
        return next((s for _, s in reversed(self.statuses) if s in codes), None)


class McpSessions:
    """MCP sessions for one response: ``async with McpSessions() as sessions: ...``."""

    def __init__(self) -> None:
        self._sessions: dict[tuple, _Session] = {}
        self._locks: dict[tuple, anyio.Lock] = {}
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        assert self._tg is not None
        tg, self._tg = self._tg, None
        for session in self._sessions.values():
            session.stop.set()
        self._sessions.clear()
        if exc_type is None:
            tg.cancel_scope.deadline = anyio.current_time() + _CLOSE_GRACE_S  # polite close, bounded
        else:
            tg.cancel_scope.cancel()
        # Not handing the body's exception to the task group keeps it unwrapped (no ExceptionGroup).
        await tg.__aexit__(None, None, None)

    async def list_tools(self, ref: McpServerRef) -> list[McpToolInfo]:
        """All tools of the server (pagination followed); cached for the session."""
        session = await self._session(ref)
        if session.tools is None:
            session.tools = await self._rpc(ref, session, self._fetch_tools(session), "tools/list")
        return list(session.tools.values())

    async def call_tool(self, ref: McpServerRef, name: str, arguments: dict[str, Any]) -> McpCallResult:
        """Call a tool; a tool-reported failure (``isError``) is a result, not an exception."""
        tools = {t.name for t in await self.list_tools(ref)}
        if name not in tools:
            raise McpError(ref, f"has no tool named {name!r} (available: {', '.join(sorted(tools)) or 'none'})",
                           "unknown_tool")
        session = await self._session(ref)
        assert session.client is not None
        result = await self._rpc(ref, session, session.client.call_tool(name, arguments or {}), f"tool {name!r}")
        return McpCallResult(output=_render(result), is_error=bool(result.is_error))

    async def _fetch_tools(self, session: _Session) -> dict[str, McpToolInfo]:
        assert session.client is not None
        tools: dict[str, McpToolInfo] = {}
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await session.client.list_tools(cursor=cursor)
            for t in page.tools:
                tools[t.name] = McpToolInfo(t.name, t.description, dict(t.input_schema or {}))
            if not (cursor := page.next_cursor):
                break
        return tools

    async def _rpc(self, ref: McpServerRef, session: _Session, op: Any, what: str) -> Any:
        try:
            with anyio.fail_after(ref.timeout_s):
                return await op
        except TimeoutError:
            raise McpError(ref, f"{what} got no answer within {ref.timeout_s:g}s (timeout_s)", "timeout") from None
        except Exception as exc:
            if isinstance(exc, MCPError) and exc.error.code == CONNECTION_CLOSED:
                with anyio.move_on_after(_CLOSE_GRACE_S):  # let the owner task record why it died
                    await session.done.wait()
            raise _describe(ref, session, exc) from exc

    async def _session(self, ref: McpServerRef) -> _Session:
        """The live session for ``ref``, connecting (with one SSE fallback) when there is none."""
        if self._tg is None:
            raise RuntimeError("use McpSessions as `async with McpSessions() as sessions:`")
        lock = self._locks.setdefault(ref.key, anyio.Lock())
        try:
            with anyio.fail_after(ref.timeout_s):
                async with lock:
                    session = self._sessions.get(ref.key)
                    if session is not None and session.client is not None:
                        return session
                    sse = urlparse(ref.url).path.rstrip("/").endswith("/sse")
                    session = await self._connect(ref, sse)
                    if session.client is None and not sse and session.status(404, 405):
                        session = await self._connect(ref, True)  # the server may speak only the old SSE transport
        except TimeoutError:
            raise McpError(ref, f"unreachable: no MCP handshake within {ref.timeout_s:g}s (timeout_s)", "timeout") from None
        if session.client is None:
            raise _describe(ref, session, session.error or RuntimeError("connection closed"))
        self._sessions[ref.key] = session
        return session

    async def _connect(self, ref: McpServerRef, sse: bool) -> _Session:
        assert self._tg is not None
        session = _Session(sse)
        self._tg.start_soon(self._own, ref, session)
        try:
            await session.ready.wait()
        except BaseException:  # timed out or cancelled: stop the half-open connection
            session.scope.cancel()
            raise
        return session

    async def _own(self, ref: McpServerRef, session: _Session) -> None:
        """Owner task: enter the SDK client, publish it, hold it until stopped, then exit it."""
        with session.scope:
            try:
                async with AsyncExitStack() as stack:
                    transport = await _transport(ref, session, stack)
                    session.client = await stack.enter_async_context(Client(transport, cache=None))
                    session.ready.set()
                    await session.stop.wait()
            except Exception as exc:  # noqa: BLE001 - handed to the caller through `session.error`
                session.error = exc
            finally:
                session.client = None
                session.ready.set()
                session.done.set()


async def _transport(ref: McpServerRef, session: _Session, stack: AsyncExitStack) -> Any:
    """The SDK transport for ``ref``; HTTP error statuses are recorded since the SDK drops them."""
    hooks = {"response": [session.on_response]}
    if session.sse:
        def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
            return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks=hooks)

        return sse_client(ref.url, headers=ref.http_headers(), timeout=ref.timeout_s,
                          sse_read_timeout=_SSE_READ_TIMEOUT_S, httpx_client_factory=factory)
    timeout = httpx2.Timeout(ref.timeout_s, read=_SSE_READ_TIMEOUT_S)
    http = httpx2.AsyncClient(headers=ref.http_headers(), timeout=timeout, event_hooks=hooks)
    await stack.enter_async_context(http)
    return streamable_http_client(ref.url, http_client=http)


def _leaves(exc: BaseException) -> list[BaseException]:
    return [x for sub in exc.exceptions for x in _leaves(sub)] if isinstance(exc, BaseExceptionGroup) else [exc]


def _describe(ref: McpServerRef, session: _Session, exc: BaseException) -> McpError:
    """Turn whatever the SDK raised (often an ExceptionGroup) into one user-facing McpError."""
    leaf = _leaves(exc)[0]
    if isinstance(leaf, MCPError) and session.error is not None and leaf.error.code == CONNECTION_CLOSED:
        leaf = _leaves(session.error)[0]  # "Connection closed": the owner task knows why
    if isinstance(leaf, httpx2.HTTPStatusError):
        session.statuses.append((leaf.request.method, leaf.response.status_code))
    if status := session.status(401, 403):
        return McpError(ref, f"the server rejected the credentials (HTTP {status}); set `authorization` to a "
                             "valid OAuth access token for this server", "auth")
    if status := session.status(404, 405):
        fell_back = session.sse and not urlparse(ref.url).path.rstrip("/").endswith("/sse")
        via = "Streamable HTTP, then SSE" if fell_back else "SSE" if session.sse else "Streamable HTTP"
        return McpError(ref, f"not an MCP server endpoint (HTTP {status} over {via}); check the URL", "not_mcp")
    if isinstance(leaf, httpx2.TimeoutException | TimeoutError):
        return McpError(ref, f"timed out connecting or reading ({leaf or type(leaf).__name__})", "timeout")
    if isinstance(leaf, httpx2.SSEError):
        return McpError(ref, f"not an MCP server endpoint ({leaf})", "not_mcp")
    if isinstance(leaf, httpx2.TransportError | OSError):
        return McpError(ref, f"unreachable ({leaf or type(leaf).__name__})", "unreachable")
    if isinstance(leaf, httpx2.HTTPStatusError):
        return McpError(ref, f"HTTP {leaf.response.status_code} from the server", "protocol")
    if isinstance(leaf, MCPError):
        if status := session.status(*range(400, 600)):
            return McpError(ref, f"HTTP {status} from the server ({leaf.message})", "protocol")
        return McpError(ref, f"protocol error {leaf.error.code}: {leaf.message}", "protocol")
    return McpError(ref, f"protocol error: {type(leaf).__name__}: {leaf}", "protocol")


def _render(result: Any) -> str:
    """Tool result as text: text parts joined by newlines, other parts as short placeholders or JSON."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {block.mime_type}]")
        elif kind == "resource_link":
            parts.append(f"[resource: {block.uri}]")
        elif kind == "resource":
            text = getattr(block.resource, "text", None)
            parts.append(text if text is not None else f"[resource: {block.resource.uri}]")
        else:
            parts.append(json.dumps(block.model_dump(mode="json", by_alias=True, exclude_none=True)))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)
