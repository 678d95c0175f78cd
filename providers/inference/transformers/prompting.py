"""Requests → model inputs: images (via ``vistack.images``), the conversation, the chat template, raw prompts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vistack.api import BadRequestError
from vistack.api.inference import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    FileContentPart,
    ImageContentPart,
    TextContentPart,
)
from vistack.api.safety import LLAMA_GUARD_TASK_PREFIX
from vistack.images import decode_image_url, stitch_images

from .config import TransformersInferenceConfig
from .loading import Loaded
from .tool_calls import call_arguments


@dataclass
class Prepared:
    """Tokenized inputs for ``generate`` and the prompts' length in tokens (all of them, for usage)."""

    inputs: dict[str, Any]
    prompt_tokens: int
    longest_prompt: int = 0  # of a batch of prompts (left-padded to it): what must fit the context
    added_tokens: list[int] = field(default_factory=list)  # per prompt: leading tokens not in its text (a BOS)

    @property
    def context_tokens(self) -> int:
        return self.longest_prompt or self.prompt_tokens


class PromptBuilder:
    """Builds chat inputs as the provider config says (image policy, system merging, control tokens)."""

    def __init__(self, config: TransformersInferenceConfig) -> None:
        self.config = config
        self._sanitize_supported: dict[type, bool] = {}  # per tokenizer/processor class

    def decode_images(self, messages: list[ChatMessage]) -> list[Any]:
        urls = [u for m in messages for u in m.images()]
        cfg = self.config
        if len(urls) > cfg.max_images_per_request:
            raise BadRequestError(
                f"{len(urls)} images in one request; the limit is {cfg.max_images_per_request} (max_images_per_request).",
                param="messages",
            )
        if len(urls) > 1 and cfg.multi_image == "reject":
            raise BadRequestError(
                f"Llama 3.2 Vision attends to one image per request; got {len(urls)} images in the conversation. "
                "Send one image (e.g. the best-matching page), or have the operator set multi_image: stitch "
                "(compose them into one 1120x1120 grid) or multi_image: first in the inline::transformers config.",
                code="too_many_images",
                param="messages",
            )
        if cfg.multi_image == "first":
            urls = urls[:1]
        images = [
            decode_image_url(u, index=i, max_bytes=cfg.max_image_bytes, max_pixels=cfg.max_image_pixels)
            for i, u in enumerate(urls, start=1)
        ]
        if len(images) > 1:  # stitch
            images = [stitch_images(images, cfg.stitch_max_side)]
        return images

    def prepare_chat(
        self, loaded: Loaded, request: ChatCompletionRequest, images: list[Any], tools: list[dict] | None
    ) -> Prepared:
        from jinja2.exceptions import TemplateError

        target = loaded.processor or loaded.tokenizer
        if not getattr(target, "chat_template", None) and not getattr(loaded.tokenizer, "chat_template", None):
            raise BadRequestError(
                f"model '{request.model}' has no chat template; use /v1/completions with a raw prompt.", param="model"
            )
        conv = conversation(loaded, request, images)
        try:
            try:
                inputs = self._apply_template(loaded, conv, tools)
            except TemplateError:
                has_system = any(m["role"] == "system" for m in conv)
                if not (images and has_system and self.config.system_with_images == "merge"):
                    raise
                inputs = self._apply_template(loaded, _merge_system(conv), tools)
        except TemplateError as e:
            raise BadRequestError(
                f"the chat template of model '{request.model}' rejected the conversation: {e}", param="messages"
            ) from e
        except ValueError as e:
            if images and "image" in str(e):
                raise BadRequestError(
                    f"the prompt and the images do not line up for model '{request.model}': {e}. Llama 3.2 Vision's "
                    "template turns the first user message into plain text when tools are given, so put the image "
                    "in a later user message or send no tools.",
                    param="messages",
                ) from e
            raise BadRequestError(f"could not build the prompt for model '{request.model}': {e}") from e
        inputs = dict(inputs)
        inputs.pop("token_type_ids", None)  # some tokenizers return it; decoder-only generate() rejects it
        return Prepared(inputs=inputs, prompt_tokens=int(inputs["input_ids"].shape[1]))

    def _apply_template(self, loaded: Loaded, conv: list[dict], tools: list[dict] | None) -> Any:
        target = loaded.processor or loaded.tokenizer
        kwargs: dict[str, Any] = {
            "add_generation_prompt": True,
            "tokenize": True,
            "return_dict": True,
            "return_tensors": "pt",
        }
        if is_prebuilt_guard_prompt(target, conv):
            kwargs["chat_template"] = PLAIN_LLAMA3_TEMPLATE
        if tools:
            kwargs["tools"] = tools
        if self.config.sanitize_control_tokens and self._supports_sanitize(target):
            try:
                return target.apply_chat_template(conv, sanitize_control_tokens=True, **kwargs)
            except NotImplementedError:  # template writes no special tokens: nothing to protect
                pass
        return target.apply_chat_template(conv, **kwargs)

    def _supports_sanitize(self, target: Any) -> bool:
        kind = type(target)
        if kind not in self._sanitize_supported:
            import inspect

            params = inspect.signature(target.apply_chat_template).parameters
            self._sanitize_supported[kind] = "sanitize_control_tokens" in params
        return self._sanitize_supported[kind]


