"""The Responses and Conversations APIs through a real server with the tiny random Mllama.

Nothing here asserts on what the random model says: only shapes, event
order, statuses, what was retrieved and cited, and what survives a restart.
"""

from __future__ import annotations

import base64
import io
import json
import time

import httpx
import openai
import pytest
from PIL import Image

from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

pytestmark = pytest.mark.slow

SETTINGS = {"max_pages": 30, "page_image_dpi": 72}
LS_NOT_FOUND = "Response '{}' not found. Use 'client.responses.list()' to list available Responses."


@pytest.fixture(scope="module")
def server(tiny_mllama_dir, tmp_path_factory):
    dist = tiny_distribution(tiny_mllama_dir, documents=True, vector_stores=SETTINGS)
    with ServerProcess(dist, tmp_path_factory.mktemp("responses")) as proc:
        yield proc




@pytest.fixture(scope="module")
def report_store(client, http):
    report = docs.annual_report_pdf()
    file_id = client.files.create(file=(report.filename, report.data, report.mime_type), purpose="assistants").id
    store = client.vector_stores.create(name="report", file_ids=[file_id])
    deadline = time.monotonic() + 180
    while client.vector_stores.files.retrieve(file_id=file_id, vector_store_id=store.id).status == "in_progress":
        assert time.monotonic() < deadline, "ingestion did not finish"
        time.sleep(0.3)
    return {"store_id": store.id, "file_id": file_id, "report": report}


def sse_events(http: httpx.Client, body: dict) -> list[dict]:
    events = []
    with http.stream("POST", "/v1/responses", json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def assert_well_formed(events: list[dict]) -> dict:
    """created, in_progress, ..., exactly one terminal event last; sequence numbers 0..n-1; items paired."""
    types = [e["type"] for e in events]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert types[:2] == ["response.created", "response.in_progress"]
    terminal = [t for t in types if t in ("response.completed", "response.incomplete", "response.failed")]
    assert len(terminal) == 1 and types[-1] == terminal[0]
    final = events[-1]["response"]
    added = {e["output_index"]: e["item"] for e in events if e["type"] == "response.output_item.added"}
    done = {e["output_index"]: e["item"] for e in events if e["type"] == "response.output_item.done"}
    assert added.keys() == done.keys() == set(range(len(final["output"])))
    for index, item in done.items():
        assert final["output"][index] == item
    for index, item in done.items():
        if item["type"] == "message":
            deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta"
                             and e["output_index"] == index)
            assert item["content"][0]["text"] == deltas
            part_types = [e["type"] for e in events if e.get("output_index") == index and "content_part" in e["type"]]
            assert part_types == ["response.content_part.added", "response.content_part.done"]
    return final


def png_data_url(size=(64, 48)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, "navy").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# ----- the basic loop ---------------------------------------------------------------------------------


def test_plain_response_shape_usage_and_storage(client):
    r = client.responses.create(model="tiny-mllama", input="Hello", instructions="Be brief.", max_output_tokens=16,
                                metadata={"team": "finance"}, temperature=0.5)
    assert r.id.startswith("resp_") and r.object == "response"
    assert r.status in ("completed", "incomplete")
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.usage.output_tokens <= 16 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.metadata == {"team": "finance"} and r.max_output_tokens == 16 and r.temperature == 0.5
    assert r.instructions == "Be brief."
    again = client.responses.retrieve(r.id)
    assert again.id == r.id and again.output_text == r.output_text
    items = client.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].id.startswith("msg_")


def test_streaming_event_sequence_success(http):
    final = assert_well_formed(sse_events(http, {"model": "tiny-mllama", "input": "Hi", "max_output_tokens": 32}))
    assert final["status"] in ("completed", "incomplete") and final["usage"]["output_tokens"] > 0


def test_length_cut_off_is_incomplete(client, http):
    r = client.responses.create(model="tiny-mllama", input="Write a long essay", max_output_tokens=16)
    if r.status == "incomplete":  # a random model can stop early; when it is cut, it says so
        assert r.incomplete_details.reason == "length" and r.output[0].status == "incomplete"
    events = sse_events(http, {"model": "tiny-mllama", "input": "Write a long essay", "max_output_tokens": 16})
    final = assert_well_formed(events)
    assert events[-1]["type"] == f"response.{final['status']}"


def test_failure_is_a_failed_event_in_stream_and_4xx_without(client, http):
    bad = [{"role": "user", "content": [{"type": "input_text", "text": "what is this?"},
                                        {"type": "input_image", "image_url": "data:image/png;base64,not_base64!!"}]}]
    events = sse_events(http, {"model": "tiny-mllama", "input": bad})
    final = assert_well_formed(events)
    assert final["status"] == "failed" and final["error"]["code"] == "invalid_base64_image"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="tiny-mllama", input=bad)


