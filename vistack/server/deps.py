"""FastAPI dependencies: typed access to what the stack built for each API.

A getter raises a clear error when the distribution does not configure the
API a route needs, so routes never see ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from vistack.api import NotFoundError
from vistack.api.protocols import FilesProvider
from vistack.inference import InferenceRouter
from vistack.model_catalog import ModelCatalog
from vistack.stack import Stack

if TYPE_CHECKING:  # heavy modules load only when a distribution enables them
    from vistack.agents.conversations import ConversationsService
    from vistack.agents.responses import ResponsesProvider
    from vistack.rag.vector_stores import VectorStoreService


def get_stack(request: Request) -> Stack:
    return request.app.state.stack


def _not_configured(what: str, needs: str) -> NotFoundError:
    return NotFoundError(f"{what} is not enabled in this distribution: it needs {needs}", code="api_not_configured")


def get_models(request: Request) -> ModelCatalog:
    catalog = get_stack(request).models
    if catalog is None:
        raise _not_configured("the models API", "an inference provider")
    return catalog


def get_inference(request: Request) -> InferenceRouter:
    router = get_stack(request).inference
    if router is None:
        raise _not_configured("inference", "an inference provider")
    return router


def get_files(request: Request) -> FilesProvider:
    files = get_stack(request).files
    if files is None:
        raise _not_configured(
            "the Files API", "'files' in 'apis' and a provider under providers.files (e.g. provider_type: inline::localfs)"
        )
    return files


def get_vector_stores(request: Request) -> VectorStoreService:
    service = get_stack(request).vector_stores
    if service is None:
        raise _not_configured(
            "vector stores", "a files provider, a vector_io provider and an embedding model"
        )
    return service


def get_conversations(request: Request) -> ConversationsService:
    service = get_stack(request).conversations
    assert service is not None, "the conversations service exists in every started stack"
    return service


def get_responses(request: Request) -> ResponsesProvider:
    service = get_stack(request).responses
    if service is None:
        raise _not_configured("the Responses API", "a responses provider (provider_type: inline::builtin)")
    return service
