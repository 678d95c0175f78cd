"""Authentication and tenant isolation through the real server and the official ``openai`` SDK.

Two tenants (acme: alice by API key, carol by JWT; globex: bob) and an admin.
B must neither list, read, search, attach, change, delete nor continue
anything of A's, and every refusal is the 404 of an unknown id, so B cannot
even learn that A's object exists. JWTs are signed with an RSA key made here
and verified against a JWKS served by a loopback HTTP server this test starts.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

import httpx
import jwt
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from vistack.server.auth import key_digest
from vistack.testing import documents as docs
from vistack.testing.replay_server import replay_distribution
from vistack.testing.server import ServerProcess

pytestmark = pytest.mark.slow

MODEL = "replay-llama"
ALICE, BOB, ADMIN = "sk-alice-0123456789abcdef", "sk-bob-fedcba9876543210", "sk-admin-55aa55aa55aa55aa"
ISSUER, AUDIENCE = "https://idp.example.test", "vistack"


class Jwks:
    """An RSA signing key and a loopback JWKS endpoint for it."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, sub: str, tenant: str, *, ttl: float = 600, audience: str = AUDIENCE, **claims) -> str:
        now = int(time.time())
        payload = {"sub": sub, "tenant": tenant, "iss": ISSUER, "aud": audience, "iat": now, "exp": now + ttl, **claims}
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": "test-key"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def jwks():
    j = Jwks()
    yield j
    j.close()


@pytest.fixture(scope="module")
def server(jwks, tmp_path_factory):
    root = tmp_path_factory.mktemp("auth")
    script = root / "script.jsonl"
    script.write_text("")
    dist = replay_distribution(script, root / "calls.jsonl", name="auth", default_text="A fixed answer [1].",
                               vector_stores={"max_pages": 10, "page_image_dpi": 60})
    dist["apis"].append("safety")
    dist["providers"]["safety"] = [{"provider_id": "llama-guard", "provider_type": "inline::llama-guard", "config": {}}]
    dist["server"] = {"auth": {
        "api_keys": [
            {"key": ALICE, "principal": "alice", "tenant": "acme"},
            {"key_sha256": key_digest(BOB), "principal": "bob", "tenant": "globex"},
            {"key": ADMIN, "principal": "root", "tenant": "ops", "roles": ["admin"]},
        ],
        "jwt": {"jwks_url": jwks.url, "issuer": ISSUER, "audience": AUDIENCE},
    }}
    with ServerProcess(dist, root / "srv") as proc:
        yield proc


def sdk(server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=key, max_retries=0, timeout=120)


def raw(server, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=120)


@pytest.fixture(scope="module")
def acme(server):
    """alice's objects: a file, a vector store with it ingested, a response, a conversation, a model, a shield."""
    client = sdk(server, ALICE)
    report = docs.invoice_pdf()
    file = client.files.create(file=(report.filename, report.data, report.mime_type), purpose="assistants")
    store = client.vector_stores.create(name="acme-finance", file_ids=[file.id])
    deadline = time.monotonic() + 120
    while client.vector_stores.files.retrieve(file_id=file.id, vector_store_id=store.id).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    response = client.responses.create(model=MODEL, input="What is the total?")
    conversation = client.conversations.create(items=[{"type": "message", "role": "user", "content": "hello"}])
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "private"}])
    with raw(server, ALICE) as http:
        model = http.post("/v1/models", json={"model_id": "acme-private-llm", "provider_id": "replay"})
        assert model.status_code == 200, model.text
        shield = http.post("/v1/shields", json={"shield_id": "acme-guard", "provider_shield_id": f"replay/{MODEL}"})
        assert shield.status_code == 200, shield.text
    return {"file": file.id, "store": store.id, "response": response.id, "conversation": conversation.id,
            "completion": completion.id,
            "model": model.json()["identifier"], "shield": "acme-guard"}


# ----- authentication ------------------------------------------------------------------------------------


def test_credentials_are_required_except_health_and_version(server):
    with raw(server, None) as anon:
        assert anon.get("/v1/health").status_code == 200
        assert anon.get("/v1/version").status_code == 200
        r = anon.get("/v1/models")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"]["type"] == "authentication_error"
    with raw(server, "sk-wrong") as wrong:
        r = wrong.get("/v1/files")
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    with pytest.raises(openai.AuthenticationError):
        sdk(server, "sk-wrong").models.list()
    assert sdk(server, ALICE).models.list().data