def test_image_input_by_data_url_and_file_id(client):
    r = client.responses.create(model="tiny-mllama", max_output_tokens=16, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Describe"}, {"type": "input_image", "image_url": png_data_url()}]}])
    assert r.status in ("completed", "incomplete")
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), "red").save(buf, format="PNG")
    image_id = client.files.create(file=("red.png", buf.getvalue(), "image/png"), purpose="vision").id
    r = client.responses.create(model="tiny-mllama", max_output_tokens=16, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Describe"}, {"type": "input_image", "file_id": image_id}]}])
    assert r.status in ("completed", "incomplete")


# ----- file_search, visual strategies, citations --------------------------------------------------------


@pytest.mark.parametrize("key", ["revenue", "emea_q3", "headcount"])
def test_forced_file_search_finds_the_page_and_cites_it(client, http, report_store, key):
    fact = report_store["report"].fact(key)
    r = client.responses.create(
        model="tiny-mllama", input=fact.query, max_output_tokens=16, include=["file_search_call.results"],
        tools=[{"type": "file_search", "vector_store_ids": [report_store["store_id"]], "max_num_results": 5}],
        tool_choice={"type": "file_search"},
    )
    search, message = r.output[0], r.output[-1]
    assert search.type == "file_search_call" and search.status == "completed" and search.queries == [fact.query]
    assert search.results and int(search.results[0].attributes["page"]) == fact.page
    assert all(res.file_id == report_store["file_id"] for res in search.results)
    citations = message.content[0].annotations
    assert citations, "the answer cites the page it was shown"
    top = citations[0].model_dump()
    assert top["type"] == "file_citation" and top["file_id"] == report_store["file_id"]
    assert top["filename"] == report_store["report"].filename and top["page"] == fact.page
    assert top["index"] == len(message.content[0].text)  # a random model writes no [n]: cited at the end
    image = http.get(f"/v1/files/{top['page_image_file_id']}/content")
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).format == "PNG"
    assert len(top["bbox"].split(",")) == 4


def test_results_only_when_included(client, report_store):
    tools = [{"type": "file_search", "vector_store_ids": [report_store["store_id"]]}]
    r = client.responses.create(model="tiny-mllama", input="revenue", tools=tools, max_output_tokens=16)
    assert r.output[0].type == "file_search_call" and r.output[0].results is None  # retrieval ran first (default)


@pytest.mark.parametrize("strategy", ["top1", "stitch", "per_page", "text"])
def test_every_vision_strategy_answers_with_citations(http, report_store, strategy):
    fact = report_store["report"].fact("margin")
    events = sse_events(http, {
        "model": "tiny-mllama", "input": fact.query, "max_output_tokens": 16,
        "tools": [{"type": "file_search", "vector_store_ids": [report_store["store_id"]]}],
        "vision": {"strategy": strategy, "pages": 2},
    })
    final = assert_well_formed(events)
    types = [e["type"] for e in events]
    assert types.index("response.file_search_call.searching") < types.index("response.file_search_call.completed")
    message = final["output"][-1]
    cited_pages = {a["page"] for a in message["content"][0]["annotations"]}
    expected = {"top1": 1, "stitch": 2, "per_page": 2}.get(strategy)
    if expected is not None:
        assert len(cited_pages) == expected
    else:  # text: every retrieved page was shown
        assert len(cited_pages) >= 2
    added = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert len(added) == len(message["content"][0]["annotations"])


def test_file_search_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="tiny-mllama", input="x", tool_choice={"type": "file_search"},
                                tools=[{"type": "file_search", "vector_store_ids": ["vs_missing"]}])


# ----- chains, conversations, restart -----------------------------------------------------------------------


def test_previous_response_and_conversation_survive_restart(server, client):
    first = client.responses.create(model="tiny-mllama", input="My name is Ada.", max_output_tokens=16)
    conv = client.conversations.create(metadata={"topic": "restart"},
                                       items=[{"type": "message", "role": "user", "content": "Hello"}])
    in_conv = client.responses.create(model="tiny-mllama", input="Remember this.", conversation=conv.id,
                                      max_output_tokens=16)
    assert in_conv.conversation.id == conv.id
    server.restart()
    again = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0, timeout=120)
    assert again.responses.retrieve(first.id).output_text == first.output_text
    second = again.responses.create(model="tiny-mllama", input="What is my name?", previous_response_id=first.id,
                                    max_output_tokens=16)
    assert second.previous_response_id == first.id and second.status in ("completed", "incomplete")
    items = again.conversations.items.list(conv.id, order="asc")
    assert [i.role for i in items.data] == ["user", "user", "assistant"]
    assert items.data[1].content[0].text == "Remember this."
    assert again.conversations.retrieve(conv.id).metadata == {"topic": "restart"}
    third = again.responses.create(model="tiny-mllama", input="and now?", conversation=conv.id, max_output_tokens=16)
    assert third.status in ("completed", "incomplete")
    assert len(again.conversations.items.list(conv.id).data) == 5