# Llama 3 headers and nothing else: what Llama Guard's own template produces around the prompt it builds.
PLAIN_LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}{{- '<|image|>' }}{%- elif part['type'] == 'text' %}{{- part['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)


def is_prebuilt_guard_prompt(target: Any, conv: list[dict]) -> bool:
    """A Llama Guard checkpoint (its template builds the guard prompt) asked with a prompt already built
    (vistack's ``inline::llama-guard``, Llama Stack's provider): wrapping it again would nest one guard
    prompt inside another, so the plain Llama 3 format is used instead."""
    template = getattr(target, "chat_template", None)
    if not isinstance(template, str) or "unsafe content" not in template.lower():
        return False
    if len(conv) != 1 or conv[0].get("role") != "user":
        return False
    text = "".join(p.get("text") or "" for p in _parts(conv[0])).lstrip()
    return text.startswith(LLAMA_GUARD_TASK_PREFIX)


def conversation(loaded: Loaded, request: ChatCompletionRequest, images: list[Any]) -> list[dict]:
    """OpenAI messages → the template's format: text parts plus {"type": "image"} placeholders."""
    remaining = list(images)  # one image left after the multi_image policy; placed at the first image part
    conv: list[dict[str, Any]] = []
    for m in request.messages:
        role = "system" if m.role == "developer" else m.role
        if any(isinstance(p, FileContentPart) for p in (m.content if isinstance(m.content, list) else [])):
            raise BadRequestError(
                "file content parts are not supported in chat; upload the file and use file_search, "
                "or send page images as image_url parts.",
                param="messages",
            )
        if m.images() and not loaded.is_vision:
            raise BadRequestError(
                f"model '{request.model}' ({loaded.architecture}) is text-only and cannot read images; "
                "use a vision model such as Llama 3.2 Vision.",
                param="messages",
            )
        if role == "user" and isinstance(m.content, list) and loaded.is_vision:
            parts: list[dict[str, Any]] = []
            for p in m.content:
                if isinstance(p, TextContentPart):
                    parts.append({"type": "text", "text": p.text})
                elif isinstance(p, ImageContentPart) and remaining:
                    parts.append({"type": "image", "image": remaining.pop(0)})
            conv.append({"role": role, "content": parts})
        elif role == "assistant" and m.tool_calls:
            msg: dict[str, Any] = {"role": "assistant", "content": m.text() or None}
            msg["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.function.name, "arguments": call_arguments(tc)},
                }
                for tc in m.tool_calls
            ]
            conv.append(msg)
        elif role == "tool":
            conv.append({"role": "tool", "content": m.text(), "tool_call_id": m.tool_call_id})
        else:
            conv.append({"role": role, "content": m.text()})
    if loaded.is_vision:
        token = getattr(loaded.processor, "image_token", "<|image|>")
        if any(token in (p.get("text") or "") for msg in conv for p in _parts(msg)):
            raise BadRequestError(f"message text may not contain the reserved token {token}.", param="messages")
    return conv


def prepare_completion(loaded: Loaded, request: CompletionRequest) -> tuple[Prepared, list[str]]:
    """Raw prompts (texts or token ids; several form one left-padded batch) → inputs, and each as text (``echo``)."""
    import torch

    tok = loaded.tokenizer
    prompt = request.prompt
    prompts: list[Any] = list(prompt) if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)) \
        else [prompt]
    if len(prompts) > 64:
        raise BadRequestError(f"at most 64 prompts per request; got {len(prompts)}.", param="prompt")
    ids_list, texts, added = [], [], []
    for one in prompts:
        if isinstance(one, str):
            add_special = not (tok.bos_token and one.startswith(tok.bos_token))
            encoded = tok(one, add_special_tokens=add_special, return_special_tokens_mask=add_special)
            ids = encoded["input_ids"]
            text = one
            # the special tokens the tokenizer put before the text (a BOS): context, not echoed text
            added.append(_leading_ones(encoded["special_tokens_mask"]) if add_special else 0)
        else:
            added.append(0)
            ids = list(one)
            vocab = len(tok)
            if any(not isinstance(i, int) or i < 0 or i >= vocab for i in ids):
                raise BadRequestError(f"prompt token ids must be integers in [0, {vocab}).", param="prompt")
            text = tok.decode(ids)
        if not ids:
            raise BadRequestError("the prompt is empty.", param="prompt")
        if loaded.is_vision:
            image_id = getattr(loaded.processor, "image_token_id", None)
            if image_id is not None and image_id in ids:
                raise BadRequestError(
                    "completions take no images; use /v1/chat/completions with an image_url part.", param="prompt"
                )
        ids_list.append(ids)
        texts.append(text)
    longest = max(len(ids) for ids in ids_list)
    pad = loaded.pad_id if loaded.pad_id is not None else loaded.eos_ids[0]
    # left padding: every prompt ends where generation starts
    input_ids = torch.tensor([[pad] * (longest - len(ids)) + ids for ids in ids_list], dtype=torch.long)
    mask = torch.tensor([[0] * (longest - len(ids)) + [1] * len(ids) for ids in ids_list], dtype=torch.long)
    prepared = Prepared(inputs={"input_ids": input_ids, "attention_mask": mask},
                        prompt_tokens=sum(len(ids) for ids in ids_list), longest_prompt=longest, added_tokens=added)
    return prepared, texts


def _parts(msg: dict[str, Any]) -> list[dict[str, Any]]:
    content = msg.get("content")
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if isinstance(content, str) else []


def _merge_system(conv: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Move system text into the first user turn, after its leading images (Llama 3.2 Vision's convention)."""
    system = "\n\n".join(m["content"] for m in conv if m["role"] == "system" and m.get("content"))
    rest = [dict(m) for m in conv if m["role"] != "system"]
    for m in rest:
        if m["role"] != "user":
            continue
        if isinstance(m["content"], list):
            parts = list(m["content"])
            at = next((i for i, p in enumerate(parts) if p.get("type") == "text"), len(parts))
            if at < len(parts):
                parts[at] = {"type": "text", "text": f"{system}\n\n{parts[at]['text']}"}
            else:
                parts.append({"type": "text", "text": system})
            m["content"] = parts
        else:
            m["content"] = f"{system}\n\n{m['content'] or ''}"
        break
    return rest


def _leading_ones(mask: list[int]) -> int:
    count = 0
    for flag in mask:
        if flag != 1:
            break
        count += 1
    return count
