"""Responses API wire models (OpenAI Responses / Llama Stack 0.7 shapes).

Items are the unit of everything here: a request's ``input``, a response's
``output`` and a conversation's history are lists of the same item types,
so one set of models serves all three. Input models accept what the
official clients send (a message without ``type``, string content);
output models are exactly what OpenAI returns. vistack adds, on
``file_citation`` annotations, the cited ``page``, ``bbox`` and
``page_image_file_id`` (extra fields: clients that do not know them ignore them).
"""

from __future__ import annotations

import secrets
import time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .datatypes import ObjectList
from .vector_stores import RankingOptions

RESPONSE_ID_PREFIX = "resp_"


def new_item_id(prefix: str) -> str:
    """``msg_`` / ``fs_`` / ``fc_`` / ... + 48 hex, the id format OpenAI and Llama Stack use for items."""
    return f"{prefix}_{secrets.token_hex(24)}"


def new_response_id() -> str:
    return f"{RESPONSE_ID_PREFIX}{secrets.token_hex(24)}"


def now() -> int:
    return int(time.time())


class _Open(BaseModel):
    """Input side: unknown keys are kept (clients and ``extra_body`` add their own)."""

    model_config = ConfigDict(extra="allow")


# ----- content parts -----------------------------------------------------------------------------


class InputText(_Open):
    type: Literal["input_text"] = "input_text"
    text: str


class InputImage(_Open):
    """An image by data URL or ``https`` URL (``image_url``), or an uploaded file (``file_id``)."""

    type: Literal["input_image"] = "input_image"
    detail: Literal["low", "high", "auto"] = "auto"
    image_url: str | None = None
    file_id: str | None = None


class InputFile(_Open):
    type: Literal["input_file"] = "input_file"
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None

    @model_validator(mode="after")
    def _some_source(self) -> InputFile:
        if not any((self.file_id, self.file_data, self.file_url, self.filename)):
            raise ValueError("input_file needs one of file_id, file_data, file_url or filename")
        return self


class FileCitation(_Open):
    """OpenAI's ``file_citation`` (``index``: the character offset in the text it follows).

    vistack adds ``page`` (1-based), ``bbox`` ("x0,y0,x1,y1" in PDF points of the
    passage), ``page_size`` ("w,h" in PDF points: the frame bbox is in) and
    ``page_image_file_id`` (the page's PNG in the Files API).
    """

    type: Literal["file_citation"] = "file_citation"
    file_id: str
    filename: str
    index: int


class UrlCitation(_Open):
    type: Literal["url_citation"] = "url_citation"
    start_index: int
    end_index: int
    title: str
    url: str


class ContainerFileCitation(_Open):
    type: Literal["container_file_citation"] = "container_file_citation"
    container_id: str
    start_index: int
    end_index: int
    file_id: str
    filename: str


class FilePathAnnotation(_Open):
    type: Literal["file_path"] = "file_path"
    file_id: str
    index: int


Annotation = Annotated[
    FileCitation | UrlCitation | ContainerFileCitation | FilePathAnnotation, Field(discriminator="type")
]


class TopLogprob(_Open):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(_Open):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class OutputText(_Open):
    """``logprobs`` is always a list (empty unless asked for with ``include`` or ``top_logprobs``), as Llama Stack
    returns it."""

    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Annotation] = Field(default_factory=list)
    logprobs: list[TokenLogprob] | None = Field(default_factory=list)


class Refusal(_Open):
    type: Literal["refusal"] = "refusal"
    refusal: str


ContentPart = Annotated[InputText | InputImage | InputFile | OutputText | Refusal, Field(discriminator="type")]


# ----- items -------------------------------------------------------------------------------------


class MessageItem(_Open):
    """A message of any role; input messages may carry plain-string content."""

    type: Literal["message"] = "message"
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(
            p.text if isinstance(p, (InputText, OutputText)) else p.refusal if isinstance(p, Refusal) else ""
            for p in self.content
        )


class FileSearchResult(_Open):
    attributes: dict[str, Any] = Field(default_factory=dict)
    file_id: str
    filename: str
    score: float
    text: str


class FileSearchCallItem(_Open):
    type: Literal["file_search_call"] = "file_search_call"
    id: str
    queries: list[str]
    status: str
    results: list[FileSearchResult] | None = None


class FunctionCallItem(_Open):
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Open):
    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class McpListedTool(_Open):
    name: str
    input_schema: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None


class McpListToolsItem(_Open):
    type: Literal["mcp_list_tools"] = "mcp_list_tools"
    id: str
    server_label: str
    tools: list[McpListedTool]
    error: str | None = None


