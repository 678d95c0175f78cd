"""Request id, access log and request metrics: pure ASGI (no BaseHTTPMiddleware, nothing buffered).

Add it last (``app.add_middleware`` wraps, so the last one added is the
outermost) so it times and counts everything, body-size 413s included, and
its request id is set before any other middleware logs.

- ``X-Request-ID``: a sane incoming id (<= 128 of ``[A-Za-z0-9._-]``) is
  reused, anything else replaced by a new one; it is returned on the
  response and set in a context variable for every log line of the request
  (:mod:`vistack.logging_setup`), and in ``request.state.request_id``.
- access log: one line per request on the ``vistack.access`` logger (INFO;
  DEBUG for scrapes and health probes), with method, path, route template,
  status, duration_ms, bytes, request_id and principal as ``extra`` fields.
- metrics: ``vistack_requests_total{route,method,status}`` and
  ``vistack_request_duration_seconds{route,method}``; ``route`` is the
  matched route's template (``/v1/vector_stores/{vector_store_id}``), or
  ``unmatched`` when no route matched (404s, and requests refused before
  routing such as a 413 on Content-Length).

Durations run to the end of the response body, so a stream's duration is its
whole length; the body passes through untouched as it is produced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vistack.logging_setup import accept_request_id, principal_name, reset_request_id, set_request_id
from vistack.metrics import UNMATCHED_ROUTE, Metrics, current

access_log = logging.getLogger("vistack.access")

_REQUEST_ID = b"x-request-id"
QUIET_PATHS: frozenset[str] = frozenset({"/metrics", "/v1/health"})
"""Paths whose access line is logged at DEBUG: Prometheus scrapes and health probes every few seconds."""


class ObservabilityMiddleware:
    """Request id, access log line and request metrics for every HTTP request.

    ``metrics``: the app's :class:`Metrics` (or a callable returning them); without it,
    ``app.state.metrics`` of the serving app, else :func:`vistack.metrics.current`.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics | Callable[[], Metrics] | None = None,
        quiet_paths: Iterable[str] = QUIET_PATHS,
    ) -> None:
        self.app = app
        self._metrics = metrics
        self.quiet_paths = frozenset(quiet_paths)

    def metrics_for(self, scope: Scope) -> Metrics:
        m = self._metrics
        if isinstance(m, Metrics):
            return m
        if m is not None:
            return m()
        app = scope.get("app")
        found = getattr(getattr(app, "state", None), "metrics", None)
        return found if isinstance(found, Metrics) else current()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                incoming = value
                break
        request_id = accept_request_id(incoming)
        header_value = request_id.encode("ascii")
        scope.setdefault("state", {})["request_id"] = request_id
        token = set_request_id(request_id)

        start = time.perf_counter()
        status = 0
        sent_bytes = 0

        async def observed_send(message: Message) -> None:
            nonlocal status, sent_bytes
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                if not any(k.lower() == _REQUEST_ID for k, _ in headers):
                    headers.append((_REQUEST_ID, header_value))
                message = {**message, "headers": headers}
            elif kind == "http.response.body":
                sent_bytes += len(message.get("body", b""))
            await send(message)

        failed: BaseException | None = None
        try:
            await self.app(scope, receive, observed_send)
        except BaseException as e:
            failed = e
            raise
        finally:
            seconds = time.perf_counter() - start
            if status == 0:  # no response started: an unhandled error (answered 500 outside) or a disconnect
                status = 500 if not _is_cancel(failed) else 499
            try:
                self._record(scope, status, seconds, sent_bytes, request_id, failed)
            finally:
                reset_request_id(token)

    def _record(
        self, scope: Scope, status: int, seconds: float, sent_bytes: int, request_id: str, failed: BaseException | None
    ) -> None:
        method = scope.get("method", "")
        path = scope.get("path", "")
        route = _route_template(scope)
        self.metrics_for(scope).request(route, method, status, seconds)
        level = logging.DEBUG if path in self.quiet_paths and status < 400 else logging.INFO
        if failed is not None and not _is_cancel(failed):
            level = logging.ERROR
        if not access_log.isEnabledFor(level):
            return
        duration_ms = round(seconds * 1000.0, 2)
        access_log.log(
            level,
            "%s %s %d %.1fms",
            method,
            path,
            status,
            duration_ms,
            extra={
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "bytes": sent_bytes,
                "request_id": request_id,
                "principal": principal_name(),
                "client": _client(scope),
            },
        )


def _route_template(scope: Scope) -> str:
    """The matched route's path template (FastAPI puts the route in the scope when routing)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    if client:
        return str(client[0])
    return None


def _is_cancel(e: BaseException | None) -> bool:
    """The client went away (or the server is stopping): logged as 499, not as a server error."""
    return isinstance(e, asyncio.CancelledError)
