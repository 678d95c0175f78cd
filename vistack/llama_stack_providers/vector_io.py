"""``inline::vistack-faiss``: Llama Stack's ``inline::faiss`` vector store that ingests through ``file_processors``.

Llama Stack 0.7's vector-store mixin (``OpenAIVectorStoreMixin.openai_attach_file_to_vector_store``)
chunks an attached file with ``self.file_processor_api`` when it is set, and with its own text
chunker otherwise; but none of Llama Stack's built-in vector_io providers declares the
``file_processors`` API as a dependency or passes it on, so with them a ``file_processors`` provider
is only reachable at ``/v1alpha/file-processors/process``. This provider is Llama Stack's own faiss
provider (same config, same code) with that one wire connected, so attaching a PDF to a vector store
stores vistack's page chunks (``inline::vistack-pdf``): page numbers, boxes and page images in every
search result's attributes. Without a ``file_processors`` provider it is plain ``inline::faiss``.
"""

from __future__ import annotations

from typing import Any

from llama_stack.providers.inline.vector_io.faiss import FaissVectorIOConfig
from llama_stack.providers.inline.vector_io.faiss import get_provider_impl as faiss_provider_impl
from llama_stack_api import Api

__all__ = ["FaissVectorIOConfig", "get_provider_impl"]


async def get_provider_impl(config: FaissVectorIOConfig, deps: dict[Api, Any]) -> Any:
    impl = await faiss_provider_impl(config, deps)
    impl.file_processor_api = deps.get(Api.file_processors)
    return impl