class McpCallItem(_Open):
    type: Literal["mcp_call"] = "mcp_call"
    id: str
    name: str
    arguments: str
    server_label: str
    error: str | None = None
    output: str | None = None
    approval_request_id: str | None = None


class McpApprovalRequestItem(_Open):
    type: Literal["mcp_approval_request"] = "mcp_approval_request"
    id: str
    name: str
    arguments: str
    server_label: str


class McpApprovalResponseItem(_Open):
    type: Literal["mcp_approval_response"] = "mcp_approval_response"
    approval_request_id: str
    approve: bool
    id: str | None = None
    reason: str | None = None


class WebSearchCallItem(_Open):
    type: Literal["web_search_call"] = "web_search_call"
    id: str
    status: str


class ReasoningSummary(_Open):
    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningItem(_Open):
    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[ReasoningSummary] = Field(default_factory=list)
    content: list[dict[str, Any]] | None = None
    status: str | None = None


Item = Annotated[
    MessageItem
    | FileSearchCallItem
    | FunctionCallItem
    | FunctionCallOutputItem
    | McpListToolsItem
    | McpCallItem
    | McpApprovalRequestItem
    | McpApprovalResponseItem
    | WebSearchCallItem
    | ReasoningItem,
    Field(discriminator="type"),
]

OutputItem = Annotated[
    MessageItem
    | FileSearchCallItem
    | FunctionCallItem
    | McpListToolsItem
    | McpCallItem
    | McpApprovalRequestItem
    | WebSearchCallItem
    | ReasoningItem,
    Field(discriminator="type"),
]


def default_item_type(value: Any) -> Any:
    """Clients may send ``{"role": ..., "content": ...}`` without ``type``: that is a message."""
    if isinstance(value, dict) and "type" not in value and "role" in value:
        return {**value, "type": "message"}
    return value


# ----- tools -------------------------------------------------------------------------------------


class FileSearchTool(_Open):
    type: Literal["file_search"] = "file_search"
    vector_store_ids: list[str] = Field(min_length=1)
    filters: dict[str, Any] | None = None
    max_num_results: int | None = Field(default=10, ge=1, le=50)
    ranking_options: RankingOptions | None = None


class FunctionTool(_Open):
    type: Literal["function"] = "function"
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ApprovalFilter(_Open):
    """Tool names as a list (Llama Stack) or ``{"tool_names": [...]}`` (OpenAI)."""

    always: list[str] | dict[str, Any] | None = None
    never: list[str] | dict[str, Any] | None = None


class AllowedToolsFilter(_Open):
    tool_names: list[str] | None = None


class McpTool(_Open):
    """``authorization`` is never echoed back (excluded from dumps)."""

    type: Literal["mcp"] = "mcp"
    server_label: str = Field(min_length=1)
    server_url: str | None = None
    connector_id: str | None = None
    headers: dict[str, Any] | None = None
    authorization: str | None = Field(default=None, exclude=True)
    require_approval: Literal["always", "never"] | ApprovalFilter = "never"
    allowed_tools: list[str] | AllowedToolsFilter | None = None

    @model_validator(mode="after")
    def _needs_url(self) -> McpTool:
        if not self.server_url and not self.connector_id:
            raise ValueError("an mcp tool needs server_url (or connector_id)")
        return self


class WebSearchTool(_Open):
    type: Literal["web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26"] = (
        "web_search"
    )
    search_context_size: str | None = None


Tool = Annotated[FileSearchTool | FunctionTool | McpTool | WebSearchTool, Field(discriminator="type")]


class ToolChoiceMode(StrEnum):
    auto = "auto"
    required = "required"
    none = "none"


class ToolChoiceFileSearch(_Open):
    type: Literal["file_search"] = "file_search"


class ToolChoiceFunction(_Open):
    type: Literal["function"] = "function"
    name: str


class ToolChoiceMcp(_Open):
    type: Literal["mcp"] = "mcp"
    server_label: str
    name: str | None = None


class ToolChoiceAllowed(_Open):
    type: Literal["allowed_tools"] = "allowed_tools"
    mode: Literal["auto", "required"] = "auto"
    tools: list[dict[str, Any]]


class ToolChoiceWebSearch(_Open):
    type: Literal["web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26"] = (
        "web_search"
    )


class ToolChoiceCustom(_Open):
    type: Literal["custom"] = "custom"
    name: str


ToolChoiceObject = Annotated[
    ToolChoiceFileSearch | ToolChoiceFunction | ToolChoiceMcp | ToolChoiceAllowed | ToolChoiceWebSearch
    | ToolChoiceCustom,
    Field(discriminator="type"),
]
ToolChoice = ToolChoiceMode | ToolChoiceObject


# ----- request -----------------------------------------------------------------------------------


