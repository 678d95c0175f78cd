"""Agents: the Responses API over Llama 3.2 Vision, with visual RAG.

Modules: ``responses`` (the ``inline::builtin`` responses provider: create, get,
list, cancel, persistence), ``conversations`` (the Conversations service),
``loop`` (one response: model <-> tools), ``events`` (the event stream and its
sequence numbers), ``items`` (items <-> chat messages), ``visual`` (page images
-> one image per model call), ``citations``, ``store`` (stored responses),
``background`` (queued responses), ``config``, and ``tools/`` (``file_search``,
``mcp``, ``executor``).
"""
