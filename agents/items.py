"""Responses items <-> chat messages.

The agent talks to models through chat completions, so a response's
history (previous responses, conversation items, new input) becomes chat
messages here, and nothing else converts. Tool items from earlier turns
become an assistant tool call followed by its tool result, so the model
sees what it looked up. Vision models that attend to one image per call
(Llama 3.2 Vision) keep only the newest image; older ones become a
placeholder, so a long chat with several images stays answerable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vistack.api import BadRequestError
from vistack.api.inference import ChatMessage, FunctionCall, ImageContentPart, ImageURL, TextContentPart, ToolCall
from vistack.api.protocols import FilesProvider
from vistack.api.responses import (
    FileSearchCallItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    InputText,
    McpCallItem,
    MessageItem,
    OutputText,
    Refusal,
)
from vistack.context import current_principal
from vistack.images import bytes_to_data_url

FILE_SEARCH_TOOL = "file_search"
IMAGE_PLACEHOLDER = "[an earlier image, not shown again]"
MAX_HISTORY_RESULT_CHARS = 4000
_TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "application/json")


async def items_to_messages(items: Sequence[Any], files: FilesProvider | None) -> list[ChatMessage]:
    """Chat messages for ``items`` in order; consecutive tool calls share one assistant message."""
    messages: list[ChatMessage] = []
    for item in items:
        if isinstance(item, MessageItem):
            messages.append(await _message(item, files))
        elif isinstance(item, FunctionCallItem):
            _add_call(messages, ToolCall(id=item.call_id, function=FunctionCall(name=item.name, arguments=item.arguments)))
        elif isinstance(item, FunctionCallOutputItem):
            output = item.output if isinstance(item.output, str) else _parts_text(item.output)
            messages.append(ChatMessage(role="tool", tool_call_id=item.call_id, content=output))
        elif isinstance(item, FileSearchCallItem) and item.results:
            args = json.dumps({"query": " ".join(item.queries)})
            _add_call(messages, ToolCall(id=item.id, function=FunctionCall(name=FILE_SEARCH_TOOL, arguments=args)))
            text = "\n\n".join(f"[{r.filename}, page {r.attributes.get('page', '?')}] {r.text}" for r in item.results)
            messages.append(ChatMessage(role="tool", tool_call_id=item.id, content=text[:MAX_HISTORY_RESULT_CHARS]))
        elif isinstance(item, McpCallItem):
            _add_call(messages, ToolCall(id=item.id, function=FunctionCall(name=item.name, arguments=item.arguments)))
            result = item.output if item.error is None else f"error: {item.error}"
            messages.append(ChatMessage(role="tool", tool_call_id=item.id, content=result or ""))
        # mcp_list_tools, approvals, web_search_call and reasoning items carry nothing the model must re-read.
    return messages


def _add_call(messages: list[ChatMessage], call: ToolCall) -> None:
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant" and last.tool_calls and not last.text():
        last.tool_calls.append(call)
    else:
        messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))


async def _message(item: MessageItem, files: FilesProvider | None) -> ChatMessage:
    if isinstance(item.content, str):
        return ChatMessage(role=item.role, content=item.content)
    if item.role == "assistant":
        return ChatMessage(role="assistant", content=_parts_text(item.content))
    parts: list[Any] = []
    for p in item.content:
        if isinstance(p, (InputText, OutputText)):
            parts.append(TextContentPart(text=p.text))
        elif isinstance(p, Refusal):
            parts.append(TextContentPart(text=p.refusal))
        elif isinstance(p, InputImage):
            parts.append(ImageContentPart(image_url=ImageURL(url=await _image_url(p, files))))
        elif isinstance(p, InputFile):
            parts.append(await _file_part(p, files))
    if item.role in ("system", "developer"):
        return ChatMessage(role=item.role, content="".join(p.text for p in parts if isinstance(p, TextContentPart)))
    return ChatMessage(role=item.role, content=parts)


def _parts_text(parts: Sequence[Any]) -> str:
    return "".join(
        getattr(p, "text", None) or getattr(p, "refusal", None) or "" for p in parts if not isinstance(p, InputImage)
    )


async def _image_url(part: InputImage, files: FilesProvider | None) -> str:
    if part.image_url:
        return part.image_url
    if not part.file_id:
        raise BadRequestError("input_image needs image_url or file_id", code="invalid_image", param="input")
    if files is None:
        raise BadRequestError("input_image.file_id needs the Files API, which this distribution lacks", param="input")
    info = await files.get_file(part.file_id, current_principal())
    mime = info.content_type if (info.content_type or "").startswith("image/") else "image/png"
    return bytes_to_data_url(await files.read_bytes(part.file_id, current_principal()), mime)


async def _file_part(part: InputFile, files: FilesProvider | None) -> Any:
    """Text files are inlined; images become image parts; documents belong in a vector store."""
    if part.file_data:
        if part.file_data.startswith("data:image/"):
            return ImageContentPart(image_url=ImageURL(url=part.file_data))
        raise BadRequestError(
            "input_file.file_data is accepted for images only; upload documents and search them with file_search",
            param="input",
        )
    if not part.file_id or files is None:
        raise BadRequestError("input_file needs a file_id of an uploaded file", param="input")
    info = await files.get_file(part.file_id, current_principal())
    kind = info.content_type or ""
    if kind.startswith("image/"):
        data = await files.read_bytes(part.file_id, current_principal())
        return ImageContentPart(image_url=ImageURL(url=bytes_to_data_url(data, kind)))
    if kind.startswith(_TEXT_TYPES) or info.file.filename.lower().endswith((".txt", ".md", ".csv", ".json")):
        data = await files.read_bytes(part.file_id, current_principal())
        return TextContentPart(text=f"[file {info.file.filename}]\n{data.decode('utf-8', errors='replace')}")
    raise BadRequestError(
        f"input_file '{info.file.filename}' ({kind or 'unknown type'}) cannot be read inline; attach it to a "
        "vector store and use the file_search tool, which reads its pages and page images",
        param="input",
    )


def keep_newest_images(messages: list[ChatMessage], limit: int) -> list[ChatMessage]:
    """At most ``limit`` images in the conversation, the newest kept; earlier ones become a placeholder."""
    seen = 0
    out: list[ChatMessage] = []
    for m in reversed(messages):
        if isinstance(m.content, list) and any(isinstance(p, ImageContentPart) for p in m.content):
            parts = []
            for p in reversed(m.content):
                if isinstance(p, ImageContentPart):
                    seen += 1
                    parts.append(p if seen <= limit else TextContentPart(text=IMAGE_PLACEHOLDER))
                else:
                    parts.append(p)
            m = m.model_copy(update={"content": list(reversed(parts))})
        out.append(m)
    return list(reversed(out))


def last_user_text(messages: Sequence[ChatMessage]) -> str:
    """The newest user message's text: the question, and the default file_search query."""
    for m in reversed(messages):
        if m.role == "user" and m.text().strip():
            return m.text().strip()
    return ""
