"""Llama Guard 3: the prompt from the model card, the one-image rule of the vision guard, verdict parsing."""

from __future__ import annotations

import pytest

from vistack.api.inference import ChatMessage
from vistack.providers.safety.llama_guard.prompt import build_guard_message, categories_for, guard_kind
from vistack.providers.safety.llama_guard.verdict import parse_verdict

IMG_OLD = "data:image/png;base64,T0xE"
IMG_NEW = "data:image/png;base64,TkVX"


def msg(role: str, text: str, *images: str) -> ChatMessage:
    if not images:
        return ChatMessage(role=role, content=text)
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in images] + [{"type": "text", "text": text}]
    return ChatMessage.model_validate({"role": role, "content": parts})


def test_text_guard_prompt_is_the_model_card_format() -> None:
    guard = build_guard_message([msg("system", "be nice"), msg("user", "How do I reset my password?")], "text")
    assert guard.role == "User" and guard.dropped_images == 0
    assert guard.message.role == "user" and isinstance(guard.message.content, str)
    assert guard.message.content == (
        "Task: Check if there is unsafe content in 'User' messages in conversations according our safety policy "
        "with the below categories.\n\n"
        "<BEGIN UNSAFE CONTENT CATEGORIES>\n"
        "S1: Violent Crimes.\nS2: Non-Violent Crimes.\nS3: Sex Crimes.\nS4: Child Exploitation.\n"
        "S5: Defamation.\nS6: Specialized Advice.\nS7: Privacy.\nS8: Intellectual Property.\n"
        "S9: Indiscriminate Weapons.\nS10: Hate.\nS11: Self-Harm.\nS12: Sexual Content.\nS13: Elections.\n"
        "S14: Code Interpreter Abuse.\n"
        "<END UNSAFE CONTENT CATEGORIES>\n\n"
        "<BEGIN CONVERSATION>\n\nUser: How do I reset my password?\n\n<END CONVERSATION>\n\n"
        "Provide your safety assessment for ONLY THE LAST User message in the above conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated categories."
    )  # the system message is an instruction, not conversation


def test_output_check_names_the_agent_and_vision_guard_has_no_s14() -> None:
    guard = build_guard_message([msg("user", "hi"), msg("assistant", "hello")], "vision", {"S6", "S13"})
    text = guard.message.text()
    assert guard.role == "Agent" and "'Agent' messages" in text and "ONLY THE LAST Agent message" in text
    assert "User: hi\n\nAgent: hello" in text
    assert "S14" not in text and "S6:" not in text and "S13:" not in text and "S12: Sexual Content." in text
    assert categories_for("text", {"S1"})[0] == "S2" and categories_for("vision")[-1] == "S13"


def test_vision_guard_gets_the_newest_user_image_first_and_drops_the_rest() -> None:
    conversation = [msg("user", "what is this?", IMG_OLD), msg("assistant", "a chart"),
                    msg("user", "and this page?", IMG_NEW)]
    guard = build_guard_message(conversation, "vision")
    assert guard.message.images() == [IMG_NEW] and guard.dropped_images == 1
    assert guard.message.content[0].type == "image_url" and guard.message.content[1].type == "text"
    text_only = build_guard_message(conversation, "text")  # a text guard cannot see images: it gets none
    assert text_only.message.images() == [] and text_only.dropped_images == 2


def test_guard_kind_and_nothing_to_check() -> None:
    assert guard_kind("meta-llama/Llama-Guard-3-11B-Vision") == "vision"
    assert guard_kind("Llama-Guard-3-8B") == "text" and guard_kind("my-guard", vision=True) == "vision"
    with pytest.raises(ValueError, match="at least one"):
        build_guard_message([msg("system", "only instructions")], "text")


@pytest.mark.parametrize(("answer", "status", "codes"), [
    ("safe", "safe", []),
    ("  safe\n", "safe", []),
    ("unsafe\nS1", "unsafe", ["S1"]),
    ("unsafe\nS10,S2, S10", "unsafe", ["S10", "S2"]),
    ("unsafe\nS6", "safe", []),  # excluded below: the deployment does not enforce S6
    ("unsafe\nS6,S9", "unsafe", ["S9"]),
    ("unsafe", "unparseable", []),
    ("unsafe\nS99", "unparseable", []),
    ("I think this is fine", "unparseable", []),
    ("", "unparseable", []),
])
def test_verdicts(answer: str, status: str, codes: list[str]) -> None:
    verdict = parse_verdict(answer, excluded={"S6"})
    assert (verdict.status, verdict.codes) == (status, codes) and verdict.raw == answer


def test_verdicts_become_llama_stack_shield_and_moderation_shapes() -> None:
    from vistack.providers.safety.llama_guard.verdict import REFUSAL, moderation_result, shield_response

    assert shield_response(parse_verdict("safe")).model_dump() == {"violation": None}
    blocked = shield_response(parse_verdict("unsafe\nS1,S10")).model_dump(mode="json")
    assert blocked == {"violation": {"violation_level": "error", "user_message": REFUSAL,
                                     "metadata": {"violation_type": "S1,S10", "categories": [
                                         "Violent Crimes", "Hate", "violence", "illicit/violent", "hate"]}}}
    result = moderation_result(parse_verdict("unsafe\nS10"))
    assert result.flagged and result.categories["Hate"] and not result.categories["Violent Crimes"]
    assert result.category_scores["Hate"] == 1.0 and result.category_applied_input_types["Hate"] == ["text"]
    assert len(result.categories) == 14 + 13 and result.categories["hate"] and not result.categories["violence"]
    assert result.metadata == {"violation_type": ["S10"]}
    clean = moderation_result(parse_verdict("safe"))
    assert not clean.flagged and not any(clean.categories.values()) and clean.user_message is None
    with pytest.raises(ValueError, match="policy"):
        shield_response(parse_verdict("maybe"))
