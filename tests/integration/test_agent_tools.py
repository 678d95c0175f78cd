"""The agent loop's tools through a real server, with a model that replays recorded Llama 3.2 outputs.

The replay provider (vistack.testing.replay) says exactly what a recorded
Llama 3.2 would say (a ``<|python_tag|>`` JSON call, a pythonic call, an
answer with ``[n]`` citations) and logs every model call, so these tests can
assert on the function-call round trip, real MCP calls and approvals, and
how many model calls and images each vision strategy makes.
"""

from __future__ import annotations

import json
import time

import openai
import pytest

from vistack.testing import documents as docs
from vistack.testing.mcp import run_mcp_server
from vistack.testing.replay_server import ReplayScript, replay_distribution
from vistack.testing.replay_server import stream_events as stream
from vistack.testing.server import ServerProcess

pytestmark = pytest.mark.slow

MODEL = "replay-llama"
WEATHER_CALL = '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}'


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    return ReplayScript(tmp_path_factory.mktemp("replay"))


@pytest.fixture(scope="module")
def server(replay, tmp_path_factory):
    dist = replay_distribution(replay.script, replay.log, vector_stores={"max_pages": 30, "page_image_dpi": 72})
    with ServerProcess(dist, tmp_path_factory.mktemp("agent-srv")) as proc:
        yield proc




@pytest.fixture(scope="module")
def store(client):
    report = docs.annual_report_pdf()
    file_id = client.files.create(file=(report.filename, report.data, report.mime_type), purpose="assistants").id
    vs = client.vector_stores.create(name="report", file_ids=[file_id])
    deadline = time.monotonic() + 180
    while client.vector_stores.files.retrieve(file_id=file_id, vector_store_id=vs.id).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    return {"id": vs.id, "file_id": file_id, "report": report}


@pytest.fixture(scope="module")
def mcp_url():
    with run_mcp_server() as url:
        yield url


WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def size(text: str) -> tuple[int, int]:
    width, height = text.split("x")
    return int(width), int(height)


# ----- function tools ---------------------------------------------------------------------------------


def test_function_call_round_trip(client, replay):
    replay.say(WEATHER_CALL, "It is 18 degrees in Paris.")
    first = client.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER_TOOL])
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(model=MODEL, previous_response_id=first.id, tools=[WEATHER_TOOL],
                                     input=[{"type": "function_call_output", "call_id": call.call_id,
                                             "output": "18 degrees, light rain"}])
    assert second.output_text == "It is 18 degrees in Paris."
    calls = replay.calls()
    assert len(calls) == 2
    assert calls[1]["roles"][-2:] == ["assistant", "tool"] and calls[1]["last_message"] == "18 degrees, light rain"


def test_function_call_streams_arguments(http, replay):
    replay.say('[get_weather(city="Oslo")]')
    events = stream(http, {"model": MODEL, "input": "Weather in Oslo?", "tools": [WEATHER_TOOL]})
    types = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in types and "response.function_call_arguments.done" in types
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert json.loads(done["arguments"]) == {"city": "Oslo"}
    assert "response.output_text.delta" not in types  # the held-back call never leaked as text
    assert events[-1]["response"]["output"][0]["type"] == "function_call"


