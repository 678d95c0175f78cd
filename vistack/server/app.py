"""The FastAPI application: one router per API, a lifespan that runs the stack."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import vistack
from vistack.config import StackConfig
from vistack.metrics import Metrics, clear_current, set_current
from vistack.server.auth import Authenticator
from vistack.server.errors import install_error_handlers
from vistack.server.limits import RateLimiter
from vistack.server.middleware import RequestContextMiddleware
from vistack.server.observability import ObservabilityMiddleware
from vistack.server.routes import (
    conversations,
    files,
    inference,
    inspect,
    models,
    providers,
    responses,
    safety,
    vector_stores,
)
from vistack.server.routes.metrics import router as metrics_router
from vistack.server.webapp import mount_webapp
from vistack.stack import Stack


def create_app(config: StackConfig, stack: Stack | None = None) -> FastAPI:
    stack = stack or Stack(config)
    stack.build()  # configuration errors surface before the port opens

    metrics = Metrics()  # this app's own registry: tests build many apps in one process

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        set_current(metrics)  # before stack.start(): model slots and resumed ingestions record here
        try:
            await stack.start()
            try:
                yield
            finally:
                await stack.stop()
        finally:
            clear_current(metrics)

    app = FastAPI(
        title="vistack",
        version=vistack.__version__,
        description="Llama Stack-compatible API for visual document intelligence.",
        lifespan=lifespan,
    )
    app.state.stack = stack
    app.state.metrics = metrics
    install_error_handlers(app)
    for router in (inspect.router, providers.router, models.router, inference.router, files.router,
                   vector_stores.router, vector_stores.io_router, conversations.router, responses.router,
                   safety.router, metrics_router):
        app.include_router(router)
    if config.server.ui:
        mount_webapp(app)
    if config.server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.server.cors_origins, allow_methods=["*"], allow_headers=["*"])
    auth, limits = config.server.auth, config.server.limits
    per_key = {k.principal: k.requests_per_minute for k in (auth.api_keys if auth else []) if k.requests_per_minute}
    app.add_middleware(RequestContextMiddleware, max_request_bytes=config.server.max_request_bytes,
                       max_upload_bytes=config.server.max_upload_bytes,
                       authenticator=Authenticator(auth) if auth is not None else None,
                       limiter=RateLimiter(limits.requests_per_minute, limits.burst, per_key),
                       request_timeout_s=limits.request_timeout_s)
    # last added = outermost: request id and timing cover everything (401s, 413s and CORS included)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app
