"""vistack's providers as Llama Stack 0.7 *external providers* (``pip install "vistack[llama-stack]"``).

A Llama Stack ``run.yaml`` names them with ``module: vistack.llama_stack_providers``; Llama Stack then
imports ``vistack.llama_stack_providers.provider`` and takes the spec whose ``provider_type`` the entry
asks for from :func:`~vistack.llama_stack_providers.provider.get_provider_spec`. Every provider here is
a thin adapter from a Llama Stack provider protocol to a vistack provider; the work is vistack's:

- ``inline::vistack-transformers`` (``inference``): local Llama 3.2 Vision (Mllama) and any Hugging Face
  causal LM through ``inline::transformers`` — chat with text and images, streaming, completions.
- ``inline::vistack-llama-guard-vision`` (``safety``): ``inline::llama-guard`` (Llama Guard 3, text and
  vision), asking its guard model through *Llama Stack's* inference API.
- ``inline::vistack-pdf`` (``file_processors``): vistack's page reader (``vistack.rag.readers``): text
  blocks with boxes, tables as markdown, OCR, a rendered page image per page stored through Llama
  Stack's Files API, page-bounded chunks carrying ``page``, ``bbox`` and ``page_image_file_id``.
- ``inline::vistack-faiss`` (``vector_io``): Llama Stack's own ``inline::faiss``, handed the
  ``file_processors`` API so that attaching a file to a vector store ingests it with ``inline::vistack-pdf``
  (Llama Stack 0.7's vector-store mixin has that hook, but none of its built-in providers wires it).

Modules: ``provider`` (the specs), ``inference``, ``safety``, ``file_processor``, ``vector_io`` (one
adapter each, with its config and ``get_provider_impl``) and ``convert`` (pydantic objects between the
two projects' wire models, which are both OpenAI-shaped). vistack itself never imports this package.
Importing it is free; ``provider`` imports only ``llama_stack_api``'s spec types, and each adapter module
its vistack provider (torch and transformers still load only when a model does).
"""
