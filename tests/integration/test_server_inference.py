"""The real server over real HTTP, driven by the openai SDK and httpx, with the tiny Mllama."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import openai
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def _png_data_url(color=(200, 30, 30), size=(64, 48)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()




def test_health_version_routes(http):
    health = http.get("/v1/health").json()
    assert health["status"] == "OK"  # the server serves; what is missing is listed, with why
    assert set(health) <= {"status", "degraded"}
    assert "nonexistent" in health.get("degraded", {}).get("transformers", ""), health
    assert "version" in http.get("/v1/version").json()
    routes = http.get("/v1/inspect/routes").json()["data"]
    chat = [r for r in routes if r["route"] == "/v1/chat/completions"]
    assert {r["method"] for r in chat} == {"GET", "POST"}  # create, and list the stored ones
    assert "inline::transformers" in chat[0]["provider_types"]
    assert http.get("/docs").status_code == 200
    assert http.get("/openapi.json").json()["paths"]["/v1/chat/completions"]


def test_providers_list_and_get(http):
    data = http.get("/v1/providers").json()["data"]
    by_id = {p["provider_id"]: p for p in data}
    assert by_id["transformers"]["api"] == "inference"
    assert by_id["transformers"]["provider_type"] == "inline::transformers"
    assert by_id["transformers"]["health"]["status"] in ("OK", "Error", "Not Implemented")
    one = http.get("/v1/providers/sentence-transformers").json()
    assert one["provider_type"] == "inline::sentence-transformers"
    r = http.get("/v1/providers/nope")
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


def test_models_list_shapes(client, http):
    models = {m.id: m for m in client.models.list().data}
    assert "transformers/tiny-mllama" in models
    m = models["transformers/tiny-mllama"]
    assert m.object == "model" and m.owned_by
    assert m.custom_metadata["model_type"] == "llm"
    assert m.custom_metadata["provider_id"] == "transformers"
    emb = models["sentence-transformers/all-MiniLM-L6-v2"]
    assert emb.custom_metadata["embedding_dimension"] == 384
    one = http.get("/v1/models/transformers/tiny-mllama").json()
    assert one["identifier"] == "transformers/tiny-mllama" and one["type"] == "model"
    assert one["provider_id"] == "transformers" and one["model_type"] == "llm"
    assert http.get("/v1/models/tiny-mllama").json()["identifier"] == "transformers/tiny-mllama"


def test_chat_non_streaming(client):
    r = client.chat.completions.create(
        model="transformers/tiny-mllama",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
        max_tokens=5,
        temperature=0,
    )
    assert r.object == "chat.completion"
    assert r.model == "transformers/tiny-mllama"
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_short_model_name_and_seed_reproducible(client):
    kwargs = dict(model="tiny-mllama", messages=[{"role": "user", "content": "pick"}], max_completion_tokens=6,
                  temperature=1.0, top_p=0.9, seed=1234)
    a = client.chat.completions.create(**kwargs)
    b = client.chat.completions.create(**kwargs)
    assert a.choices[0].message.content == b.choices[0].message.content


def test_chat_streaming_ends_with_finish_reason_and_done(client, server):
    stream = client.chat.completions.create(
        model="transformers/tiny-mllama", messages=[{"role": "user", "content": "stream please"}],
        max_tokens=6, stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices]
    assert content_chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.choices[0].finish_reason is None for c in content_chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens <= 6
    assert all(c.object == "chat.completion.chunk" and c.model == "transformers/tiny-mllama" for c in chunks)
    # the raw wire: SSE data lines ending with [DONE]
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", timeout=120, json={
        "model": "transformers/tiny-mllama", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3, "stream": True,
    }) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    last = json.loads(lines[-2][len("data:"):])
    assert last["choices"][0]["finish_reason"] in ("stop", "length")


def test_chat_with_image(client):
    r = client.chat.completions.create(
        model="transformers/tiny-mllama",
        messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": _png_data_url()}},
            {"type": "text", "text": "What is on this page?"},
        ]}],
        max_tokens=4,
    )
    assert r.choices[0].message.role == "assistant"
    assert r.usage.completion_tokens <= 4
    # Mllama counts an image as one <|image|> token in the prompt (it is cross-attended, not inlined)
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_two_images_rejected_with_limit(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="transformers/tiny-mllama",
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": _png_data_url()}},
                {"type": "image_url", "image_url": {"url": _png_data_url((0, 0, 255))}},
                {"type": "text", "text": "compare"},
            ]}],
        )
    assert e.value.status_code == 400
    assert "one image" in str(e.value)


def test_undecodable_image_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="transformers/tiny-mllama",
            messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"not a png").decode()}},
                {"type": "text", "text": "?"},
            ]}],
        )
    assert e.value.status_code == 400


def test_completions(client):
    r = client.completions.create(model="transformers/tiny-mllama", prompt="Once upon", max_tokens=4)
    assert r.object == "text_completion" and isinstance(r.choices[0].text, str)
    assert r.usage.completion_tokens <= 4
    chunks = list(client.completions.create(model="transformers/tiny-mllama", prompt="Once", max_tokens=3, stream=True))
    assert chunks and chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_embeddings_float_and_base64(client, http):
    r = http.post("/v1/embeddings", json={"model": "sentence-transformers/all-MiniLM-L6-v2",
                                          "input": ["quarterly revenue", "cat pictures"], "encoding_format": "float"})
    assert r.status_code == 200
    body = r.json()
    floats = [d["embedding"] for d in body["data"]]
    assert len(floats) == 2 and len(floats[0]) == 384
    assert body["usage"]["prompt_tokens"] > 0
    # the openai SDK asks for base64 and decodes it
    sdk = client.embeddings.create(model="sentence-transformers/all-MiniLM-L6-v2", input=["quarterly revenue", "cat pictures"])
    assert len(sdk.data[0].embedding) == 384
    np.testing.assert_allclose(sdk.data[0].embedding, floats[0], rtol=1e-5, atol=1e-6)
    raw = http.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "quarterly revenue",
                                            "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats[0], rtol=1e-5, atol=1e-6)


def test_unknown_model_is_404(client, http):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in str(e.value)
    r = http.get("/v1/models/no-such-model")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["type"] == "not_found_error" and err["code"] == "model_not_found"


def test_wrong_model_type_is_400(client):
    with pytest.raises(openai.BadRequestError, match="embedding"):
        client.chat.completions.create(model="all-MiniLM-L6-v2", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="tiny-mllama", input="x")


@pytest.mark.parametrize(
    "body,expect",
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({"model": "tiny-mllama"}).encode(), "messages"),
        (json.dumps({"model": "tiny-mllama", "messages": []}).encode(), "messages"),
        (json.dumps({"model": "tiny-mllama", "messages": [{"role": "wizard", "content": "x"}]}).encode(), "role"),
        (json.dumps({"model": "tiny-mllama", "messages": [{"role": "user", "content": "x"}], "temperature": 9}).encode(), "temperature"),
    ],
)
def test_malformed_body_is_400(http, body, expect):
    r = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)
    assert expect in r.json()["error"]["message"]


def test_oversized_body_is_413(http):
    big = b'{"model": "tiny-mllama", "pad": "' + b"x" * (101 * 1024 * 1024) + b'"}'
    r = http.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "limit" in r.json()["error"]["message"]


def test_missing_weights_503_while_server_stays_up(client, http):
    models = [m.id for m in client.models.list().data]
    assert "transformers/missing-vision" in models
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="transformers/missing-vision", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 503
    msg = str(e.value)
    assert "/nonexistent/vistack-weights/Llama-3.2-11B-Vision-Instruct" in msg
    # streaming request for the same model fails with a status, not a broken stream
    r = http.post("/v1/chat/completions", json={"model": "transformers/missing-vision", "stream": True,
                                                "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 503
    assert http.get("/v1/health").status_code == 200
    ok = client.chat.completions.create(model="transformers/tiny-mllama", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    assert ok.choices


def test_register_and_unregister_model(http, tiny_mllama_dir):
    r = http.post("/v1/models", json={"model_id": "second-tiny", "provider_id": "transformers",
                                      "provider_model_id": str(tiny_mllama_dir), "model_type": "llm"})
    assert r.status_code == 200, r.text
    assert r.json()["identifier"] == "transformers/second-tiny"
    listed = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
    assert listed["transformers/second-tiny"]["owned_by"] == "anonymous"
    assert http.delete("/v1/models/transformers/second-tiny").status_code == 204
    assert http.get("/v1/models/transformers/second-tiny").status_code == 404
    r = http.post("/v1/models", json={"model_id": "x", "provider_id": "nope"})
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"]
    r = http.delete("/v1/models/transformers/tiny-mllama")
    assert r.status_code == 400 and "distribution" in r.json()["error"]["message"]


def test_concurrent_chats_all_succeed(server):
    import concurrent.futures

    def one(i: int) -> int:
        r = httpx.post(f"{server.base_url}/v1/chat/completions", timeout=120, json={
            "model": "tiny-mllama", "messages": [{"role": "user", "content": f"request {i}"}], "max_tokens": 3})
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(6))) == [200] * 6


def test_bad_provider_data_header_is_400(http):
    r = http.get("/v1/models", headers={"X-LlamaStack-Provider-Data": "not-json"})
    assert r.status_code == 400 and "X-LlamaStack-Provider-Data" in r.json()["error"]["message"]


def test_unknown_route_is_json_404(http):
    r = http.get("/v1/nothing-here")
    assert r.status_code == 404 and "error" in r.json()