class TextFormat(_Open):
    type: Literal["text", "json_schema", "json_object"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)


class TextConfig(_Open):
    format: TextFormat | None = None
    verbosity: str | None = None


class Reasoning(_Open):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class Prompt(_Open):
    id: str
    variables: dict[str, Any] | None = None
    version: str | None = None


class VisionOptions(_Open):
    """How retrieved page images reach the vision model (``extra_body={"vision": {...}}``).

    ``strategy``: ``top1`` (the best page), ``stitch`` (the top ``pages`` pages in one
    image), ``per_page`` (ask each page, then merge) or ``text`` (no images).
    """

    strategy: Literal["top1", "stitch", "per_page", "text"] | None = None
    pages: int | None = Field(default=None, ge=1, le=8)


class CreateResponseRequest(_Open):
    input: str | list[Item]
    model: str = Field(min_length=1)
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = True
    previous_response_id: str | None = None
    conversation: str | None = None
    store: bool | None = True
    stream: bool | None = False
    background: bool | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    max_output_tokens: int | None = Field(default=None, ge=16)
    max_tool_calls: int | None = Field(default=None, ge=1)
    max_infer_iters: int | None = Field(default=10, ge=1)
    truncation: Literal["auto", "disabled"] | None = None
    text: TextConfig | None = None
    include: list[str] | None = None
    metadata: dict[str, str] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=64)
    safety_identifier: str | None = Field(default=None, max_length=64)
    guardrails: list[str | dict[str, Any]] | None = None
    reasoning: Reasoning | None = None
    prompt: Prompt | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    vision: VisionOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _message_type_default(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("input"), list):
            value = {**value, "input": [default_item_type(i) for i in value["input"]]}
        return value


# ----- response ----------------------------------------------------------------------------------


class ResponseError(BaseModel):
    """``code`` is one of OpenAI's ResponseError codes (``server_error``, ``invalid_image``, ...)."""

    code: str
    message: str


class IncompleteDetails(BaseModel):
    reason: str


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)


ResponseStatus = Literal["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"]


class ModerationResult(BaseModel):
    """OpenAI's moderation result for a response's input or output (``type: moderation_result``)."""

    type: Literal["moderation_result"] = "moderation_result"
    model: str
    flagged: bool
    categories: dict[str, bool] = Field(default_factory=dict)
    category_scores: dict[str, float] = Field(default_factory=dict)
    category_applied_input_types: dict[str, list[str]] = Field(default_factory=dict)


class ModerationError(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str


class ResponseModeration(BaseModel):
    """OpenAI's ``response.moderation``: what the input and output shields found."""

    input: ModerationResult | ModerationError
    output: ModerationResult | ModerationError


class GuardrailResult(BaseModel):
    """What a guardrail did in a response (vistack extension): the input was refused, the answer was replaced
    by a refusal, or a retrieved page was kept from the model. Only shields that flagged something appear."""

    stage: Literal["input", "output", "retrieved"]
    shield_id: str
    action: Literal["refused", "dropped"]
    violation_type: Any = None
    user_message: str | None = None
    file_id: str | None = None
    filename: str | None = None
    page: int | None = None


class ResponseObject(BaseModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    completed_at: int | None = None
    model: str
    status: ResponseStatus
    output: list[OutputItem] = Field(default_factory=list)
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    background: bool | None = False
    instructions: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    tool_choice: ToolChoice | None = ToolChoiceMode.auto
    parallel_tool_calls: bool | None = True
    previous_response_id: str | None = None
    conversation: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    top_logprobs: int | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    truncation: str | None = None
    text: TextConfig = Field(default_factory=lambda: TextConfig(format=TextFormat(type="text")))
    usage: ResponseUsage | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    reasoning: Reasoning | None = None
    prompt: Prompt | None = None
    store: bool = True
    user: str | None = None
    moderation: ResponseModeration | None = Field(
        default=None, description="OpenAI's moderation of the input and output, when guardrails ran")
    guardrail_results: list[GuardrailResult] | None = Field(
        default=None, description="vistack extension: each shield that flagged something, and what it did")

    @property
    def output_text(self) -> str:
        return "".join(
            p.text
            for item in self.output
            if isinstance(item, MessageItem) and isinstance(item.content, list)
            for p in item.content
            if isinstance(p, OutputText)
        )


class ResponseWithInput(ResponseObject):
    """A list entry of ``GET /v1/responses``: the response and its input items."""

    input: list[Item] = Field(default_factory=list)


class ResponseList(ObjectList[ResponseWithInput]):
    """``GET /v1/responses``."""


class InputItemList(ObjectList[Item]):
    """``GET /v1/responses/{id}/input_items``."""


class ResponseDeleted(BaseModel):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True
