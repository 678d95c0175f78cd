"""Logging: one JSON object per line (or plain text), every line stamped with the request id and principal.

The request id lives in a context variable set by
:class:`vistack.server.observability.ObservabilityMiddleware`, so a line
logged anywhere while a request is served (a route, the inference router,
a provider) carries it; asyncio tasks started during the request inherit it
too (they copy the context). Work that outlives the request on its own
thread (the ingestion worker queue) logs without one.

Stdlib ``logging`` only: the JSON formatter is a few lines and needs no
dependency.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar, Token
from typing import IO, Any, Literal

REQUEST_ID_HEADER = "X-Request-ID"
NO_REQUEST = "-"

_request_id: ContextVar[str | None] = ContextVar("vistack_request_id", default=None)
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[str, ...] = ("json", "text")


# ----- request id ------------------------------------------------------------------------------------


def current_request_id() -> str | None:
    """The id of the request being served, ``None`` outside one."""
    return _request_id.get()


def set_request_id(request_id: str | None) -> Token:
    return _request_id.set(request_id)


def reset_request_id(token: Token) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(incoming: str | bytes | None) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token (<= 128 of ``[A-Za-z0-9._-]``), else a new id.

    Anything else (too long, spaces, quotes, control characters) is replaced rather
    than cleaned: it would otherwise land verbatim in logs and response headers.
    """
    if isinstance(incoming, bytes):
        try:
            incoming = incoming.decode("ascii")
        except UnicodeDecodeError:
            incoming = None
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def principal_name() -> str:
    """The current principal as a short string: its ``id`` when it has one, else ``str()`` of it.

    ``vistack.context.current_principal()`` may return a plain string or a richer
    object; logging must never fail because of it.
    """
    try:
        from vistack.context import current_principal

        principal = current_principal()
    except Exception:  # noqa: BLE001 - logging never raises
        return "-"
    if principal is None:
        return "-"
    if isinstance(principal, str):
        return principal
    ident = getattr(principal, "id", None)
    try:
        return str(ident) if ident is not None else str(principal)
    except Exception:  # noqa: BLE001
        return "-"


# ----- formatting ------------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", "request_id", "principal",
    "color_message",  # uvicorn's copy of the message with ANSI colours
}


class RequestContextFilter(logging.Filter):
    """Stamps ``request_id`` and ``principal`` on each record (unless ``extra=`` already did).

    Runs in the thread that logs, so it reads that thread's (or task's) context.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or NO_REQUEST
        if getattr(record, "principal", None) is None:
            record.principal = principal_name()
        return True


def _iso(created: float) -> str:
    return _dt.datetime.fromtimestamp(created, tz=_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, principal, extras, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id() or NO_REQUEST
        principal = getattr(record, "principal", None) or principal_name()
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id,
            "principal": principal,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=_fallback, ensure_ascii=False)


def _fallback(value: Any) -> Any:
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return f"<unprintable {type(value).__name__}>"


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def make_formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")


def configure_logging(level: str | int = "info", fmt: str = "text", *, stream: IO[str] | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one stream handler in ``fmt`` (``json`` or ``text``).

    Every line carries the request id (and, in JSON, the principal). Uvicorn's own
    loggers propagate here when uvicorn is run with ``log_config=None``. Returns
    the installed handler.
    """
    formatter = make_formatter(fmt)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if getattr(old, "_vistack", False):
            old.close()
    handler._vistack = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
