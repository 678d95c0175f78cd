"""Stored chat completions (Llama Stack's inference store) through the real server and the openai SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from vistack.testing.replay_server import replay_distribution
from vistack.testing.server import ServerProcess

pytestmark = pytest.mark.slow

MODEL = "replay/replay-llama"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("stored")
    script = root / "script.jsonl"
    script.write_text("")
    dist = replay_distribution(script, name="stored", responses=False, default_text="Stored answer here.")
    with ServerProcess(dist, root / "srv") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0, timeout=60)


def test_completions_are_stored_with_their_input(client, server):
    first = client.chat.completions.create(model=MODEL, messages=[{"role": "system", "content": "Be brief."},
                                                                  {"role": "user", "content": "first question"}])
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "streamed"}],
                                                 stream=True, stream_options={"include_usage": True}))
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    skipped = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "not kept"}],
                                             extra_body={"store": False})

    got = client.chat.completions.retrieve(first.id)
    assert got.id == first.id and got.choices[0].message.content == first.choices[0].message.content
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        raw = http.get(f"/v1/chat/completions/{first.id}").json()
        assert [m["role"] for m in raw["input_messages"]] == ["system", "user"]
        assert raw["input_messages"][1]["content"] == "first question"
        stream_id = chunks[0].id
        stored_stream = http.get(f"/v1/chat/completions/{stream_id}").json()
        assert stored_stream["choices"][0]["message"]["content"] == streamed_text
        assert stored_stream["usage"]["completion_tokens"] > 0
        assert http.get(f"/v1/chat/completions/{skipped.id}").status_code == 404
        assert http.get("/v1/chat/completions/chatcmpl-nope").status_code == 404

        listed = http.get("/v1/chat/completions").json()
        assert listed["object"] == "list" and [c["id"] for c in listed["data"]] == [stream_id, first.id]
        assert listed["first_id"] == stream_id and listed["last_id"] == first.id and listed["has_more"] is False
        page = http.get("/v1/chat/completions", params={"limit": 1, "order": "asc"}).json()
        assert [c["id"] for c in page["data"]] == [first.id] and page["has_more"] is True
        rest = http.get("/v1/chat/completions", params={"limit": 5, "order": "asc", "after": first.id}).json()
        assert [c["id"] for c in rest["data"]] == [stream_id]
        assert http.get("/v1/chat/completions", params={"model": "other"}).json()["data"] == []
        assert json.loads(http.get("/v1/chat/completions", params={"model": MODEL}).text)["data"]
    assert [c.id for c in client.chat.completions.list()] == [stream_id, first.id]


def test_storing_can_be_turned_off(tmp_path):
    script = tmp_path / "script.jsonl"
    script.write_text("")
    dist = replay_distribution(script, name="nostore", responses=False)
    dist["inference_store"] = {"enabled": False}
    with ServerProcess(dist, tmp_path / "srv") as proc, httpx.Client(base_url=proc.base_url, timeout=60) as http:
        r = http.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200
        assert http.get("/v1/chat/completions").json()["data"] == []
