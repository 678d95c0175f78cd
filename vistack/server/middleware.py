"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers streams and costs latency)."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vistack.api import VistackError
from vistack.context import ANONYMOUS, PROVIDER_DATA_HEADER, parse_provider_data, set_principal, set_provider_data
from vistack.server.errors import error_body

_PROVIDER_DATA = PROVIDER_DATA_HEADER.lower().encode()


class _TooLarge(StarletteHTTPException):
    """An HTTPException so FastAPI's body parsing re-raises it instead of answering 400."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


class RequestContextMiddleware:
    """Sets the principal and provider data for the request, and caps body size (413)."""

    def __init__(self, app: ASGIApp, max_request_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes or max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_provider_data = None
        declared_length = None
        limit, setting = self.max_request_bytes, "server.max_request_bytes"
        for name, value in scope["headers"]:
            if name == b"content-type" and value.startswith(b"multipart/"):
                limit, setting = self.max_upload_bytes, "server.max_upload_bytes"
            elif name == _PROVIDER_DATA:
                raw_provider_data = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    declared_length = int(value)
                except ValueError:
                    declared_length = None
        if declared_length is not None and declared_length > limit:
            await _send_error(send, 413, _too_large_message(declared_length, limit, setting))
            return
        try:
            data = parse_provider_data(raw_provider_data)
        except VistackError as e:
            await _send_error(send, e.status_code, e.message)
            return
        set_principal(ANONYMOUS)
        set_provider_data(data)

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(_too_large_message(received, limit, setting))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge as e:
            if not response_started:
                await _send_error(send, 413, e.detail)



def _too_large_message(size: int, limit: int, setting: str) -> str:
    return f"request body of {size} bytes exceeds the server limit of {limit} bytes ({setting} in the distribution)"


async def _send_error(send: Send, status: int, message: str) -> None:
    body = json.dumps(error_body(message, status)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
