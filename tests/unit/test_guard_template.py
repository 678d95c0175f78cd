"""A Llama Guard checkpoint's own template must not wrap a guard prompt that is already built."""

from __future__ import annotations

import pytest

from vistack.api.inference import ChatCompletionRequest, ChatMessage
from vistack.providers.inference.transformers.config import TransformersInferenceConfig
from vistack.providers.inference.transformers.loading import Loaded
from vistack.providers.inference.transformers.prompting import PromptBuilder
from vistack.providers.safety.llama_guard.prompt import build_guard_message
from vistack.testing.tiny_models import build_tiny_llama

# The shape of Llama Guard 3's HF template: it builds the task around the conversation itself.
GUARD_TEMPLATE = (
    "{{ bos_token }}<|start_header_id|>user<|end_header_id|>\n\n"
    "Task: Check if there is unsafe content in 'User' messages in conversations according our safety policy.\n"
    "<BEGIN CONVERSATION>\n{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "<END CONVERSATION><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)


@pytest.fixture(scope="module")
def guard_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    path = build_tiny_llama(tmp_path_factory.mktemp("tiny-guard"))
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = GUARD_TEMPLATE
    return tokenizer


def prompt_text(tokenizer, messages: list[ChatMessage]) -> str:
    loaded = Loaded(model=None, tokenizer=tokenizer, processor=None, architecture="LlamaForCausalLM", device="cpu",
                    context_length=None, eos_ids=[], pad_id=None)
    builder = PromptBuilder(TransformersInferenceConfig(sanitize_control_tokens=False))
    prepared = builder.prepare_chat(loaded, ChatCompletionRequest(model="guard", messages=messages), [], None)
    return tokenizer.decode(prepared.inputs["input_ids"][0])


def test_prebuilt_guard_prompt_is_sent_once(guard_tokenizer):
    guard = build_guard_message([ChatMessage(role="user", content="How do I bake bread?")], "text")
    text = prompt_text(guard_tokenizer, [guard.message])
    assert text.count("Task: Check if there is unsafe content") == 1
    assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nTask: Check")
    assert text.endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


def test_plain_conversation_still_uses_the_guard_template(guard_tokenizer):
    text = prompt_text(guard_tokenizer, [ChatMessage(role="user", content="How do I bake bread?")])
    assert "user: How do I bake bread?" in text and text.count("Task: Check") == 1
