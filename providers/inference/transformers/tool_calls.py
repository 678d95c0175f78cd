"""Tool calls: which tools the model is shown, and parsing Llama 3.x JSON tool calls out of its text."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from typing import Any

from vistack.api import BadRequestError
from vistack.api.inference import ChatCompletionRequest, FunctionCall, ToolCall


def parse_tool_calls(text: str, tool_names: Collection[str] | None = None) -> list[ToolCall] | None:
    """Parse Llama 3.x JSON tool calls from generated text, or ``None`` if the text is not one.

    Accepts ``{"name": ..., "parameters": {...}}`` (the Llama 3.1/3.2 format), ``"arguments"``
    instead of ``"parameters"`` (as an object or a JSON string), an optional leading
    ``<|python_tag|>``, a ```json fence, several calls separated by ``;`` or newlines, or a JSON
    list of calls. When ``tool_names`` is given, a call naming an unknown tool means the text is
    ordinary content (a model asked for JSON output also writes ``{"name": ...}``).
    """
    s = text.strip()
    for tag in ("<|python_tag|>",):
        if s.startswith(tag):
            s = s[len(tag) :].strip()
    for end in ("<|eom_id|>", "<|eot_id|>"):
        s = s.removesuffix(end).strip()
    if s.startswith("```"):
        s = s.strip("`").strip()
        s = s.removeprefix("json").strip()
    if not s or s[0] not in "{[":
        return None
    decoder = json.JSONDecoder()
    objects: list[Any] = []
    pos = 0
    while pos < len(s):
        try:
            value, pos = decoder.raw_decode(s, pos)
        except json.JSONDecodeError:
            return None
        objects.extend(value if isinstance(value, list) else [value])
        while pos < len(s) and (s[pos].isspace() or s[pos] in ";,"):
            pos += 1
    calls: list[ToolCall] = []
    for obj in objects:
        if not isinstance(obj, dict):
            return None
        inner = obj.get("function")
        fn: dict[str, Any] = inner if isinstance(inner, dict) else obj
        name = fn.get("name")
        if not isinstance(name, str) or not name or not ({"parameters", "arguments"} & fn.keys()):
            return None
        if tool_names is not None and name not in tool_names:
            return None
        args = fn.get("parameters", fn.get("arguments"))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                return None
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return None
        calls.append(
            ToolCall(
                id=f"call_{uuid.uuid4().hex[:24]}",
                function=FunctionCall(name=name, arguments=json.dumps(args, ensure_ascii=False)),
            )
        )
    return calls or None


def active_tools(request: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    """The tools to show the model: none for tool_choice "none", only the named one for a forced choice.

    Nothing can force the model to call a tool here (no constrained decoding); "required" is best effort.
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


def tool_names(tools: list[dict[str, Any]]) -> set[str]:
    names = set()
    for t in tools:
        fn = t.get("function", t)
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


def call_arguments(tc: ToolCall) -> Any:
    """Tool-call arguments as a dict: templates serialize them with ``tojson``, so a JSON string would be double-encoded."""
    raw = tc.function.arguments or "{}"
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
