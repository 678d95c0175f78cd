"""The Files API on a real server (``inline::localfs``), driven by the openai SDK and httpx.

The last tests also drive the provider in-process for what a server cannot show
quickly (expiry needs an hour at least over HTTP).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from pathlib import Path

import httpx
import openai
import pytest

from vistack.testing.server import ServerProcess

pytestmark = pytest.mark.slow

MAX_FILE_BYTES = 1024 * 1024
DISTRO = "files-it"
FILE_ID = re.compile(r"^file-[0-9a-f]{32}$")


def _distribution() -> dict:
    return {
        "version": 2,
        "distro_name": DISTRO,
        "apis": ["files"],
        "providers": {
            "files": [
                {"provider_id": "localfs", "provider_type": "inline::localfs",
                 "config": {"max_file_bytes": MAX_FILE_BYTES}},
            ]
        },
        "storage": {"state_dir": "${env.VISTACK_HOME}/" + DISTRO},
    }


@pytest.fixture(scope="module")
def files_server(tmp_path_factory: pytest.TempPathFactory):
    with ServerProcess(_distribution(), tmp_path_factory.mktemp("files-server"), startup_timeout_s=60) as proc:
        yield proc


@pytest.fixture(scope="module")
def files_dir(files_server: ServerProcess) -> Path:
    return files_server.workdir / "home" / DISTRO / "files"


@pytest.fixture
def client(files_server: ServerProcess):
    with openai.OpenAI(base_url=f"{files_server.base_url}/v1", api_key="none", max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture
def http(files_server: ServerProcess):
    with httpx.Client(base_url=files_server.base_url, timeout=60) as c:
        yield c


def _blob(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"]
    return body["error"]


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# --- server wiring ----------------------------------------------------------------------------


def test_provider_listed_healthy_and_routes_mapped(http):
    by_id = {p["provider_id"]: p for p in http.get("/v1/providers").json()["data"]}
    localfs = by_id["localfs"]
    assert localfs["api"] == "files" and localfs["provider_type"] == "inline::localfs"
    assert localfs["config"]["max_file_bytes"] == MAX_FILE_BYTES
    assert localfs["health"]["status"] == "OK"
    routes = {(r["route"], r["method"]): r for r in http.get("/v1/inspect/routes").json()["data"]}
    for key in [("/v1/files", "POST"), ("/v1/files", "GET"), ("/v1/files/{file_id}", "GET"),
                ("/v1/files/{file_id}", "DELETE"), ("/v1/files/{file_id}/content", "GET")]:
        assert routes[key]["provider_types"] == ["inline::localfs"], key
    upload = http.get("/openapi.json").json()["paths"]["/v1/files"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]


# --- upload, retrieve, download -------------------------------------------------------------------


def test_upload_retrieve_content_roundtrip(client, http, files_dir):
    data = _blob(300 * 1024, seed=1)
    before = int(time.time())
    created = client.files.create(file=("report.bin", data, "application/octet-stream"), purpose="assistants")
    assert FILE_ID.match(created.id)
    assert created.object == "file" and created.bytes == len(data)
    assert created.filename == "report.bin" and created.purpose == "assistants"
    assert before - 1 <= created.created_at <= int(time.time()) + 1
    assert created.expires_at is None

    got = client.files.retrieve(created.id)
    assert got.model_dump() == created.model_dump()
    raw = http.get(f"/v1/files/{created.id}").json()
    assert list(raw) == ["object", "id", "bytes", "created_at", "expires_at", "filename", "purpose"]

    assert client.files.content(created.id).content == data
    r = http.get(f"/v1/files/{created.id}/content")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["content-disposition"] == "attachment; filename=\"report.bin\"; filename*=UTF-8''report.bin"

    # Stored under its id, nothing else: no temp file left behind.
    assert (files_dir / created.id).read_bytes() == data
    assert not [p for p in files_dir.iterdir() if p.name.startswith(".upload-")]


def test_unicode_filename_and_content_type(client, http):
    created = client.files.create(file=("résumé 2024.pdf", b"%PDF-1.4 tiny", "application/pdf"), purpose="user_data")
    assert created.filename == "résumé_2024.pdf"
    r = http.get(f"/v1/files/{created.id}/content")
    assert r.content == b"%PDF-1.4 tiny"
    assert r.headers["content-type"] == "application/pdf"
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; ")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9_2024.pdf" in cd
    assert r.headers["x-content-type-options"] == "nosniff"


def test_empty_file(client):
    created = client.files.create(file=("empty.txt", b""), purpose="assistants")
    assert created.bytes == 0
    assert client.files.content(created.id).content == b""


# --- list -------------------------------------------------------------------------------------------


def test_list_purpose_order_and_pagination(client, http):
    ids = [client.files.create(file=(f"page-{i}.txt", f"page {i}".encode()), purpose="evals").id for i in range(5)]
    other = client.files.create(file=("other.txt", b"other"), purpose="batch").id

    asc = http.get("/v1/files", params={"purpose": "evals", "order": "asc"}).json()
    assert [f["id"] for f in asc["data"]] == ids  # uploads within one second keep their order
    assert asc["object"] == "list" and asc["has_more"] is False
    assert asc["first_id"] == ids[0] and asc["last_id"] == ids[-1]
    desc = client.files.list(purpose="evals")  # default order: newest first
    assert [f.id for f in desc.data] == ids[::-1]
    assert other not in [f.id for f in desc.data]
    everything = [f["id"] for f in http.get("/v1/files").json()["data"]]
    assert set(ids) | {other} <= set(everything)

    # limit + after, by hand
    page1 = http.get("/v1/files", params={"purpose": "evals", "order": "asc", "limit": 2}).json()
    assert [f["id"] for f in page1["data"]] == ids[:2] and page1["has_more"] is True
    page2 = http.get("/v1/files", params={"purpose": "evals", "order": "asc", "limit": 2,
                                          "after": page1["last_id"]}).json()
    assert [f["id"] for f in page2["data"]] == ids[2:4] and page2["has_more"] is True
    page3 = http.get("/v1/files", params={"purpose": "evals", "order": "asc", "limit": 2,
                                          "after": page2["last_id"]}).json()
    assert [f["id"] for f in page3["data"]] == ids[4:] and page3["has_more"] is False
    empty = http.get("/v1/files", params={"purpose": "evals", "order": "asc", "after": ids[-1]}).json()
    assert empty == {"object": "list", "data": [], "has_more": False, "first_id": "", "last_id": ""}

    # the SDK's auto-pagination follows after=last_id
    walked = [f.id for f in client.files.list(purpose="evals", limit=2, order="desc")]
    assert walked == ids[::-1]

    err = _error(http.get("/v1/files", params={"after": "file-" + "0" * 32}), 400)
    assert err["param"] == "after" and "file-" + "0" * 32 in err["message"]
    for bad in ({"limit": 0}, {"limit": 10001}, {"order": "sideways"}, {"purpose": "nope"}):
        _error(http.get("/v1/files", params=bad), 400)


def test_vision_files_are_listed_only_when_asked_for(client, http):
    """Page images (purpose ``vision``, rendered by ingestion) would bury the user's uploads: the plain
    listing leaves them out, ``purpose=vision`` lists them, their ids keep resolving, and pagination
    (``after``/``limit``, both orders) works across them."""
    png = b"\x89PNG\r\n\x1a\n" + _blob(64, seed=7)
    users, images = [], []
    for i in range(3):
        users.append(client.files.create(file=(f"upload-{i}.txt", f"u{i}".encode()), purpose="user_data").id)
        images.append(client.files.create(file=(f"report.page-{i + 1:04d}.png", png, "image/png"),
                                          purpose="vision").id)

    def ids(**params) -> tuple[list[str], bool]:
        body = http.get("/v1/files", params=params).json()
        return [f["id"] for f in body["data"]], body["has_more"]

    everything, _ = ids()
    assert set(users) <= set(everything)
    assert not set(images) & set(everything)
    assert ids(limit=2) == (users[:0:-1], True)  # newest first: upload-2, upload-1 (page images skipped)
    assert ids(order="asc", after=users[0], limit=1) == ([users[1]], True)
    assert ids(order="asc", after=users[1], limit=1) == ([users[2]], False)
    assert ids(order="asc", after=images[0]) == (users[1:], False)  # a cursor may be a page image's id
    assert [f.id for f in client.files.list(limit=1, order="asc", after=users[0])] == users[1:]  # SDK paging

    assert ids(purpose="vision", order="asc", after=images[0], limit=1) == ([images[1]], True)
    assert ids(purpose="vision", order="asc", after=images[1]) == ([images[2]], False)
    assert ids(purpose="vision", limit=2) == (images[:0:-1], True)
    for image_id in images:
        meta = http.get(f"/v1/files/{image_id}").json()
        assert meta["purpose"] == "vision" and meta["filename"].startswith("report.page-")
        r = http.get(f"/v1/files/{image_id}/content")
        assert r.status_code == 200 and r.content == png
    for file_id in users + images:
        client.files.delete(file_id)


# --- errors -----------------------------------------------------------------------------------------


def test_bad_purpose_400(http):
    err = _error(http.post("/v1/files", files={"file": ("a.txt", b"x")}, data={"purpose": "nope"}), 400)
    assert err["param"] == "purpose" and "'nope'" in err["message"] and "assistants" in err["message"]
    err = _error(http.post("/v1/files", files={"file": ("a.txt", b"x")}), 400)
    assert err["param"] == "purpose"


def test_missing_file_400(http, files_dir):
    before = _tree(files_dir)
    err = _error(http.post("/v1/files", files={"purpose": (None, "assistants")}), 400)
    assert err["param"] == "file" and "'file'" in err["message"]
    err = _error(http.post("/v1/files", files={"purpose": (None, "assistants"), "file": (None, "not a file")}), 400)
    assert err["param"] == "file"
    err = _error(http.post("/v1/files", json={"purpose": "assistants"}), 400)
    assert "multipart/form-data" in err["message"]
    assert _tree(files_dir) == before


def test_over_cap_upload_413_leaves_nothing(client, http, files_dir):
    before = _tree(files_dir)
    n_before = len(http.get("/v1/files").json()["data"])
    with pytest.raises(openai.APIStatusError) as exc:
        client.files.create(file=("big.bin", _blob(MAX_FILE_BYTES + 1, seed=2)), purpose="assistants")
    assert exc.value.status_code == 413
    err = _error(exc.value.response, 413)
    assert str(MAX_FILE_BYTES) in err["message"] and "max_file_bytes" in err["message"]
    assert _tree(files_dir) == before  # no temp file, no bytes
    assert len(http.get("/v1/files").json()["data"]) == n_before

    exact = client.files.create(file=("exact.bin", _blob(MAX_FILE_BYTES, seed=3)), purpose="assistants")
    assert exact.bytes == MAX_FILE_BYTES
    client.files.delete(exact.id)


def test_unknown_and_malformed_ids_404(http):
    for file_id in ("file-" + "0" * 32, "file-nothex", "..", "file-..", "%2e%2e%2fetc%2fpasswd"):
        for path in (f"/v1/files/{file_id}", f"/v1/files/{file_id}/content"):
            r = http.get(path)
            assert r.status_code == 404, (path, r.text)
            assert set(r.json()) == {"error"}
        assert http.delete(f"/v1/files/{file_id}").status_code == 404
    err = _error(http.get("/v1/files/file-" + "0" * 32), 404)
    assert err["type"] == "not_found_error" and err["code"] == "file_not_found"


def test_path_traversal_filenames_are_sanitised(client, http, files_server, files_dir):
    root = files_server.workdir
    before = _tree(root)
    names = {
        "../../etc/passwd": "passwd",
        "..\\..\\windows\\evil.txt": "evil.txt",
        "/abs/path/x.txt": "x.txt",
        "..": "upload",
        ".hidden": "hidden",
        "my report (v2).pdf": "my_report__v2_.pdf",
    }
    created = []
    for name, expected in names.items():
        r = http.post("/v1/files", files={"file": (name, b"secret")}, data={"purpose": "assistants"})
        assert r.status_code == 200, (name, r.text)
        obj = r.json()
        assert obj["filename"] == expected, (name, obj["filename"])
        assert "/" not in obj["filename"] and "\\" not in obj["filename"] and ".." not in obj["filename"]
        created.append(obj["id"])
    # Via the SDK too.
    sdk = client.files.create(file=("../../../../tmp/owned.txt", b"x"), purpose="assistants")
    assert sdk.filename == "owned.txt"
    created.append(sdk.id)

    new = _tree(root) - before
    assert {p.parent for p in new} <= {files_dir}, new  # nothing written outside the files dir
    assert {p.name for p in new if p.parent == files_dir} >= set(created)
    assert all(FILE_ID.match(p.name) for p in new if p.parent == files_dir)
    assert not (root / "etc").exists() and not (root / "home" / "etc").exists()


def test_delete_then_404(client, http, files_dir):
    created = client.files.create(file=("gone.txt", b"bye"), purpose="assistants")
    deleted = client.files.delete(created.id)
    assert deleted.id == created.id and deleted.deleted is True
    assert http.delete(f"/v1/files/{created.id}").status_code == 404
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    _error(http.get(f"/v1/files/{created.id}/content"), 404)
    assert not (files_dir / created.id).exists()
    assert created.id not in [f["id"] for f in http.get("/v1/files").json()["data"]]


def test_missing_bytes_404_and_record_cleaned(client, http, files_dir):
    created = client.files.create(file=("lost.txt", b"lost"), purpose="assistants")
    (files_dir / created.id).unlink()
    err = _error(http.get(f"/v1/files/{created.id}/content"), 404)
    assert "bytes are missing" in err["message"] and err["code"] == "file_content_missing"
    err = _error(http.get(f"/v1/files/{created.id}"), 404)
    assert err["code"] == "file_not_found"
    assert created.id not in [f["id"] for f in http.get("/v1/files").json()["data"]]


# --- expires_after ----------------------------------------------------------------------------------


def test_expires_after_via_sdk(client, http):
    created = client.files.create(
        file=("ttl.txt", b"ttl"), purpose="batch", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert created.expires_at == created.created_at + 3600
    assert client.files.retrieve(created.id).expires_at == created.created_at + 3600
    assert client.files.content(created.id).content == b"ttl"


def test_expires_after_other_forms_and_bounds(http):
    def post(**fields):
        return http.post("/v1/files", files={"file": ("t.txt", b"t")}, data={"purpose": "assistants", **fields})

    obj = post(expires_after=json.dumps({"anchor": "created_at", "seconds": 7200})).json()
    assert obj["expires_at"] == obj["created_at"] + 7200
    obj = post(anchor="created_at", seconds="5400").json()
    assert obj["expires_at"] == obj["created_at"] + 5400
    obj = post(**{"expires_after[seconds]": "2592000"}).json()
    assert obj["expires_at"] == obj["created_at"] + 2592000
    for bad in ({"expires_after[anchor]": "created_at", "expires_after[seconds]": "10"},
                {"expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600"},
                {"expires_after[anchor]": "created_at"},
                {"expires_after": "{not json"},
                {"expires_after": json.dumps({"anchor": "created_at", "seconds": 2592001})}):
        err = _error(post(**bad), 400)
        assert err["param"].startswith("expires_after"), err


# --- restart ----------------------------------------------------------------------------------------


def test_restart_keeps_files_and_bytes(files_server, files_dir):
    data = _blob(200 * 1024, seed=4)
    base = f"{files_server.base_url}/v1"
    with openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=60) as c:
        created = c.files.create(file=("keep.bin", data), purpose="assistants")
        listed = [f.id for f in c.files.list()]
    files_server.restart()
    with openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=60) as c:
        assert c.files.retrieve(created.id).model_dump() == created.model_dump()
        assert c.files.content(created.id).content == data
        assert [f.id for f in c.files.list()] == listed
    assert (files_dir / created.id).read_bytes() == data


# --- the provider in-process: expiry and temp files -------------------------------------------------


def _provider(tmp_path: Path, **config):
    from vistack.api.protocols import ProviderContext
    from vistack.providers.files.localfs import LocalFSFilesConfig, LocalFSFilesProvider
    from vistack.storage import MetadataStore

    store = MetadataStore(tmp_path / "meta.sqlite3")
    provider = LocalFSFilesProvider(LocalFSFilesConfig(**config))
    provider.provider_id = "localfs"
    provider.context = ProviderContext(state_dir=tmp_path, store=store)
    return provider, store


async def _chunks(*parts: bytes):
    for p in parts:
        yield p


def test_provider_expiry_is_lazy_and_purges(tmp_path):
    from vistack.access import Principal
    from vistack.api import NotFoundError
    from vistack.api.files import FilePurpose

    async def main():
        from vistack.providers.files.localfs import sanitize_filename

        assert sanitize_filename("a\x00b\r\n\u202e.txt") == "ab.txt"  # NUL and control/format chars dropped
        assert sanitize_filename("....") == "upload" and sanitize_filename("") == "upload"
        assert len(sanitize_filename("x" * 400 + ".pdf").encode()) == 255
        provider, store = _provider(tmp_path, ttl_secs=60)
        await provider.initialize()
        assert (await provider.health()).status == "OK"
        alice, bob = Principal("alice", "acme"), Principal("bob", "globex")
        info = await provider.create_file(filename="a.txt", purpose=FilePurpose.assistants,
                                          chunks=_chunks(b"ab", b"cd"), owner=alice)
        assert info.file.expires_at == info.file.created_at + 60
        assert info.sha256 == __import__("hashlib").sha256(b"abcd").hexdigest()
        assert await provider.read_bytes(info.file.id) == b"abcd"
        stream = await provider.iter_content(info.file.id, owner=alice)
        assert b"".join([c async for c in stream]) == b"abcd"
        with pytest.raises(NotFoundError):
            await provider.get_file(info.file.id, owner=bob)  # another tenant sees nothing
        assert (await provider.list_files(owner=bob)).data == []
        assert [f.id for f in (await provider.list_files(owner=None)).data] == [info.file.id]

        row = store.get_sync("file", info.file.id)
        row.data["file"]["expires_at"] = int(time.time()) - 1
        store.put_sync("file", row.id, row.owner, row.data, created_at=row.created_at)
        with pytest.raises(NotFoundError):
            await provider.get_file(info.file.id)
        assert store.get_sync("file", info.file.id) is None
        assert not (tmp_path / "files" / info.file.id).exists()
        store.close()

    asyncio.run(main())


def test_provider_failed_upload_leaves_nothing(tmp_path):
    from vistack.api import PayloadTooLargeError
    from vistack.api.files import FilePurpose

    async def broken():
        yield b"x" * 10
        raise ConnectionResetError("client went away")

    async def main():
        provider, store = _provider(tmp_path, max_file_bytes=16)
        await provider.initialize()
        with pytest.raises(PayloadTooLargeError):
            await provider.create_file(filename="a", purpose=FilePurpose.batch,
                                       chunks=_chunks(b"x" * 10, b"y" * 10), owner="a")
        with pytest.raises(ConnectionResetError):
            await provider.create_file(filename="a", purpose=FilePurpose.batch, chunks=broken(), owner="a")
        assert list((tmp_path / "files").iterdir()) == []
        assert store.list_sync("file") == []
        store.close()

    asyncio.run(main())


def test_concurrent_uploads(files_server):
    async def main():
        async with httpx.AsyncClient(base_url=files_server.base_url, timeout=60) as c:
            blobs = [_blob(64 * 1024 + i, seed=100 + i) for i in range(8)]
            rs = await asyncio.gather(*(
                c.post("/v1/files", files={"file": (f"c{i}.bin", b)}, data={"purpose": "assistants"})
                for i, b in enumerate(blobs)
            ))
            ids = [r.json()["id"] for r in rs]
            assert len(set(ids)) == 8
            got = await asyncio.gather(*(c.get(f"/v1/files/{i}/content") for i in ids))
            assert [g.content for g in got] == blobs

    asyncio.run(main())


def test_no_files_provider_is_a_clear_404():
    """A distribution without a files provider: the routes answer 404 saying how to configure one."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from vistack.server.errors import install_error_handlers
    from vistack.server.routes import files

    class NoFiles:
        files = None

    app = FastAPI()
    app.state.stack = NoFiles()
    install_error_handlers(app)
    app.include_router(files.router)
    with TestClient(app) as c:
        for method, path in [("GET", "/v1/files"), ("GET", "/v1/files/file-abc"), ("DELETE", "/v1/files/file-abc"),
                             ("GET", "/v1/files/file-abc/content")]:
            err = _error(c.request(method, path), 404)
            assert err["code"] == "api_not_configured" and "providers.files" in err["message"]
        err = _error(c.post("/v1/files", files={"file": ("a", b"x")}, data={"purpose": "batch"}), 404)
        assert err["code"] == "api_not_configured"
