"""The FastAPI application: one router per API, a lifespan that runs the stack."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import vistack
from vistack.config import StackConfig
from vistack.server.errors import install_error_handlers
from vistack.server.middleware import RequestContextMiddleware
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
from vistack.stack import Stack


def create_app(config: StackConfig, stack: Stack | None = None) -> FastAPI:
    stack = stack or Stack(config)
    stack.build()  # configuration errors surface before the port opens

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await stack.start()
        try:
            yield
        finally:
            await stack.stop()

    app = FastAPI(
        title="vistack",
        version=vistack.__version__,
        description="Llama Stack-compatible API for visual document intelligence.",
        lifespan=lifespan,
    )
    app.state.stack = stack
    install_error_handlers(app)
    for router in (inspect.router, providers.router, models.router, inference.router, files.router,
                   vector_stores.router, vector_stores.io_router, conversations.router, responses.router,
                   safety.router):
        app.include_router(router)
    if config.server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.server.cors_origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(RequestContextMiddleware, max_request_bytes=config.server.max_request_bytes,
                       max_upload_bytes=config.server.max_upload_bytes)
    return app
