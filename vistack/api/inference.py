"""OpenAI-compatible inference wire models (as in Llama Stack 0.7 / OpenAI).

Request models allow extra keys (``extra_body``), because engines such as
vLLM accept their own sampling knobs and we pass them through.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# ----- message content parts -------------------------------------------------------------------


class TextContentPart(BaseModel, extra="allow"):
    type: Literal["text"] = "text"
    text: str


class ImageURL(BaseModel, extra="allow"):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageContentPart(BaseModel, extra="allow"):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


class FileRef(BaseModel, extra="allow"):
    file_id: str | None = None
    file_data: str | None = None
    filename: str | None = None


class FileContentPart(BaseModel, extra="allow"):
    type: Literal["file"] = "file"
    file: FileRef


ContentPart = TextContentPart | ImageContentPart | FileContentPart
MessageContent = str | list[ContentPart]


class FunctionCall(BaseModel, extra="allow"):
    name: str | None = None
    arguments: str | None = None


class ToolCall(BaseModel, extra="allow"):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel, extra="allow"):
    """One message of any role; validated loosely so engines may add fields."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: MessageContent | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text parts joined, images left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextContentPart))

    def images(self) -> list[str]:
        """URLs (usually data URLs) of the image parts, in order."""
        if not isinstance(self.content, list):
            return []
        return [p.image_url.url for p in self.content if isinstance(p, ImageContentPart)]


# ----- requests --------------------------------------------------------------------------------


class ChatCompletionRequest(BaseModel, extra="allow"):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1)
    parallel_tool_calls: bool | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    response_format: dict[str, Any] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**64)
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    user: str | None = None

    @property
    def max_new_tokens(self) -> int | None:
        """``max_completion_tokens`` wins over the older ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage_in_stream(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    prompt: str | list[str] | list[int] | list[list[int]]
    best_of: int | None = Field(default=None, ge=1)
    echo: bool | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: int | bool | None = None
    max_tokens: int | None = Field(default=None, ge=0)  # 0 with echo + logprobs: score the prompt only
    n: int | None = Field(default=None, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**64)
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    user: str | None = None
    suffix: str | None = None

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage_in_stream(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def texts(self) -> list[str]:
        """Inputs as strings; token-id inputs are rejected by providers that need text."""
        if isinstance(self.input, str):
            return [self.input]
        return [x for x in self.input if isinstance(x, str)]


# ----- responses -------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class AssistantMessage(BaseModel, extra="allow"):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(BaseModel, extra="allow"):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason | None = "stop"
    logprobs: dict[str, Any] | None = None


class ChatCompletion(BaseModel, extra="allow"):
    id: str = Field(default_factory=lambda: new_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None


class ChoiceDelta(BaseModel, extra="allow"):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChunkChoice(BaseModel, extra="allow"):
    index: int = 0
    delta: ChoiceDelta
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(BaseModel, extra="allow"):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel, extra="allow"):
    index: int = 0
    text: str
    finish_reason: FinishReason | None = "stop"
    logprobs: dict[str, Any] | None = None


class Completion(BaseModel, extra="allow"):
    """Both the full ``text_completion`` and each streamed chunk (OpenAI uses one shape)."""

    id: str = Field(default_factory=lambda: new_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str
    index: int


class EmbeddingUsage(BaseModel):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage = Field(default_factory=EmbeddingUsage)
