"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers streams and costs latency)."""

from __future__ import annotations

import asyncio
import json
import re

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vistack.access import ANONYMOUS
from vistack.api import TooManyRequestsError, VistackError
from vistack.context import PROVIDER_DATA_HEADER, parse_provider_data, set_principal, set_provider_data
from vistack.server.auth import Authenticator, AuthFailure
from vistack.server.errors import error_body
from vistack.server.limits import RateLimiter
from vistack.server.webapp import is_public

_PROVIDER_DATA = PROVIDER_DATA_HEADER.lower().encode()


class _OpenPaths:
    """Without authentication, the same paths stay outside rate limits."""

    @staticmethod
    def is_open(path: str) -> bool:
        return path in ("/v1/health", "/v1/version") or is_public(path)


_OPEN = _OpenPaths()


class _TooLarge(StarletteHTTPException):
    """An HTTPException so FastAPI's body parsing re-raises it instead of answering 400."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


class _BadBody(StarletteHTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(status_code=400, detail=message)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def check_json_text(body: bytes) -> None:
    """Reject JSON whose strings hold an unpaired UTF-16 surrogate (``"\\ud800"``): Python's parser accepts
    it, but it is not Unicode, and it would break tokenizers, SQLite and every later read of a stored object."""
    if not _SURROGATE_ESCAPE.search(body):
        return
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return  # not JSON: the route's own parsing answers 400
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _BadBody("request body contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff without its "
                       "pair): strings must be valid Unicode") from None


class RequestContextMiddleware:
    """Authenticates the caller (401 before any body is read), sets the principal and provider data for the
    request, and caps body size (413)."""

    def __init__(self, app: ASGIApp, max_request_bytes: int, max_upload_bytes: int | None = None,
                 authenticator: Authenticator | None = None, limiter: RateLimiter | None = None,
                 request_timeout_s: float | None = None) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes or max_request_bytes
        self.authenticator = authenticator
        self.limiter = limiter if limiter is not None and limiter.active else None
        self.request_timeout_s = request_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_provider_data = None
        authorization = None
        declared_length = None
        is_json = False
        limit, setting = self.max_request_bytes, "server.max_request_bytes"
        for name, value in scope["headers"]:
            if name == b"content-type" and value.startswith(b"multipart/"):
                limit, setting = self.max_upload_bytes, "server.max_upload_bytes"
            elif name == b"content-type" and b"json" in value:
                is_json = True
            elif name == _PROVIDER_DATA:
                raw_provider_data = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    declared_length = int(value)
                except ValueError:
                    declared_length = None
        principal = ANONYMOUS
        guarded = scope["method"] != "OPTIONS" and not (self.authenticator or _OPEN).is_open(scope["path"])
        if self.authenticator is not None and guarded:
            try:
                principal = await self.authenticator.authenticate(authorization)
            except AuthFailure as e:
                await _send_error(send, 401, e.message, code=e.code, headers=[(b"www-authenticate", e.challenge.encode())])
                return
        if self.limiter is not None and guarded:
            try:
                self.limiter.check(principal.id)
            except TooManyRequestsError as e:
                await _send_error(send, 429, e.message, code=e.code,
                                  headers=[(k.lower().encode(), v.encode()) for k, v in e.headers().items()])
                return
        if declared_length is not None and declared_length > limit:
            await _send_error(send, 413, _too_large_message(declared_length, limit, setting))
            return
        try:
            data = parse_provider_data(raw_provider_data)
        except VistackError as e:
            await _send_error(send, e.status_code, e.message)
            return
        set_principal(principal)
        set_provider_data(data)

        received = 0
        response_started = False

        body = bytearray() if is_json else None

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise _TooLarge(_too_large_message(received, limit, setting))
                if body is not None:
                    body.extend(chunk)
                    if not message.get("more_body", False):
                        check_json_text(bytes(body))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            async with asyncio.timeout(self.request_timeout_s) as deadline:
                async def started_send(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        deadline.reschedule(None)  # a started response (a stream) is no longer on the clock
                    await tracking_send(message)

                await self.app(scope, limited_receive, started_send)
        except _TooLarge as e:
            if not response_started:
                await _send_error(send, 413, e.detail)
        except _BadBody as e:
            if not response_started:
                await _send_error(send, 400, e.detail, code="invalid_unicode")
        except TimeoutError:
            if not response_started:
                await _send_error(send, 504, f"the request did not complete within {self.request_timeout_s:g} s "
                                             "(server.limits.request_timeout_s)", code="timeout")



def _too_large_message(size: int, limit: int, setting: str) -> str:
    return f"request body of {size} bytes exceeds the server limit of {limit} bytes ({setting} in the distribution)"


async def _send_error(send: Send, status: int, message: str, code: str | None = None,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(message, status, code)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})
