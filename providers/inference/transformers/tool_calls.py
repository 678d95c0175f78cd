"""Tool calls: which tools the model is shown, and how calls in the history reach the template.

Parsing the model's text into tool calls is shared with the agent loop and lives in
:mod:`vistack.tool_calls`; ``parse_tool_calls`` and ``tool_names`` are re-exported here.
"""

from __future__ import annotations

import json
from typing import Any

from vistack.api import BadRequestError
from vistack.api.inference import ChatCompletionRequest, ToolCall
from vistack.tool_calls import parse_tool_calls, tool_names

__all__ = ["active_tools", "call_arguments", "parse_tool_calls", "tool_names"]


def active_tools(request: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    """The tools to show the model: none for tool_choice "none", only the named one for a forced choice.

    ("required" and a named choice are then enforced by constrained decoding: see ``tool_call_spec``.)
    """
    if not request.tools or request.tool_choice == "none":
        return None
    choice = request.tool_choice
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        named = [t for t in request.tools if wanted in tool_names([t])]
        if not named:
            raise BadRequestError(f"tool_choice names function '{wanted}', which is not in tools.", param="tool_choice")
        return named
    return request.tools


def call_arguments(tc: ToolCall) -> Any:
    """Tool-call arguments as a dict: templates serialize them with ``tojson``, so a JSON string would be double-encoded."""
    raw = tc.function.arguments or "{}"
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
