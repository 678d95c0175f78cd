"""A real MCP server for tests, built with the ``mcp`` SDK (2.x ``MCPServer``, formerly FastMCP).

    python vistack/testing/mcp_server.py --port N [--transport streamable-http|sse] [--require-token TOKEN]
                                          [--sse-path /sse]

Binds 127.0.0.1 only. Tools: ``get_weather``, ``add``, ``lookup_invoice`` (structured),
``fail`` (raises: the client sees ``isError``) and ``slow`` (sleeps, for timeout tests).
``GET /stats`` reports how many handshakes (``initialize`` / ``server/discover``) the
server has seen, so tests can prove a client reused one session. Each handshake is also
logged to stderr. With ``--require-token`` every HTTP request without
``Authorization: Bearer TOKEN`` gets 401, ``/stats`` included.

Run it as a file (not ``-m``) so that starting it does not import ``vistack.testing``
(which loads torch); :func:`vistack.testing.mcp.run_mcp_server` does exactly that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Run as a file, this folder is sys.path[0], and its ``mcp.py`` (the test helper) would shadow the SDK.
if sys.path and sys.path[0] and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

HANDSHAKE_METHODS = ("initialize", "server/discover")
counts: Counter[str] = Counter()


def build_app(transport: str, token: str | None, sse_path: str = "/sse") -> Any:
    """The ASGI app: the MCP endpoint (``/mcp``, or ``sse_path`` + ``/messages/``) plus ``/stats``."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    server = MCPServer("vistack-test-mcp", log_level="WARNING")

    @server.tool()
    def get_weather(city: str) -> str:
        """Current weather for a city (deterministic)."""
        return f"Weather in {city}: 18°C, light rain"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def lookup_invoice(invoice_id: str) -> dict[str, Any]:
        """Look up an invoice by id (structured result)."""
        return {"invoice_id": invoice_id, "customer": "ACME Corp", "total": 1234.5, "currency": "EUR", "paid": False}

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails with the given reason (a ToolError, so the reason reaches the client)."""
        raise ToolError(f"tool failed: {reason}")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep for ``seconds`` (capped at 60), then answer."""
        await asyncio.sleep(min(max(seconds, 0.0), 60.0))
        return f"slept {seconds}s"

    @server.custom_route("/stats", methods=["GET"])
    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"handshakes": sum(counts[m] for m in HANDSHAKE_METHODS), "methods": dict(counts)})

    app = server.sse_app(sse_path=sse_path) if transport == "sse" else server.streamable_http_app()
    return _Guard(app, token)


class _Guard:
    """ASGI middleware: 401 without the bearer token; counts JSON-RPC methods of POST bodies."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.expected is not None and headers.get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
            return await send({"type": "http.response.body", "body": b"missing or invalid bearer token"})
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:  # bounded by the server's request size limit
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False) and message["type"] == "http.request"
        self._count(body)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    @staticmethod
    def _count(body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            return
        for msg in payload if isinstance(payload, list) else [payload]:
            method = msg.get("method") if isinstance(msg, dict) else None
            if isinstance(method, str):
                counts[method] += 1
                if method in HANDSHAKE_METHODS:
                    print(f"mcp-test-server: handshake {method} #{counts[method]}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--require-token", default=None)
    parser.add_argument("--sse-path", default="/sse", help="SSE endpoint path (another path tests the fallback)")
    args = parser.parse_args(argv)

    import uvicorn

    app = build_app(args.transport, args.require_token, args.sse_path)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