def test_function_call_in_conversation(client, replay):
    conv = client.conversations.create()
    replay.say(WEATHER_CALL, "Sunny.")
    first = client.responses.create(model=MODEL, input="Weather?", tools=[WEATHER_TOOL], conversation=conv.id)
    call = first.output[0]
    client.responses.create(model=MODEL, tools=[WEATHER_TOOL], conversation=conv.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    types = [i.type for i in client.conversations.items.list(conv.id, order="asc").data]
    assert types == ["message", "function_call", "function_call_output", "message"]


def test_malformed_tool_call_is_plain_text(client, replay):
    replay.say('<|python_tag|>{"name": "get_weather", "parameters": {"city": ')
    r = client.responses.create(model=MODEL, input="Weather?", tools=[WEATHER_TOOL])
    assert r.status == "completed" and r.output[0].type == "message"
    assert r.output_text.startswith("<|python_tag|>")


def test_a_call_to_a_tool_not_offered_is_text(client, replay):
    replay.say('{"name": "get_stock_price", "parameters": {"ticker": "ACME"}}')
    r = client.responses.create(model=MODEL, input="Stock?", tools=[WEATHER_TOOL])
    assert [i.type for i in r.output] == ["message"] and "get_stock_price" in r.output_text


def test_max_infer_iters_makes_the_response_incomplete(client, replay, mcp_url):
    replay.say('[add(a=1, b=2)]', '[add(a=3, b=4)]', "done")
    r = client.responses.create(model=MODEL, input="add", extra_body={"max_infer_iters": 2},
                                tools=[{"type": "mcp", "server_label": "calc", "server_url": mcp_url}])
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_iterations_exceeded"
    assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call", "mcp_call"]


def test_max_tool_calls_stops_builtin_calls(client, replay, mcp_url):
    replay.say('[add(a=1, b=2)]', '[add(a=3, b=4)]', "final")
    r = client.responses.create(model=MODEL, input="add", max_tool_calls=1,
                                tools=[{"type": "mcp", "server_label": "calc", "server_url": mcp_url}])
    assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert "max_tool_calls" in replay.calls()[2]["last_message"]


# ----- MCP ------------------------------------------------------------------------------------------------


def test_mcp_list_and_call(http, replay, mcp_url):
    replay.say('[get_weather(city="Paris")]', "Light rain in Paris.")
    events = stream(http, {"model": MODEL, "input": "Weather in Paris?",
                           "tools": [{"type": "mcp", "server_label": "weather", "server_url": mcp_url,
                                      "allowed_tools": ["get_weather", "add"]}]})
    types = [e["type"] for e in events]
    for t in ("response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed",
              "response.mcp_call.in_progress", "response.mcp_call.completed", "response.mcp_call.arguments.done"):
        assert t in types
    final = events[-1]["response"]
    listed, call, message = final["output"]
    assert listed["type"] == "mcp_list_tools" and {t["name"] for t in listed["tools"]} == {"get_weather", "add"}
    assert call["type"] == "mcp_call" and call["server_label"] == "weather" and "Paris" in call["output"]
    assert call["error"] is None and message["content"][0]["text"] == "Light rain in Paris."
    assert replay.calls()[0]["tools"] == ["add", "get_weather"]
    assert "Paris" in replay.calls()[1]["last_message"]


def test_mcp_tool_error_reaches_the_model(client, replay, mcp_url):
    replay.say('[fail(reason="disk full")]', "The tool failed.")
    r = client.responses.create(model=MODEL, input="run", tools=[
        {"type": "mcp", "server_label": "t", "server_url": mcp_url}])
    call = r.output[1]
    assert call.type == "mcp_call" and call.error and "disk full" in call.error and call.output is None
    assert replay.calls()[1]["last_message"].startswith("error:")


def test_mcp_approval_round_trip(client, replay, mcp_url):
    tools = [{"type": "mcp", "server_label": "weather", "server_url": mcp_url, "require_approval": "always"}]
    replay.say('[get_weather(city="Paris")]', "Rainy.")
    first = client.responses.create(model=MODEL, input="Weather in Paris?", tools=tools)
    request = first.output[-1]
    assert request.type == "mcp_approval_request" and request.name == "get_weather"
    assert json.loads(request.arguments) == {"city": "Paris"}
    second = client.responses.create(model=MODEL, previous_response_id=first.id, tools=tools, input=[
        {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}])
    kinds = [i.type for i in second.output]
    assert kinds == ["mcp_list_tools", "mcp_call", "message"]
    assert second.output[1].approval_request_id == request.id and "Paris" in second.output[1].output
    assert second.output_text == "Rainy."
    replay.say('[get_weather(city="Paris")]', "Declined, so I do not know.")
    third = client.responses.create(model=MODEL, input="Again?", tools=tools)
    refused = client.responses.create(model=MODEL, previous_response_id=third.id, tools=tools, input=[
        {"type": "mcp_approval_response", "approval_request_id": third.output[-1].id, "approve": False}])
    assert [i.type for i in refused.output] == ["mcp_list_tools", "message"]
    assert "not approved" in replay.calls()[-1]["last_message"]


def test_mcp_with_token_and_unreachable_server(client, replay):
    with run_mcp_server(token="s3cret") as url:
        replay.say('[add(a=2, b=3)]', "5")
        ok = client.responses.create(model=MODEL, input="2+3", tools=[
            {"type": "mcp", "server_label": "calc", "server_url": url, "authorization": "s3cret"}])
        assert ok.output[1].output == "5"
        assert "s3cret" not in ok.model_dump_json()  # the token is never echoed back
        with pytest.raises(openai.APIStatusError) as denied:
            client.responses.create(model=MODEL, input="2+3", tools=[
                {"type": "mcp", "server_label": "calc", "server_url": url}])
        assert denied.value.status_code == 401 and "credentials" in str(denied.value)  # Llama Stack: 401
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as down:
        client.responses.create(model=MODEL, input="x", tools=[
            {"type": "mcp", "server_label": "gone", "server_url": "http://127.0.0.1:9/mcp"}])
    assert down.value.status_code == 503 and "'gone'" in str(down.value)
    assert time.monotonic() - started < 15
    with pytest.raises(openai.BadRequestError, match="authorization"):
        client.responses.create(model=MODEL, input="x", tools=[
            {"type": "mcp", "server_label": "h", "server_url": "http://127.0.0.1:9/mcp",
             "headers": {"Authorization": "Bearer x"}}])


# ----- visual strategies and citations ----------------------------------------------------------------------


def _ask(client, store, strategy: str, pages: int = 3, **extra):
    fact = store["report"].fact("emea_q3")
    return client.responses.create(
        model=MODEL, input=fact.query, include=["file_search_call.results"],
        tools=[{"type": "file_search", "vector_store_ids": [store["id"]], "max_num_results": 8}],
        extra_body={"vision": {"strategy": strategy, "pages": pages}}, **extra)


def test_top1_sends_one_page_image(client, replay, store):
    replay.say("EMEA revenue in Q3 was 318 [1].")
    r = _ask(client, store, "top1")
    [call] = replay.calls()
    assert call["images"] == 1 and max(size(call["image_sizes"][0])) <= 1120
    assert call["tools"] == []  # the answer call shows an image: no tools beside it
    top = r.output[0].results[0]
    [citation] = r.output[1].content[0].annotations
    data = citation.model_dump()
    assert data["page"] == int(top.attributes["page"]) == store["report"].fact("emea_q3").page
    assert data["index"] == r.output_text.index("[1]") + 3


def test_stitch_sends_one_image_with_the_chosen_pages(client, replay, store):
    replay.say("From the pages: 318 [1], see also [2].")
    r = _ask(client, store, "stitch", pages=3)
    [call] = replay.calls()
    assert call["images"] == 1
    width, height = size(call["image_sizes"][0])
    assert width <= 1120 and height <= 1120
    cited = [a.model_dump()["page"] for a in r.output[1].content[0].annotations]
    pages = []
    for res in r.output[0].results:
        if int(res.attributes["page"]) not in pages:
            pages.append(int(res.attributes["page"]))
    assert cited == pages[:2]  # [1] and [2] point at the first two retrieved pages


def test_per_page_asks_each_page_then_merges(client, replay, store):
    replay.say("318", "not on this page", "not on this page", "EMEA Q3 revenue: 318 [1].")
    r = _ask(client, store, "per_page", pages=3)
    calls = replay.calls()
    assert [c["images"] for c in calls] == [1, 1, 1, 0]
    assert "Partial answers" in calls[-1]["last_message"] and "318" in calls[-1]["last_message"]
    assert r.output_text == "EMEA Q3 revenue: 318 [1]."
    assert r.usage.output_tokens == 1 + 4 + 4 + 5


def test_per_page_shares_max_output_tokens_and_cites_only_pages_that_answered(client, replay, store):
    long = " ".join(["word"] * 100)
    replay.say("not on this page", long, "not on this page", "EMEA revenue was 318.")
    r = _ask(client, store, "per_page", pages=3, max_output_tokens=40)
    calls = replay.calls()
    assert [c["max_tokens"] for c in calls[:3]] == [10, 10, 10] and len(calls) == 4
    assert r.output_text == "EMEA revenue was 318." and r.status == "completed"
    [citation] = r.output[1].content[0].annotations  # no [n] markers: the one page that answered
    second_page = calls[1]["last_message"].split("Page [", 1)[1].split("]", 1)[0]
    assert citation.model_dump()["source"] == int(second_page)


def test_text_strategy_and_text_only_models(client, replay, store):
    replay.say("318 [2]")
    r = _ask(client, store, "text")
    [call] = replay.calls()
    assert call["images"] == 0 and "Sources:" in call["last_message"]
    [citation] = r.output[1].content[0].annotations
    assert citation.model_dump()["source"] == 2


def test_the_users_own_image_wins_over_page_images(client, replay, store):
    from PIL import Image

    from vistack.images import image_to_data_url

    replay.say("A chart.")
    image = image_to_data_url(Image.new("RGB", (300, 200), "white"))
    client.responses.create(
        model=MODEL, tools=[{"type": "file_search", "vector_store_ids": [store["id"]]}],
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Compare with EMEA Q3 revenue"},
                                            {"type": "input_image", "image_url": image}]}])
    [call] = replay.calls()
    assert call["images"] == 1 and [size(s) for s in call["image_sizes"]] == [(300, 200)]


