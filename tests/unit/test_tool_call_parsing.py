"""``vistack.tool_calls`` on recorded Llama 3.x outputs and on hand-written edge cases.

The recorded outputs (``data/llama32_tool_outputs.json``) come from llama-stack's integration-test
recordings and from meta-llama/llama-models' generated prompt-format docs; each names its source.
The hand-written cases (``data/tool_call_edge_cases.json``) cover forms and failures the recordings lack.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from vistack.tool_calls import could_be_tool_call, parse_tool_calls, tool_names

DATA = Path(__file__).parent / "data"
RECORDED: list[dict[str, Any]] = json.loads((DATA / "llama32_tool_outputs.json").read_text())["recorded"]
HAND_WRITTEN: list[dict[str, Any]] = json.loads((DATA / "tool_call_edge_cases.json").read_text())["hand_written"]


def _check(case: dict[str, Any]) -> None:
    names = None if case["tool_names"] is None else set(case["tool_names"])
    calls = parse_tool_calls(case["text"], names)
    if case["expect"] == "text":
        assert calls is None, case
        return
    assert calls is not None, case
    got = [{"name": c.function.name, "arguments": json.loads(c.function.arguments or "")} for c in calls]
    assert got == case["expect"]
    for c in calls:
        assert c.type == "function" and re.fullmatch(r"call_[0-9a-f]{24}", c.id or "")
    assert len({c.id for c in calls}) == len(calls)


@pytest.mark.parametrize("case", RECORDED, ids=[f"{i}-{c['note'][:40]}" for i, c in enumerate(RECORDED)])
def test_recorded_outputs(case: dict[str, Any]) -> None:
    assert case["source"]
    _check(case)


@pytest.mark.parametrize("case", HAND_WRITTEN, ids=[c["note"] for c in HAND_WRITTEN])
def test_hand_written_edge_cases(case: dict[str, Any]) -> None:
    _check(case)


def test_recorded_set_is_real_and_varied() -> None:
    assert len(RECORDED) >= 15
    assert any("llama-stack" in c["source"] for c in RECORDED) and any("llama-models" in c["source"] for c in RECORDED)
    texts = [c["text"] for c in RECORDED]
    assert any(t.startswith("<|python_tag|>") for t in texts) and any(t.startswith("[") for t in texts)
    assert any(c["expect"] != "text" for c in RECORDED) and any(c["expect"] == "text" for c in RECORDED)


@pytest.mark.parametrize("text", ["[" * 5000, '{"a": ' * 5000, "[f(x=" * 3000, "\x00", "<|python_tag|>", "```"])
def test_pathological_inputs_are_text(text: str) -> None:
    assert parse_tool_calls(text) is None


def test_arguments_are_json_objects_never_evaluated() -> None:
    (call,) = parse_tool_calls('[add(a=1, note="it\'s")]', {"add"}) or []
    assert json.loads(call.function.arguments or "") == {"a": 1, "note": "it's"}
    assert parse_tool_calls("[add(a=__import__('os').system('true'))]", {"add"}) is None


def test_tool_names_reads_openai_tools() -> None:
    tools = [{"type": "function", "function": {"name": "a"}}, {"name": "b"}, {"type": "function"}, {"function": 3}]
    assert tool_names(tools) == {"a", "b"}


# ----- streaming prefix check ------------------------------------------------------------------------------

UNDECIDED = [
    "",
    "  \n",
    "{",
    ' {"name',
    "[",
    "[get_weather(",
    "<",
    "<|py",
    "<|python_tag|>",
    "<|python_tag|>{",
    "`",
    "``",
    "```json\n{",
    "The",
    "get_weather",
    "get_weather(city=",
    "\n  Hello",
]
DECIDED_TEXT = ["The ", "The weather", "Hello,", "42 is", "1abc", "<b>", "<|eot_id|>", "(", "`x`", "get_weather ("]


@pytest.mark.parametrize("text", UNDECIDED)
def test_could_be_tool_call_while_undecided(text: str) -> None:
    assert could_be_tool_call(text)


@pytest.mark.parametrize("text", DECIDED_TEXT)
def test_could_be_tool_call_decides_text_early(text: str) -> None:
    assert not could_be_tool_call(text)


@pytest.mark.parametrize(
    "case", [c for c in RECORDED + HAND_WRITTEN if c["expect"] != "text"], ids=lambda c: c["note"][:40]
)
def test_every_prefix_of_a_call_is_held_back(case: dict[str, Any]) -> None:
    """Streamed piece by piece, a tool call is never released as text before it is complete."""
    text = case["text"]
    assert all(could_be_tool_call(text[:i]) for i in range(len(text) + 1))


@pytest.mark.parametrize("case", RECORDED + HAND_WRITTEN, ids=lambda c: c["note"][:40])
def test_once_text_always_text(case: dict[str, Any]) -> None:
    """Monotonic: after the first prefix that cannot be a call, no longer prefix can be one."""
    text = case["text"]
    verdicts = [could_be_tool_call(text[:i]) for i in range(0, len(text) + 1, max(1, len(text) // 200))]
    assert verdicts == sorted(verdicts, reverse=True)
