"""FastAPI dependencies: the running stack and its parts."""

from __future__ import annotations

from fastapi import Request

from vistack.model_catalog import ModelCatalog
from vistack.stack import Stack


def get_stack(request: Request) -> Stack:
    return request.app.state.stack


def get_models(request: Request) -> ModelCatalog:
    catalog = request.app.state.stack.models
    assert catalog is not None, "stack not started"
    return catalog