def test_model_initiated_file_search(client, replay, store):
    replay.say('[file_search(query="EMEA Q3 revenue")]', "318 [1]")
    r = client.responses.create(model=MODEL, input="What was EMEA revenue in Q3?", tools=[
        {"type": "file_search", "vector_store_ids": [store["id"]]}, WEATHER_TOOL], tool_choice="required")
    assert [i.type for i in r.output] == ["file_search_call", "message"]
    assert r.output[0].queries == ["EMEA Q3 revenue"]
    first, second = replay.calls()
    assert "file_search" in first["tools"] and first["images"] == 0
    assert second["images"] == 1 and second["tools"] == []


# ----- Llama Stack semantics the conformance tests rely on -----------------------------------------------------


def test_parallel_tool_calls_false_keeps_the_first_call(client, replay):
    tools = [WEATHER_TOOL]
    replay.say('[get_weather(city="Paris"), get_weather(city="Oslo")]')
    both = client.responses.create(model=MODEL, input="Paris and Oslo?", tools=tools)
    assert [json.loads(i.arguments)["city"] for i in both.output] == ["Paris", "Oslo"]
    replay.say('[get_weather(city="Rome"), get_weather(city="Oslo")]')  # a new script: lines are used once
    one = client.responses.create(model=MODEL, input="Rome and Oslo?", tools=tools, parallel_tool_calls=False)
    assert [i.type for i in one.output] == ["function_call"] and one.parallel_tool_calls is False
    assert json.loads(one.output[0].arguments) == {"city": "Rome"}


def test_web_search_call_uses_up_max_infer_iters(client, replay):
    """No internet: the call fails, and with max_infer_iters=1 the loop stops there (Llama Stack's reason)."""
    replay.say('<|python_tag|>{"name": "web_search", "parameters": {"query": "news"}}', "unused")
    r = client.responses.create(model=MODEL, input="News?", tools=[{"type": "web_search"}],
                                extra_body={"max_infer_iters": 1})
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_iterations_exceeded"
    assert [(i.type, i.status) for i in r.output] == [("web_search_call", "failed")]
    assert len(replay.calls()) == 1


def test_requested_logprobs_are_a_list(client, replay):
    replay.say("Plain answer.")
    r = client.responses.create(model=MODEL, input="Hi", include=["message.output_text.logprobs"], top_logprobs=2)
    assert r.output[0].content[0].logprobs == [] and r.top_logprobs == 2  # the replay engine sends none