def test_jwt_verification(server, jwks):
    ok = jwks.token("carol", "acme", roles=["analyst"])
    assert sdk(server, ok).files.list() is not None
    for bad in (jwks.token("carol", "acme", ttl=-120), jwks.token("carol", "acme", audience="someone-else"),
                ok[:-4] + "AAAA"):
        with raw(server, bad) as http:
            r = http.get("/v1/files")
            assert r.status_code == 401, r.text
            assert "sk-" not in r.text and bad not in r.text


# ----- isolation -----------------------------------------------------------------------------------------


def test_same_tenant_shares_and_other_tenant_sees_nothing(server, jwks, acme):
    carol = sdk(server, jwks.token("carol", "acme"))
    assert carol.vector_stores.retrieve(acme["store"]).id == acme["store"]
    assert acme["file"] in [f.id for f in carol.files.list()]

    bob = sdk(server, BOB)
    assert acme["file"] not in [f.id for f in bob.files.list()]
    assert acme["store"] not in [s.id for s in bob.vector_stores.list()]
    assert acme["model"] not in [m.id for m in bob.models.list()]
    assert acme["completion"] not in [c.id for c in bob.chat.completions.list()]
    assert MODEL in " ".join(m.id for m in bob.models.list()), "distribution models are shared"


@pytest.mark.parametrize("attempt", [
    lambda c, a: c.files.retrieve(a["file"]),
    lambda c, a: c.files.content(a["file"]),
    lambda c, a: c.files.delete(a["file"]),
    lambda c, a: c.vector_stores.retrieve(a["store"]),
    lambda c, a: c.vector_stores.update(a["store"], name="stolen"),
    lambda c, a: c.vector_stores.search(a["store"], query="total"),
    lambda c, a: c.vector_stores.files.list(a["store"]),
    lambda c, a: c.vector_stores.files.retrieve(file_id=a["file"], vector_store_id=a["store"]),
    lambda c, a: c.vector_stores.files.delete(file_id=a["file"], vector_store_id=a["store"]),
    lambda c, a: c.vector_stores.delete(a["store"]),
    lambda c, a: c.responses.retrieve(a["response"]),
    lambda c, a: c.responses.input_items.list(a["response"]),
    lambda c, a: c.responses.delete(a["response"]),
    lambda c, a: c.responses.create(model=MODEL, input="go on", previous_response_id=a["response"]),
    lambda c, a: c.responses.create(model=MODEL, input="go on", conversation=a["conversation"]),
    lambda c, a: c.responses.create(model=MODEL, input="search", tools=[
        {"type": "file_search", "vector_store_ids": [a["store"]]}]),
    lambda c, a: c.conversations.retrieve(a["conversation"]),
    lambda c, a: c.conversations.items.list(a["conversation"]),
    lambda c, a: c.conversations.update(a["conversation"], metadata={"x": "y"}),
    lambda c, a: c.conversations.delete(a["conversation"]),
    lambda c, a: c.chat.completions.create(model=a["model"], messages=[{"role": "user", "content": "hi"}]),
    lambda c, a: c.chat.completions.retrieve(a["completion"]),
], ids=["file-get", "file-content", "file-delete", "store-get", "store-update", "store-search", "store-files",
        "store-file-get", "store-file-detach", "store-delete", "response-get", "response-input-items",
        "response-delete", "response-continue", "conversation-continue", "file-search-tool", "conversation-get",
        "conversation-items", "conversation-update", "conversation-delete", "model-use",
        "stored-completion-get"])
def test_other_tenant_gets_404_for_everything(server, acme, attempt):
    with pytest.raises(openai.NotFoundError) as e:
        attempt(sdk(server, BOB), acme)
    assert "not found" in str(e.value).lower() and "alice" not in str(e.value)