def test_conversations_crud_and_items(client, http):
    conv = client.conversations.create(metadata={"topic": "demo"})
    assert len(conv.id) == len("conv_") + 48
    created = client.conversations.items.create(conv.id, items=[
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"m{i}"}]} for i in range(5)])
    assert [i.content[0].text for i in created.data] == [f"m{i}" for i in range(5)]
    assert all(i.id.startswith("msg_") and len(i.id) == 52 for i in created.data)
    page = client.conversations.items.list(conv.id, limit=2, order="asc")
    assert [i.content[0].text for i in page.data] == ["m0", "m1"] and page.has_more
    rest = client.conversations.items.list(conv.id, limit=10, order="asc", after=page.last_id)
    assert [i.content[0].text for i in rest.data] == ["m2", "m3", "m4"] and not rest.has_more
    desc = client.conversations.items.list(conv.id, limit=1)
    assert desc.data[0].content[0].text == "m4"
    item = client.conversations.items.retrieve(created.data[0].id, conversation_id=conv.id)
    assert item.id == created.data[0].id
    assert client.conversations.items.delete(created.data[0].id, conversation_id=conv.id).deleted
    with pytest.raises(openai.NotFoundError, match="not found in conversation"):
        client.conversations.items.retrieve(created.data[0].id, conversation_id=conv.id)
    assert client.conversations.update(conv.id, metadata={"topic": "x"}).metadata == {"topic": "x"}
    assert client.conversations.delete(conv.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)
    assert http.get("/v1/conversations/not-a-conv").status_code == 400
    too_many = [{"type": "message", "role": "user", "content": "x"}] * 21
    assert http.post("/v1/conversations", json={"items": too_many}).status_code == 400


# ----- background ---------------------------------------------------------------------------------------------


def wait_status(client, response_id, done=("completed", "incomplete", "failed", "cancelled"), timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.responses.retrieve(response_id)
        if r.status in done:
            return r
        assert r.status in ("queued", "in_progress")
        assert time.monotonic() < deadline, f"still {r.status}"
        time.sleep(0.2)


def test_background_completes_and_cancel(client):
    r = client.responses.create(model="tiny-mllama", input="Say hello", background=True, max_output_tokens=16)
    assert r.status == "queued" and r.background is True and r.output == []
    done = wait_status(client, r.id)
    assert done.status in ("completed", "incomplete") and done.output and done.background is True
    with pytest.raises(openai.ConflictError):
        client.responses.cancel(r.id)
    long = client.responses.create(model="tiny-mllama", input="Write a book", background=True,
                                   max_output_tokens=4000)
    cancelled = client.responses.cancel(long.id)
    assert cancelled.status == "cancelled"
    time.sleep(1.0)
    after = client.responses.retrieve(long.id)
    assert after.status == "cancelled" and after.output == []
    assert client.responses.cancel(long.id).status == "cancelled"  # idempotent
    plain = client.responses.create(model="tiny-mllama", input="hi", max_output_tokens=16)
    with pytest.raises(openai.ConflictError, match="only background responses"):
        client.responses.cancel(plain.id)


def test_background_job_survives_a_crash(server, client):
    r = client.responses.create(model="tiny-mllama", input="Write a long text", background=True,
                                max_output_tokens=600)
    server.kill()
    server.start()
    again = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0, timeout=120)
    done = wait_status(again, r.id, timeout_s=180)
    assert done.status in ("completed", "incomplete") and done.output


def test_interrupted_stream_is_failed_after_restart(server, http):
    with http.stream("POST", "/v1/responses", json={"model": "tiny-mllama", "input": "Write a long text",
                                                    "max_output_tokens": 3000, "stream": True}) as r:
        first = next(line for line in r.iter_lines() if line.startswith("data:"))
        response_id = json.loads(first[5:])["response"]["id"]
        server.kill()
    server.start()
    with httpx.Client(base_url=server.base_url, timeout=60) as fresh:
        stored = fresh.get(f"/v1/responses/{response_id}").json()
    assert stored["status"] == "failed" and "stopped" in stored["error"]["message"]


# ----- errors, listing, deletion -------------------------------------------------------------------------------


