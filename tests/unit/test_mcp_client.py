"""The MCP tool client (vistack.agents.tools.mcp) against a real MCP server subprocess.

The server is ``vistack/testing/mcp_server.py`` (the SDK's MCPServer behind uvicorn on
127.0.0.1), started by ``vistack.testing.mcp.run_mcp_server``. Nothing is mocked: transport,
handshake, auth rejection and timeouts all go over real loopback HTTP.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import anyio
import mcp_types as types
import pytest

from vistack.agents.tools.mcp import McpCallResult, McpError, McpServerRef, McpSessions, _render
from vistack.testing.mcp import mcp_server_stats, run_mcp_server
from vistack.testing.server import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

TOKEN = "s3cret-token"
TOOLS = {"get_weather", "add", "lookup_invoice", "fail", "slow"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with run_mcp_server() as url:
        yield url


@pytest.fixture(scope="module")
def sse_url() -> Iterator[str]:
    with run_mcp_server("sse") as url:
        yield url


def ref(url: str, **kw) -> McpServerRef:
    return McpServerRef(label=kw.pop("label", "test"), url=url, **{"timeout_s": 10.0, **kw})


async def test_list_tools_names_and_schemas(http_url: str) -> None:
    async with McpSessions() as sessions:
        tools = {t.name: t for t in await sessions.list_tools(ref(http_url))}
    assert set(tools) == TOOLS
    weather = tools["get_weather"]
    assert weather.description and "weather" in weather.description.lower()
    assert weather.input_schema["type"] == "object"
    assert weather.input_schema["properties"]["city"]["type"] == "string"
    assert weather.input_schema["required"] == ["city"]
    assert {k: v["type"] for k, v in tools["add"].input_schema["properties"].items()} == {"a": "integer", "b": "integer"}


async def test_call_tools_outputs(http_url: str) -> None:
    server = ref(http_url)
    async with McpSessions() as sessions:
        weather = await sessions.call_tool(server, "get_weather", {"city": "Paris"})
        total = await sessions.call_tool(server, "add", {"a": 2, "b": 40})
        invoice = await sessions.call_tool(server, "lookup_invoice", {"invoice_id": "INV-7"})
    assert weather == McpCallResult(output="Weather in Paris: 18°C, light rain", is_error=False)
    assert total == McpCallResult(output="42", is_error=False)
    assert not invoice.is_error
    assert json.loads(invoice.output) == {
        "invoice_id": "INV-7", "customer": "ACME Corp", "total": 1234.5, "currency": "EUR", "paid": False}


async def test_failing_tool_is_a_result_not_an_exception(http_url: str) -> None:
    async with McpSessions() as sessions:
        result = await sessions.call_tool(ref(http_url), "fail", {"reason": "disk on fire"})
    assert result.is_error
    assert "disk on fire" in result.output


async def test_unknown_tool_raises(http_url: str) -> None:
    # McpError, not is_error: the client checks the name against the server's listing before
    # calling, so a hallucinated tool name is told apart from a tool that ran and failed.
    async with McpSessions() as sessions:
        with pytest.raises(McpError) as info:
            await sessions.call_tool(ref(http_url, label="docs"), "no_such_tool", {})
    assert info.value.kind == "unknown_tool"
    message = str(info.value)
    assert "'docs'" in message and http_url in message and "no_such_tool" in message and "get_weather" in message


async def test_one_session_per_server_is_reused(http_url: str) -> None:
    before = mcp_server_stats(http_url)["handshakes"]
    async with McpSessions() as sessions:
        a, b = ref(http_url, label="a"), ref(http_url, label="b")  # same url and headers: same session
        await sessions.list_tools(a)
        await sessions.call_tool(a, "add", {"a": 1, "b": 1})
        await sessions.call_tool(b, "get_weather", {"city": "Oslo"})
        await sessions.call_tool(a, "add", {"a": 2, "b": 2})
        assert mcp_server_stats(http_url)["handshakes"] == before + 1
        other = ref(http_url, headers={"X-Tenant": "t2"})  # different headers: its own session
        await sessions.call_tool(other, "add", {"a": 3, "b": 3})
        assert mcp_server_stats(http_url)["handshakes"] == before + 2
    async with McpSessions() as sessions:  # a new response opens a new session
        await sessions.list_tools(a)
    assert mcp_server_stats(http_url)["handshakes"] == before + 3


async def test_concurrent_calls_from_child_tasks_share_one_session(http_url: str) -> None:
    before = mcp_server_stats(http_url)["handshakes"]
    results: dict[int, McpCallResult] = {}
    async with McpSessions() as sessions:

        async def call(i: int) -> None:
            results[i] = await sessions.call_tool(ref(http_url), "add", {"a": i, "b": 100})

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(call, i)
    assert {i: r.output for i, r in results.items()} == {i: str(i + 100) for i in range(6)}
    assert mcp_server_stats(http_url)["handshakes"] == before + 1


async def test_sse_transport(sse_url: str) -> None:
    assert sse_url.endswith("/sse")
    server = ref(sse_url)
    async with McpSessions() as sessions:
        assert {t.name for t in await sessions.list_tools(server)} == TOOLS
        assert (await sessions.call_tool(server, "add", {"a": 5, "b": 6})).output == "11"
        assert (await sessions.call_tool(server, "fail", {"reason": "nope"})).is_error


async def test_falls_back_to_sse_when_streamable_http_is_refused() -> None:
    with run_mcp_server("sse", sse_path="/events") as url:  # POST /events -> 405: an SSE-only server
        async with McpSessions() as sessions:
            result = await sessions.call_tool(ref(url), "get_weather", {"city": "Rome"})
    assert result.output == "Weather in Rome: 18°C, light rain"


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_token_required(transport: str) -> None:
    with run_mcp_server(transport, token=TOKEN) as url:  # type: ignore[arg-type]
        async with McpSessions() as sessions:
            with pytest.raises(McpError) as info:
                await sessions.list_tools(ref(url, label="crm"))
            assert info.value.kind == "auth"
            assert "401" in str(info.value) and "credentials" in str(info.value)
            assert "`authorization`" in str(info.value) and "'crm'" in str(info.value)
            with pytest.raises(McpError, match="401"):
                await sessions.list_tools(ref(url, authorization="wrong"))
            assert (await sessions.call_tool(ref(url, authorization=TOKEN), "add", {"a": 1, "b": 2})).output == "3"
            # an "authorization" that already says "Bearer " is not doubled
            bearer = ref(url, authorization=f"Bearer {TOKEN}")
            assert bearer.http_headers()["Authorization"] == f"Bearer {TOKEN}"
            assert (await sessions.call_tool(bearer, "add", {"a": 2, "b": 2})).output == "4"


async def test_unreachable_port_fails_fast() -> None:
    server = ref(f"http://127.0.0.1:{free_port()}/mcp", label="gone", timeout_s=3.0)
    start = time.monotonic()
    async with McpSessions() as sessions:
        with pytest.raises(McpError) as info:
            await sessions.list_tools(server)
    assert time.monotonic() - start < server.timeout_s + 1.0
    assert info.value.kind == "unreachable"
    assert "'gone'" in str(info.value) and "unreachable" in str(info.value)


async def test_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts TCP connections (kernel backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        server = ref(f"http://127.0.0.1:{listener.getsockname()[1]}/mcp", timeout_s=1.5)
        start = time.monotonic()
        async with McpSessions() as sessions:
            with pytest.raises(McpError) as info:
                await sessions.list_tools(server)
        elapsed = time.monotonic() - start
    assert elapsed < server.timeout_s + 1.0
    assert info.value.kind == "timeout" and "1.5s" in str(info.value)


async def test_slow_tool_beyond_timeout_raises_and_session_survives(http_url: str) -> None:
    quick = ref(http_url, timeout_s=1.0)
    async with McpSessions() as sessions:
        await sessions.list_tools(quick)
        start = time.monotonic()
        with pytest.raises(McpError) as info:
            await sessions.call_tool(quick, "slow", {"seconds": 5})
        assert time.monotonic() - start < quick.timeout_s + 1.0
        assert info.value.kind == "timeout"
        assert (await sessions.call_tool(quick, "slow", {"seconds": 0.05})).output == "slept 0.05s"


async def test_not_an_mcp_endpoint(http_url: str) -> None:
    stats = http_url.rsplit("/", 1)[0] + "/stats"  # a JSON GET route: POST -> 405, SSE fallback -> not SSE
    async with McpSessions() as sessions:
        with pytest.raises(McpError) as info:
            await sessions.list_tools(ref(stats))
    assert info.value.kind == "not_mcp" and "not an MCP server" in str(info.value)


async def test_cancellation_closes_promptly(http_url: str) -> None:
    start = time.monotonic()
    with anyio.move_on_after(0.5) as scope:
        async with McpSessions() as sessions:
            await sessions.call_tool(ref(http_url), "slow", {"seconds": 10})
    assert scope.cancelled_caught
    assert time.monotonic() - start < 3.0


async def test_body_exception_is_not_wrapped(http_url: str) -> None:
    with pytest.raises(ValueError, match="mine"):
        async with McpSessions() as sessions:
            await sessions.list_tools(ref(http_url))
            raise ValueError("mine")


async def test_server_dying_mid_response_is_reported_as_unreachable() -> None:
    async with McpSessions() as sessions:
        with run_mcp_server() as url:
            server = ref(url, timeout_s=3.0)
            assert (await sessions.call_tool(server, "add", {"a": 1, "b": 1})).output == "2"
        with pytest.raises(McpError) as info:
            await sessions.call_tool(server, "add", {"a": 1, "b": 1})
    assert info.value.kind == "unreachable"


def test_render_non_text_parts() -> None:
    result = types.CallToolResult(content=[
        types.TextContent(type="text", text="chart below"),
        types.ImageContent(type="image", data="aGk=", mime_type="image/png"),
        types.EmbeddedResource(type="resource", resource=types.TextResourceContents(uri="file:///a.txt", text="A")),
        types.ResourceLink(type="resource_link", uri="file:///b.pdf", name="b"),
    ])
    assert _render(result).split("\n") == ["chart below", "[image: image/png]", "A", "[resource: file:///b.pdf]"]
    structured_only = types.CallToolResult(content=[], structured_content={"total": 3})
    assert json.loads(_render(structured_only)) == {"total": 3}


def test_bearer_header_and_session_key() -> None:
    plain = McpServerRef(label="x", url="http://127.0.0.1:1/mcp", headers={"X-A": "1"}, authorization="tok")
    assert plain.http_headers() == {"X-A": "1", "Authorization": "Bearer tok"}
    assert plain.key == McpServerRef(label="y", url=plain.url, headers={"X-A": "1"}, authorization="Bearer tok").key
    assert plain.key != McpServerRef(label="x", url=plain.url, headers={"X-A": "1"}, authorization="other").key