def test_other_tenant_cannot_attach_or_touch_models_and_shields(server, acme):
    bob = sdk(server, BOB)
    own = bob.vector_stores.create(name="globex")
    with pytest.raises(openai.NotFoundError):
        bob.vector_stores.files.create(vector_store_id=own.id, file_id=acme["file"])
    # in a batch (or at store creation), as any unknown id: a failed file saying only "not found"
    batch = bob.vector_stores.file_batches.create(vector_store_id=own.id, file_ids=[acme["file"]])
    assert (batch.file_counts.failed, batch.file_counts.total) == (1, 1)
    failed = bob.vector_stores.files.retrieve(acme["file"], vector_store_id=own.id)
    assert failed.status == "failed" and failed.last_error.code == "invalid_file"
    assert "not found" in failed.last_error.message and "alice" not in failed.last_error.message.lower()
    assert bob.vector_stores.search(own.id, query="invoice total").data == []
    with raw(server, BOB) as http:
        assert http.get(f"/v1/models/{acme['model']}").status_code == 404
        assert http.delete(f"/v1/models/{acme['model']}").status_code == 404
        assert http.get("/v1/shields/acme-guard").status_code == 404
        assert http.delete("/v1/shields/acme-guard").status_code == 404
        assert "acme-guard" not in [s["identifier"] for s in http.get("/v1/shields").json()["data"]]
        taken = http.post("/v1/models", json={"model_id": "acme-private-llm", "provider_id": "replay"})
        assert taken.status_code == 409
        page = http.get(f"/v1/files/{acme['file']}/content")
        assert page.status_code == 404


def test_web_app_loads_without_a_key_and_holds_no_data(server):
    """/ui is static files (the app asks for a key, then calls /v1 with it): open, with a strict CSP."""
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        root = http.get("/", follow_redirects=False)
        assert root.status_code in (302, 307) and root.headers["location"] == "/ui/"
        page = http.get("/ui/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        module = http.get("/ui/js/main.js")
        # revalidated on every load: an upgraded server never meets a mix of cached old and new modules
        assert module.status_code == 200 and module.headers["cache-control"] == "no-cache" and module.headers["etag"]
        assert http.get("/ui/../v1/models").status_code in (401, 404)  # no way around auth through /ui
        assert http.get("/v1/models").status_code == 401


def test_admin_sees_every_tenant(server, acme):
    admin = sdk(server, ADMIN)
    assert admin.vector_stores.retrieve(acme["store"]).id == acme["store"]
    assert acme["file"] in [f.id for f in admin.files.list()]
    assert admin.responses.retrieve(acme["response"]).id == acme["response"]


def test_owner_keeps_full_access(server, acme):
    alice = sdk(server, ALICE)
    follow = alice.responses.create(model=MODEL, input="and the date?", previous_response_id=acme["response"])
    assert follow.status == "completed"
    hits = alice.vector_stores.search(acme["store"], query="invoice total")
    assert hits.data


def test_state_from_before_tenants_is_migrated(tmp_path):
    """An objects table without the tenant column gains it; old objects join the default tenant."""
    import sqlite3

    from vistack.access import ANONYMOUS, Principal
    from vistack.storage import MetadataStore

    db = tmp_path / "metadata.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE objects (kind TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, "
                 "created_at REAL NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, id))")
    conn.execute("INSERT INTO objects VALUES ('file', 'file-old', 'anonymous', 1.0, '{}')")
    conn.commit()
    conn.close()
    store = MetadataStore(Path(db))
    [old] = store.list_sync("file", ANONYMOUS)
    assert old.tenant == "default" and old.owner == "anonymous"
    assert store.list_sync("file", Principal("x", "other")) == []
    store.close()


# ----- limits --------------------------------------------------------------------------------------------


def test_per_key_rate_limit_is_429_with_retry_after(tmp_path):
    script = tmp_path / "script.jsonl"
    script.write_text("")
    dist = replay_distribution(script, tmp_path / "calls.jsonl", name="limited", responses=False)
    dist["server"] = {
        "auth": {"api_keys": [{"key": ALICE, "principal": "alice", "tenant": "acme", "requests_per_minute": 3},
                              {"key": BOB, "principal": "bob", "tenant": "globex"}]},
        "limits": {"requests_per_minute": 600, "request_timeout_s": 60},
    }
    with ServerProcess(dist, tmp_path / "srv") as proc, raw(proc, ALICE) as alice, raw(proc, BOB) as bob:
        codes = [alice.get("/v1/models").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        limited = alice.get("/v1/models")
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert bob.get("/v1/models").status_code == 200, "limits are per key"
        assert alice.get("/v1/health").status_code == 200, "health is never limited"
        with pytest.raises(openai.RateLimitError):
            sdk(proc, ALICE).models.list()
