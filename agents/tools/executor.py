"""The tools of one response: what the model is shown, which kind each call is, and MCP listing.

A request's ``tools`` mix three kinds the loop treats differently:
``function`` tools run on the client (the response ends with a
``function_call`` item), ``file_search`` and ``mcp`` tools run here, and
``web_search`` is offered only so a model that calls it learns it is not
available (the server has no internet access). MCP tools are listed at the
start of the response (an ``mcp_list_tools`` item per server) and shown to
the model under their own names, filtered by ``allowed_tools``. A server
that refuses the request's credentials fails the response with 401 (as
Llama Stack does); one that cannot be reached, with 503.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from vistack.api import AuthenticationError, BadRequestError, ServiceUnavailableError
from vistack.api.response_events import ResponseEvent
from vistack.api.responses import (
    AllowedToolsFilter,
    ApprovalFilter,
    FileSearchTool,
    FunctionTool,
    McpListedTool,
    McpListToolsItem,
    McpTool,
    Tool,
    ToolChoiceAllowed,
    ToolChoiceFileSearch,
    ToolChoiceFunction,
    ToolChoiceMcp,
    ToolChoiceMode,
    WebSearchTool,
    new_item_id,
)

from ..events import ResponseEvents
from ..items import FILE_SEARCH_TOOL
from .mcp import McpError, McpServerRef, McpSessions, McpToolInfo

ToolKind = Literal["function", "file_search", "mcp", "web_search"]
WEB_SEARCH_TOOL = "web_search"

_FILE_SEARCH_SCHEMA = {
    "type": "function",
    "function": {
        "name": FILE_SEARCH_TOOL,
        "description": "Search the user's documents (reports, slides, forms) and return the most relevant pages.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "what to look for"}},
            "required": ["query"],
        },
    },
}
_WEB_SEARCH_SCHEMA = {
    "type": "function",
    "function": {
        "name": WEB_SEARCH_TOOL,
        "description": "Search the web.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


@dataclass
class McpBinding:
    server: McpTool
    ref: McpServerRef
    info: McpToolInfo


class ToolSet:
    def __init__(self, tools: list[Tool] | None, sessions: McpSessions, mcp_timeout_s: float) -> None:
        self.sessions = sessions
        self.mcp_timeout_s = mcp_timeout_s
        self.file_search: FileSearchTool | None = None
        self.functions: dict[str, FunctionTool] = {}
        self.mcp_servers: list[McpTool] = []
        self.mcp: dict[str, McpBinding] = {}
        self.web_search = False
        for tool in tools or []:
            if isinstance(tool, FileSearchTool):
                if self.file_search is not None:
                    raise BadRequestError("give one file_search tool; list several vector_store_ids in it",
                                          param="tools")
                self.file_search = tool
            elif isinstance(tool, FunctionTool):
                self.functions[tool.name] = tool
            elif isinstance(tool, McpTool):
                if tool.headers and any(k.lower() == "authorization" for k in tool.headers):
                    raise BadRequestError(
                        f"Invalid value for 'tools[server_label={tool.server_label!r}].headers': Authorization. "
                        "Authorization credentials must be passed via the 'authorization' parameter, not 'headers'.",
                        param="tools",
                    )
                if tool.connector_id and not tool.server_url:
                    raise BadRequestError(
                        f"mcp tool '{tool.server_label}': connectors are not available on this server; give server_url",
                        param="tools",
                    )
                self.mcp_servers.append(tool)
            elif isinstance(tool, WebSearchTool):
                self.web_search = True

    # ----- MCP listing ---------------------------------------------------------------------------

    async def list_mcp(self, events: ResponseEvents) -> AsyncIterator[ResponseEvent]:
        """One ``mcp_list_tools`` item per server; an unreachable server fails the response (clearly, quickly)."""
        for server in self.mcp_servers:
            ref = self.ref(server)
            item = McpListToolsItem(id=new_item_id("mcpl"), server_label=server.server_label, tools=[])
            index, added = events.item_added(item)
            yield added
            yield events.progress("mcp_list_tools.in_progress", index, item.id)
            try:
                infos = await self.sessions.list_tools(ref)
            except McpError as e:
                yield events.progress("mcp_list_tools.failed", index, item.id)
                yield events.item_done(index, item.model_copy(update={"error": str(e)}))
                if e.kind == "auth":  # the client's `authorization` for that server was refused (Llama Stack: 401)
                    raise AuthenticationError(str(e), code="mcp_authentication_failed", param="tools") from e
                raise ServiceUnavailableError(str(e), code="mcp_server_unavailable") from e
            allowed = [i for i in infos if _allowed(server, i.name)]
            for info in allowed:
                if info.name in self.mcp or info.name in self.functions:
                    raise BadRequestError(
                        f"tool name '{info.name}' is offered twice (MCP server '{server.server_label}' and another "
                        "tool); restrict one with allowed_tools", param="tools")
                self.mcp[info.name] = McpBinding(server, ref, info)
            item = item.model_copy(update={"tools": [
                McpListedTool(name=i.name, description=i.description, input_schema=i.input_schema) for i in allowed
            ]})
            yield events.progress("mcp_list_tools.completed", index, item.id)
            yield events.item_done(index, item)

    def ref(self, server: McpTool) -> McpServerRef:
        return McpServerRef(label=server.server_label, url=server.server_url or "",
                            headers={k: str(v) for k, v in (server.headers or {}).items()},
                            authorization=server.authorization, timeout_s=self.mcp_timeout_s)

    def server(self, label: str) -> McpTool | None:
        return next((s for s in self.mcp_servers if s.server_label == label), None)

    # ----- what the model sees ---------------------------------------------------------------------

    def kind(self, name: str) -> ToolKind | None:
        if name in self.functions:
            return "function"
        if name in self.mcp:
            return "mcp"
        if name == FILE_SEARCH_TOOL and self.file_search is not None:
            return "file_search"
        if name == WEB_SEARCH_TOOL and self.web_search:
            return "web_search"
        return None

    def needs_approval(self, name: str) -> bool:
        binding = self.mcp[name]
        rule = binding.server.require_approval
        if rule == "always":
            return True
        if rule == "never":
            return False
        assert isinstance(rule, ApprovalFilter)
        always, never = _names(rule.always), _names(rule.never)
        if name in never:
            return False
        return name in always or always is None  # OpenAI: unlisted tools need approval under a filter

    def chat_tools(self, choice: Any, *, include_file_search: bool) -> tuple[list[dict[str, Any]] | None, Any]:
        """(tools, tool_choice) for a chat completion; ``None`` tools when the model must answer in text."""
        schemas: dict[str, dict[str, Any]] = {}
        for fn in self.functions.values():
            schemas[fn.name] = {"type": "function", "function": {
                "name": fn.name, "description": fn.description or "",
                "parameters": fn.parameters or {"type": "object", "properties": {}}}}
        for name, b in self.mcp.items():
            schemas[name] = {"type": "function", "function": {
                "name": name, "description": b.info.description or "", "parameters": b.info.input_schema
                or {"type": "object", "properties": {}}}}
        if include_file_search and self.file_search is not None:
            schemas[FILE_SEARCH_TOOL] = _FILE_SEARCH_SCHEMA
        if self.web_search:
            schemas[WEB_SEARCH_TOOL] = _WEB_SEARCH_SCHEMA
        chat_choice: Any = "auto"
        if choice is None or choice == ToolChoiceMode.auto:
            pass
        elif choice == ToolChoiceMode.none:
            return None, None
        elif choice == ToolChoiceMode.required:
            chat_choice = "required"
        elif isinstance(choice, ToolChoiceFunction):
            if choice.name not in schemas:
                raise BadRequestError(f"tool_choice names function '{choice.name}', which is not in tools",
                                      param="tool_choice")
            schemas = {choice.name: schemas[choice.name]}
            chat_choice = {"type": "function", "function": {"name": choice.name}}
        elif isinstance(choice, ToolChoiceMcp):
            names = [n for n, b in self.mcp.items() if b.server.server_label == choice.server_label
                     and (choice.name is None or n == choice.name)]
            if not names:
                raise BadRequestError(f"tool_choice names MCP server '{choice.server_label}'"
                                      f"{' tool ' + repr(choice.name) if choice.name else ''}, which offers no such "
                                      "tool", param="tool_choice")
            schemas = {n: schemas[n] for n in names}
            chat_choice = {"type": "function", "function": {"name": names[0]}} if len(names) == 1 else "required"
        elif isinstance(choice, ToolChoiceAllowed):
            wanted = {t.get("name") or t.get("type") for t in choice.tools}
            schemas = {n: s for n, s in schemas.items() if n in wanted or (n == FILE_SEARCH_TOOL and "file_search"
                                                                             in wanted)}
            chat_choice = choice.mode
        elif isinstance(choice, ToolChoiceFileSearch):
            schemas = {n: s for n, s in schemas.items() if n == FILE_SEARCH_TOOL}
            chat_choice = "required"
        return (list(schemas.values()) or None), (chat_choice if schemas else None)


def _names(value: Any) -> list[str] | None:
    """Approval filters come as a list of names (Llama Stack) or ``{"tool_names": [...]}`` (OpenAI)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return list(value.get("tool_names") or [])
    return list(value)


def _allowed(server: McpTool, name: str) -> bool:
    rule = server.allowed_tools
    if rule is None:
        return True
    if isinstance(rule, AllowedToolsFilter):
        return rule.tool_names is None or name in rule.tool_names
    return name in rule


def arguments_of(raw: str | None) -> dict[str, Any]:
    """A call's JSON arguments as a dict; anything else is the model's mistake, reported back to it."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"arguments are not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise TypeError("arguments must be a JSON object")
    return value
