"""``remote::*`` providers against a second real vistack server acting as the engine."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest
from PIL import Image

from vistack.testing.server import ServerProcess, free_port

pytestmark = pytest.mark.slow


def _front_distribution(engine_url: str, dead_url: str) -> dict:
    return {
        "version": 2,
        "distro_name": "front",
        "apis": ["inference"],
        "providers": {
            "inference": [
                {"provider_id": "vllm", "provider_type": "remote::vllm",
                 "config": {"url": f"{engine_url}/v1", "api_key": "${env.FRONT_KEY:=secret-key}", "timeout": 120,
                            "refresh_models": True}},
                {"provider_id": "openai", "provider_type": "remote::openai",
                 "config": {"url": f"{engine_url}/v1", "refresh_models": False}},
                {"provider_id": "down", "provider_type": "remote::ollama",
                 "config": {"url": dead_url, "timeout": 5, "max_retries": 0}},
            ]
        },
        "models": [
            {"model_id": "remote-embed", "provider_id": "openai",
             "provider_model_id": "sentence-transformers/all-MiniLM-L6-v2", "model_type": "embedding",
             "metadata": {"embedding_dimension": 384}},
            {"model_id": "ghost", "provider_id": "openai", "provider_model_id": "no-such-engine-model"},
            {"model_id": "unreachable", "provider_id": "down", "provider_model_id": "llama3.2-vision"},
        ],
        "storage": {"state_dir": "${env.VISTACK_HOME}/front"},
    }


@pytest.fixture(scope="module")
def front(server, tmp_path_factory):
    dead = f"http://127.0.0.1:{free_port()}"
    with ServerProcess(_front_distribution(server.base_url, dead), tmp_path_factory.mktemp("front")) as proc:
        yield proc


@pytest.fixture(scope="module")
def client(front):
    return openai.OpenAI(base_url=f"{front.base_url}/v1", api_key="none", max_retries=0, timeout=120)


def test_discovers_engine_models(client):
    ids = {m.id for m in client.models.list().data}
    assert "vllm/transformers/tiny-mllama" in ids
    assert "openai/remote-embed" in ids


def test_chat_through_remote(client):
    r = client.chat.completions.create(model="vllm/transformers/tiny-mllama",
                                       messages=[{"role": "user", "content": "hi"}], max_tokens=3, seed=7)
    assert r.model == "vllm/transformers/tiny-mllama"
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 3


def test_streaming_through_remote(client):
    chunks = list(client.chat.completions.create(model="vllm/transformers/tiny-mllama",
                                                 messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True))
    content = [c for c in chunks if c.choices]
    assert content[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.model == "vllm/transformers/tiny-mllama" for c in chunks)


def test_image_through_remote(client):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 128, 0)).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    r = client.chat.completions.create(model="vllm/transformers/tiny-mllama", max_tokens=2, messages=[
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}]}])
    assert r.choices


def test_engine_error_passes_through(client):
    # two images: the engine's 400 reaches the client as a 400 with its message
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    with pytest.raises(openai.BadRequestError, match="one image"):
        client.chat.completions.create(model="vllm/transformers/tiny-mllama", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}, {"type": "image_url", "image_url": {"url": url}}]}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai/ghost", messages=[{"role": "user", "content": "x"}])


def test_completions_through_remote(client):
    r = client.completions.create(model="vllm/transformers/tiny-mllama", prompt="abc", max_tokens=2)
    assert r.choices[0].finish_reason in ("stop", "length")


def test_embeddings_through_remote(client, server):
    direct = httpx.post(f"{server.base_url}/v1/embeddings", json={
        "model": "sentence-transformers/all-MiniLM-L6-v2", "input": "net income"}).json()["data"][0]["embedding"]
    via = client.embeddings.create(model="openai/remote-embed", input="net income")
    assert via.model == "openai/remote-embed"
    assert len(via.data[0].embedding) == 384
    assert max(abs(a - b) for a, b in zip(via.data[0].embedding, direct)) < 1e-5


def test_engine_down_is_503_and_front_stays_up(client, front):
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="down/unreachable", messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 503
    assert "127.0.0.1" in str(e.value)
    providers = {p["provider_id"]: p for p in httpx.get(f"{front.base_url}/v1/providers").json()["data"]}
    assert providers["down"]["health"]["status"] == "Error"
    assert providers["vllm"]["health"]["status"] == "OK"
    assert providers["vllm"]["config"]["api_key"] == "********"
    assert httpx.get(f"{front.base_url}/v1/health").status_code == 200


def test_registered_model_survives_restart(front):
    r = httpx.post(f"{front.base_url}/v1/models", json={
        "model_id": "pinned", "provider_id": "openai", "provider_model_id": "transformers/tiny-mllama"})
    assert r.status_code == 200, r.text
    front.restart()
    listed = {m["id"]: m for m in httpx.get(f"{front.base_url}/v1/models").json()["data"]}
    assert "openai/pinned" in listed
    assert listed["openai/pinned"]["custom_metadata"]["provider_resource_id"] == "transformers/tiny-mllama"