def test_errors_use_llama_stack_wording_and_status(client, http):
    with pytest.raises(openai.NotFoundError, match="Model 'nope' not found. Use 'client.models.list\\(\\)'"):
        client.responses.create(model="nope", input="x")
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="tiny-mllama", input="x", previous_response_id="resp_missing")
    assert LS_NOT_FOUND.format("resp_missing") in str(e.value)
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        client.responses.create(model="tiny-mllama", input="x", previous_response_id="resp_a", conversation="conv_b")
    with pytest.raises(openai.BadRequestError, match="conv_"):
        client.responses.create(model="tiny-mllama", input="x", conversation="not-a-conversation")
    with pytest.raises(openai.NotFoundError, match="Conversation 'conv_0+' not found"):
        client.responses.create(model="tiny-mllama", input="x", conversation="conv_" + "0" * 48)
    with pytest.raises(openai.BadRequestError, match="max_tool_calls"):
        client.responses.create(model="tiny-mllama", input="x", max_tool_calls=0,
                                tools=[{"type": "function", "name": "f", "parameters": {}}])
    with pytest.raises(openai.BadRequestError, match="background"):
        client.responses.create(model="tiny-mllama", input="x", background=True, stream=True)
    with pytest.raises(openai.InternalServerError) as e503:
        client.responses.create(model="tiny-mllama", input="x", extra_body={"guardrails": ["llama-guard"]})
    assert e503.value.status_code == 503 and "safety" in str(e503.value).lower()
    with pytest.raises(openai.BadRequestError, match="all-MiniLM-L6-v2"):
        client.responses.create(model="all-MiniLM-L6-v2", input="x")
    assert http.post("/v1/responses", json={}).status_code == 400
    assert http.post("/v1/responses", json={"model": "tiny-mllama", "input": "x", "max_output_tokens": 15}
                     ).status_code == 400
    for method in ("retrieve", "delete", "cancel"):
        with pytest.raises(openai.NotFoundError):
            getattr(client.responses, method)("resp_missing")


def test_list_paginates_newest_first_and_delete(client, http):
    ids = [client.responses.create(model="tiny-mllama", input=f"n{i}", max_output_tokens=16,
                                   metadata={"batch": "list"}).id for i in range(3)]
    page = http.get("/v1/responses", params={"limit": 2}).json()
    assert [r["id"] for r in page["data"]] == ids[::-1][:2] and page["has_more"]
    assert page["data"][0]["input"][0]["content"][0]["text"] == "n2"
    nxt = http.get("/v1/responses", params={"limit": 1, "after": page["last_id"]}).json()
    assert nxt["data"][0]["id"] == ids[0]
    assert client.responses.delete(ids[0]) is None or True
    assert http.get(f"/v1/responses/{ids[0]}").status_code == 404


def test_store_false_is_not_retrievable(client):
    r = client.responses.create(model="tiny-mllama", input="x", store=False, max_output_tokens=16)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_llama_stack_validation_wording(client):
    """Llama Stack's tests match these words: pydantic's for max_tool_calls, "not found" for a stored prompt."""
    with pytest.raises(openai.BadRequestError, match="Input should be greater than or equal to 1"):
        client.responses.create(model="tiny-mllama", input="x", max_tool_calls=0, tools=[{"type": "web_search"}])
    with pytest.raises(openai.BadRequestError, match="Prompt 'pmpt_missing' not found"):
        client.responses.create(model="tiny-mllama", input="x", extra_body={"prompt": {"id": "pmpt_missing"}})


# ----- logprobs -------------------------------------------------------------------------------------------------


def test_output_text_logprobs_are_a_list_and_asking_reaches_the_engine(client, http):
    r = client.responses.create(model="tiny-mllama", input="Hi", max_output_tokens=16)
    assert r.output[0].content[0].logprobs == []  # Llama Stack: [] when not asked for, never null
    events = sse_events(http, {"model": "tiny-mllama", "input": "Hi", "max_output_tokens": 16})
    assert_well_formed(events)
    for e in events:
        if e["type"] in ("response.output_text.delta", "response.output_text.done"):
            assert e["logprobs"] == []
        elif e["type"] == "response.content_part.done":
            assert e["part"]["logprobs"] == []
    # asked for: one entry per token of the answer, from inline::transformers, streamed as they come
    asked = {"model": "tiny-mllama", "input": "Hi", "max_output_tokens": 16, "temperature": 0, "top_logprobs": 2,
             "include": ["message.output_text.logprobs"]}
    whole = client.responses.create(**asked).output[0].content[0]
    assert whole.logprobs and all(len(e.top_logprobs) == 2 for e in whole.logprobs)
    raw = b"".join(bytes(e.bytes) for e in whole.logprobs).decode("utf-8", errors="replace")
    assert raw.startswith(whole.text) or whole.text == ""
    events = sse_events(http, asked)
    streamed = [e for ev in events if ev["type"] == "response.output_text.delta" for e in ev["logprobs"]]
    assert [e["logprob"] for e in streamed] == [e.logprob for e in whole.logprobs]
