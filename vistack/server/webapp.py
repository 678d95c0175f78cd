"""The web app for analysts, served as static files at ``/ui`` (same origin as the API, no build step).

The files hold no data: the app asks the caller for an API key when the server wants one and calls the
public ``/v1`` routes with it, like any client. So ``/ui`` is served without credentials, with a
Content-Security-Policy that keeps the page on this origin (no CDN, no inline script).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

UI_DIR = Path(__file__).with_name("ui") / "static"
UI_PREFIX = "/ui"
CSP = ("default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
# no-cache: revalidate (cheap, ETag) on every load, so an upgraded server never meets a mix of old and new
# ES modules in a browser's cache (a blank page: "does not provide an export named ...")
_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-cache")]


def is_public(path: str) -> bool:
    """The app's own files (and ``/``, which redirects to them) need no credentials: they hold no data."""
    return path == "/" or path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


class _UiFiles(StaticFiles):
    """StaticFiles with the security headers on every response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await super().__call__(scope, receive, with_headers)


def mount_webapp(app: FastAPI) -> None:
    app.mount(UI_PREFIX, _UiFiles(directory=UI_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/")
