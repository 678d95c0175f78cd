"""Llama 3.x tool calls written as text: parse them, and tell early whether a streamed text may be one.

Engines that run Llama without a tool parser (the in-process transformers provider, vLLM without
``--tool-call-parser``) return a tool call as plain assistant text. Llama 3.1/3.2/3.3 write it in
one of two forms (see meta-llama/llama-models ``prompt_format.md`` files):

- JSON: ``{"name": "get_weather", "parameters": {"city": "Paris"}}``, often after
  ``<|python_tag|>`` and ending with ``<|eom_id|>``; ``"arguments"`` (an object or a JSON string)
  instead of ``"parameters"``; ``{"type": "function", ...}`` or ``{"function": {...}}`` wrappers;
  several calls separated by ``;`` or newlines, or as a JSON list; a ```` ```json ```` fence.
- pythonic (Llama 3.2 1B/3B, 3.3, and 3.2 Vision with the system-prompt tool format):
  ``[get_weather(city="San Francisco", unit="celsius"), add(a=1, b=2)]``, with or without the
  brackets. It is read with :mod:`ast`, never evaluated: keyword arguments whose values are
  literals only (strings, numbers, booleans, ``None``, lists, dicts; JSON's ``true``/``false``/
  ``null`` spellings too).

The whole text must be the call(s): prose around JSON is an answer, not a call. Anything malformed
(truncated JSON, an unknown tool name when ``tool_names`` is given, positional or non-literal
arguments, built-in tool calls such as ``brave_search.call(query=...)``, code) parses to ``None``,
which callers treat as plain text. Nothing here raises.

This module depends only on :mod:`vistack.api`, so providers and the agent loop share it.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Callable, Collection, Iterable
from typing import Any

from vistack.api.inference import FunctionCall, ToolCall

__all__ = ["PYTHON_TAG", "could_be_tool_call", "parse_tool_calls", "tool_names"]

PYTHON_TAG = "<|python_tag|>"
_END_TOKENS = ("<|eom_id|>", "<|eot_id|>", "<|end_of_text|>")
_FENCE = "```"
_BARE_CALL = re.compile(r"[^\W\d]\w*\(")
_WORD = re.compile(r"[^\W\d]\w*")
_JSON_WORDS = {"true": True, "false": False, "null": None}


class StreamedToolCalls:
    """Tool calls arriving in chat chunks (OpenAI's ``delta.tool_calls``): pieces joined per call ``index``."""

    def __init__(self) -> None:
        self._slots: dict[int, dict[str, str]] = {}

    def add(self, deltas: list[dict[str, Any]] | None) -> None:
        for tc in deltas or []:
            slot = self._slots.setdefault(int(tc.get("index", 0) or 0), {"id": "", "name": "", "args": ""})
            fn = tc.get("function") or {}
            slot["id"] = tc.get("id") or slot["id"]
            slot["name"] += fn.get("name") or ""
            slot["args"] += fn.get("arguments") or ""

    def calls(self, *, named_only: bool = False, new_id: Callable[[], str] | None = None) -> list[ToolCall]:
        """The joined calls in index order; a call without an id gets ``new_id()`` (else ``None``)."""
        return [
            ToolCall(id=s["id"] or (new_id() if new_id else None),
                     function=FunctionCall(name=s["name"], arguments=s["args"] or "{}"))
            for _, s in sorted(self._slots.items()) if s["name"] or not named_only
        ]


class _NotACall(Exception):
    """Raised inside the parser; ``parse_tool_calls`` turns it into ``None``."""


def parse_tool_calls(text: str, tool_names: Collection[str] | None = None) -> list[ToolCall] | None:
    """The tool calls ``text`` consists of, or ``None`` when it is ordinary content.

    ``tool_names``: the offered tools; a call naming any other tool makes the whole text content (a
    model asked for JSON output also writes ``{"name": ...}``). ``None`` accepts any name. Each call
    gets a fresh ``call_...`` id and its arguments as a JSON object string.
    """
    try:
        found = _parse(text)
        if not found or (tool_names is not None and any(name not in tool_names for name, _ in found)):
            return None
        return [
            ToolCall(
                id=f"call_{uuid.uuid4().hex[:24]}",
                function=FunctionCall(name=name, arguments=json.dumps(args, ensure_ascii=False, allow_nan=False)),
            )
            for name, args in found
        ]
    except (_NotACall, SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None


def could_be_tool_call(text: str) -> bool:
    """Whether streamed ``text`` (the deltas so far, joined) may still turn out to be a tool call.

    A prefix check, for holding back text deltas: after leading whitespace, the text is empty, or
    starts with ``{``, ``[``, ``<|python_tag|>`` or ```` ``` ```` (or is a beginning of those two
    markers), or is a single word so far, or a word directly followed by ``(`` (a bare pythonic
    call). Once it returns ``False`` it stays ``False`` for every longer text, so a caller can stop
    asking and stream from then on; a ``True`` text is decided at the end by :func:`parse_tool_calls`.
    The cost for ordinary answers is holding back the first word.
    """
    lead = text.lstrip()
    if not lead or lead[0] in "{[":
        return True
    if lead.startswith((PYTHON_TAG, _FENCE)) or PYTHON_TAG.startswith(lead) or _FENCE.startswith(lead):
        return True
    return _WORD.fullmatch(lead) is not None or _BARE_CALL.match(lead) is not None


def tool_names(tools: Iterable[dict[str, Any]]) -> set[str]:
    """Function names of OpenAI-style ``tools`` (``{"type": "function", "function": {"name": ...}}``)."""
    names = set()
    for t in tools:
        fn = t.get("function", t)
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


# ----- parsing ---------------------------------------------------------------------------------------------


def _parse(text: str) -> list[tuple[str, dict[str, Any]]]:
    s = _unwrap(text)
    if not s:
        return []
    if s[0] in "{[":
        try:
            return [_from_object(o) for o in _json_values(s)]
        except (_NotACall, json.JSONDecodeError):
            pass  # a pythonic list, or a Python-literal dict ({'name': ...}); else not a call
    elif not _BARE_CALL.match(s):
        return []
    return _pythonic(s)


def _unwrap(text: str) -> str:
    """Strip whitespace, ``<|python_tag|>``, end-of-message tokens and a code fence."""
    s = text.strip()
    while s.startswith(PYTHON_TAG):
        s = s[len(PYTHON_TAG) :].lstrip()
    while s.endswith(_END_TOKENS):
        s = s[: s.rindex("<|")].rstrip()
    if s.startswith(_FENCE):
        if not s.endswith(_FENCE) or len(s) < 2 * len(_FENCE):
            raise _NotACall("unterminated code fence")
        s = s[len(_FENCE) : -len(_FENCE)].strip()
        lang = _WORD.match(s)
        if lang and lang.group().lower() in ("json", "python", "py", "tool_code"):
            s = s[lang.end() :].strip()
        s = s.removeprefix(PYTHON_TAG).lstrip()
    return s


def _json_values(s: str) -> list[Any]:
    """One or more JSON values separated by ``;``, ``,`` or whitespace; lists are flattened."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while pos < len(s):
        value, pos = decoder.raw_decode(s, pos)
        values.extend(value if isinstance(value, list) else [value])
        while pos < len(s) and (s[pos].isspace() or s[pos] in ";," or s.startswith(PYTHON_TAG, pos)):
            pos += len(PYTHON_TAG) if s.startswith(PYTHON_TAG, pos) else 1
    return values


def _from_object(obj: Any) -> tuple[str, dict[str, Any]]:
    """``{"name", "parameters"|"arguments"}``, possibly wrapped in ``{"function": {...}}``."""
    if not isinstance(obj, dict):
        raise _NotACall("not an object")
    inner = obj.get("function")
    fn: dict[str, Any] = inner if isinstance(inner, dict) else obj
    name = fn.get("name")
    if not isinstance(name, str) or not name or not ({"parameters", "arguments"} & fn.keys()):
        raise _NotACall("no name and parameters")
    args = fn.get("parameters", fn.get("arguments"))
    if isinstance(args, str):
        args = json.loads(args) if args.strip() else {}
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _NotACall("arguments are not an object")
    return name, args


def _pythonic(s: str) -> list[tuple[str, dict[str, Any]]]:
    """``[f(a=1), g(b="x")]``, ``f(a=1)``, ``f(a=1), g()``; also a Python-literal dict or list of dicts."""
    body = ast.parse(s, mode="eval").body
    items = body.elts if isinstance(body, (ast.List, ast.Tuple)) else [body]
    calls = []
    for item in items:
        if isinstance(item, ast.Call):
            if not isinstance(item.func, ast.Name) or item.args or any(k.arg is None for k in item.keywords):
                raise _NotACall("only name(keyword=literal, ...) calls")
            calls.append((item.func.id, {k.arg: _literal(k.value) for k in item.keywords if k.arg}))
        elif isinstance(item, ast.Dict):
            calls.append(_from_object(_literal(item)))
        else:
            raise _NotACall("not a call")
    return calls


def _literal(node: ast.expr) -> Any:
    """A JSON-able literal; anything else (names, calls, sets, bytes, operators) is not a call."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (str, int, float))):
        return node.value
    if isinstance(node, ast.Name) and node.id in _JSON_WORDS:
        return _JSON_WORDS[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            key = _literal(k) if k is not None else None
            if not isinstance(key, str):
                raise _NotACall("dict keys must be strings")
            out[key] = _literal(v)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _NotACall("sign on a non-number")
        return -value if isinstance(node.op, ast.USub) else value
    raise _NotACall(f"not a literal: {type(node).__name__}")
