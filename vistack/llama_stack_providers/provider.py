"""The provider specs Llama Stack reads: ``module: vistack.llama_stack_providers`` in a run.yaml entry.

Llama Stack imports ``<module>.provider`` and calls ``get_provider_spec()``; from a list it keeps the
spec whose ``provider_type`` the run.yaml entry names. Importing this module is cheap (no torch, no
Llama Stack server code): each spec names the module with the adapter, imported only when used.
"""

from __future__ import annotations

from llama_stack_api import Api, InlineProviderSpec, ProviderSpec

_PKG = "vistack.llama_stack_providers"
_EXTRA = 'vistack[llama-stack]'


def get_provider_spec() -> list[ProviderSpec]:
    return [
        InlineProviderSpec(
            api=Api.inference,
            provider_type="inline::vistack-transformers",
            pip_packages=[_EXTRA],
            module=f"{_PKG}.inference",
            config_class=f"{_PKG}.inference.VistackTransformersConfig",
            description="Local Llama 3.2 Vision (Mllama) or any Hugging Face causal LM through vistack's "
            "inline::transformers: chat with text and images, streaming, completions.",
        ),
        InlineProviderSpec(
            api=Api.safety,
            provider_type="inline::vistack-llama-guard-vision",
            pip_packages=[_EXTRA],
            module=f"{_PKG}.safety",
            config_class="vistack.providers.safety.llama_guard.LlamaGuardConfig",
            api_dependencies=[Api.inference],
            description="vistack's Llama Guard 3 shields (11B Vision with images, 1B/8B text), the guard model "
            "asked through Llama Stack's inference API.",
        ),
        InlineProviderSpec(
            api=Api.file_processors,
            provider_type="inline::vistack-pdf",
            pip_packages=[_EXTRA],
            module=f"{_PKG}.file_processor",
            config_class=f"{_PKG}.file_processor.VistackPdfProcessorConfig",
            optional_api_dependencies=[Api.files],
            description="vistack's page reader: PDF text blocks with boxes, tables as markdown, OCR, a rendered "
            "image of every page (stored through the Files API), page-bounded chunks.",
        ),
        InlineProviderSpec(
            api=Api.vector_io,
            provider_type="inline::vistack-faiss",
            pip_packages=[_EXTRA, "faiss-cpu"],
            module=f"{_PKG}.vector_io",
            config_class="llama_stack.providers.inline.vector_io.faiss.FaissVectorIOConfig",
            api_dependencies=[Api.inference],
            optional_api_dependencies=[Api.files, Api.models, Api.file_processors],
            description="Llama Stack's inline::faiss, ingesting attached files through the file_processors API "
            "(e.g. inline::vistack-pdf).",
        ),
    ]
