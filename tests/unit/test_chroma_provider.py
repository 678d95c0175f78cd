"""The Chroma vector_io provider, run against embedded Chroma and a real `chroma run` server.

Every test taking ``provider`` / ``open_provider`` runs twice: ``inline``
(PersistentClient in a temp dir) and ``remote`` (HttpClient against one
``chroma run`` subprocess shared by the module). Vectors are small hand-made
unit vectors of dimension 8, so scores are known exactly.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from vistack.api import Api, BadRequestError, HealthStatus, NotFoundError, ServiceUnavailableError
from vistack.api.filters import matches, parse_filter
from vistack.api.protocols import ProviderContext, StoredChunk
from vistack.providers.vector_io.chroma import (
    NOTHING,
    ChromaInlineConfig,
    ChromaRemoteConfig,
    ChromaVectorIOProvider,
    collection_name,
    translate_filter,
)
from vistack.registry import ProviderRegistry

try:
    from chroma_server import ChromaServer, free_port
except ImportError:  # run from another rootdir: tests/ is where the helper lives
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from chroma_server import ChromaServer, free_port

DIM = 8


def e(*weights: float) -> list[float]:
    """A unit vector of dimension DIM from leading weights: e(1) = e0, e(1, 1) = (e0+e1)/sqrt2."""
    v = list(weights) + [0.0] * (DIM - len(weights))
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def chunk(cid: str, vec: list[float], text: str | None = None, **metadata: Any) -> StoredChunk:
    return StoredChunk(id=cid, text=text if text is not None else f"text of {cid}", metadata=metadata, embedding=vec)


def new_store_id() -> str:
    return f"vs_{uuid.uuid4()}"


# ----- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    with ChromaServer(tmp_path_factory.mktemp("chroma-server") / "db") as server:
        yield server


@dataclass
class Backend:
    kind: str
    state_dir: Path
    url: str | None = None
    db_path: Path | None = None

    def config(self) -> ChromaInlineConfig | ChromaRemoteConfig:
        if self.kind == "inline":
            return ChromaInlineConfig(db_path=str(self.db_path))
        return ChromaRemoteConfig(url=self.url)


@pytest.fixture(params=["inline", "remote"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "inline":
        return Backend("inline", tmp_path, db_path=tmp_path / "chroma-db")
    server = request.getfixturevalue("chroma_server")
    return Backend("remote", tmp_path, url=server.url)


async def _open(config, state_dir: Path) -> ChromaVectorIOProvider:
    provider = ChromaVectorIOProvider(config)
    provider.provider_id = "chromadb"
    provider.context = ProviderContext(state_dir=state_dir, store=None)
    await provider.initialize()
    return provider


@pytest.fixture
async def open_provider(backend: Backend):
    """Factory: a fresh, initialised provider on the same storage each call; all shut down at teardown."""
    opened: list[ChromaVectorIOProvider] = []

    async def open_() -> ChromaVectorIOProvider:
        provider = await _open(backend.config(), backend.state_dir)
        opened.append(provider)
        return provider

    yield open_
    for provider in opened:
        await provider.shutdown()


@pytest.fixture
async def provider(open_provider) -> ChromaVectorIOProvider:
    return await open_provider()


# ----- add / get / query ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_add_query_ordering_and_scores(provider: ChromaVectorIOProvider) -> None:
    sid = new_store_id()
    await provider.create_collection(sid, DIM)
    await provider.create_collection(sid, DIM)  # idempotent
    await provider.add_chunks(
        sid,
        [
            chunk("a", e(1), file_id="f1", page=1),
            chunk("ab", e(1, 1), file_id="f1", page=2),
            chunk("b", e(0, 1), file_id="f2", page=1),
            chunk("neg", e(-1), file_id="f2", page=2),
        ],
    )
    assert await provider.count(sid) == 4

    hits = await provider.query(sid, e(1), k=3)
    assert [h.chunk.id for h in hits] == ["a", "ab", "b"]
    assert [h.score for h in hits] == pytest.approx([1.0, math.sqrt(0.5), 0.0], abs=1e-5)
    assert hits[0].chunk.text == "text of a"
    assert hits[0].chunk.metadata == {"file_id": "f1", "page": 1}
    assert hits[0].chunk.embedding is None

    everything = await provider.query(sid, e(1), k=10)
    assert [h.chunk.id for h in everything] == ["a", "ab", "b", "neg"]
    assert everything[-1].score == pytest.approx(-1.0, abs=1e-5)
    assert await provider.query(sid, e(1), k=0) == []


@pytest.mark.anyio
async def test_get_chunks_order_and_embeddings(provider: ChromaVectorIOProvider) -> None:
    sid = new_store_id()
    await provider.create_collection(sid, DIM)
    # inserted out of order on purpose
    await provider.add_chunks(
        sid,
        [
            chunk("p2c1", e(1, 2), file_id="f1", page=2, chunk_index=1),
            chunk("nopage", e(0, 0, 1), file_id="f1"),
            chunk("p1c1", e(1, 1), file_id="f1", page=1, chunk_index=1),
            chunk("p2c0", e(0, 1), file_id="f1", page=2, chunk_index=0),
            chunk("p1c0", e(1), file_id="f1", page=1, chunk_index=0),
            chunk("other", e(0, 0, 0, 1), file_id="f2", page=1, chunk_index=0),
        ],
    )
    got = await provider.get_chunks(sid, {"file_id": "f1"})
    assert [c.id for c in got] == ["p1c0", "p1c1", "p2c0", "p2c1", "nopage"]
    assert all(c.embedding is None for c in got)
    assert got[0].text == "text of p1c0"
    assert got[0].metadata == {"file_id": "f1", "page": 1, "chunk_index": 0}

    with_emb = await provider.get_chunks(sid, {"file_id": "f1", "page": 2}, include_embeddings=True)
    assert [c.id for c in with_emb] == ["p2c0", "p2c1"]
    assert with_emb[0].embedding == pytest.approx(e(0, 1), abs=1e-6)
    assert with_emb[1].embedding == pytest.approx(e(1, 2), abs=1e-6)

    assert len(await provider.get_chunks(sid, {})) == 6
    assert await provider.get_chunks(sid, {"file_id": "nope"}) == []


@pytest.mark.anyio
async def test_upsert_overwrites(provider: ChromaVectorIOProvider) -> None:
    sid = new_store_id()
    await provider.create_collection(sid, DIM)
    await provider.add_chunks(sid, [chunk("x", e(1), "old", file_id="f1", stale="yes"), chunk("y", e(0, 1))])
    await provider.add_chunks(sid, [chunk("x", e(0, 0, 1), "new", file_id="f1", page=3)])
    assert await provider.count(sid) == 2
    (x,) = [c for c in await provider.get_chunks(sid, {"file_id": "f1"}, include_embeddings=True)]
    assert x.text == "new"
    assert x.metadata == {"file_id": "f1", "page": 3}  # metadata replaced, not merged
    assert x.embedding == pytest.approx(e(0, 0, 1), abs=1e-6)
    hits = await provider.query(sid, e(0, 0, 1), k=1)
    assert hits[0].chunk.id == "x" and hits[0].score == pytest.approx(1.0, abs=1e-5)

    # duplicate ids inside one call: the last one wins
    await provider.add_chunks(sid, [chunk("z", e(1), "first"), chunk("z", e(1), "second")])
    assert [c.text for c in await provider.get_chunks(sid, {}) if c.id == "z"] == ["second"]


@pytest.mark.anyio
async def test_add_in_batches(backend: Backend) -> None:
    config = backend.config().model_copy(update={"batch_size": 7})
    provider = await _open(config, backend.state_dir)
    try:
        sid = new_store_id()
        await provider.create_collection(sid, DIM)
        await provider.add_chunks(
            sid, [chunk(f"c{i:02d}", e(1, i / 10), file_id="f", page=i // 5, chunk_index=i % 5) for i in range(30)]
        )
        assert await provider.count(sid) == 30
        got = await provider.get_chunks(sid, {"file_id": "f"})  # paged by batch_size as well
        assert [c.id for c in got] == [f"c{i:02d}" for i in range(30)]
        await provider.delete_chunks(sid, {"file_id": "f"})
        assert await provider.count(sid) == 0
    finally:
        await provider.shutdown()


@pytest.mark.anyio
async def test_delete_by_file_id(provider: ChromaVectorIOProvider) -> None:
    sid = new_store_id()
    await provider.create_collection(sid, DIM)
    await provider.add_chunks(
        sid,
        [chunk("a1", e(1), file_id="f1"), chunk("a2", e(1, 1), file_id="f1"), chunk("b1", e(0, 1), file_id="f2")],
    )
    await provider.delete_chunks(sid, {"file_id": "f1"})
    assert await provider.count(sid) == 1
    assert [c.id for c in await provider.get_chunks(sid, {})] == ["b1"]
    assert [h.chunk.id for h in await provider.query(sid, e(1), k=5)] == ["b1"]

    await provider.delete_chunks(sid, {"file_id": "f1"})  # again: nothing left to delete
    await provider.delete_chunks(new_store_id(), {"file_id": "f1"})  # unknown store: no-op
    with pytest.raises(BadRequestError):
        await provider.delete_chunks(sid, {})  # never "delete everything" by accident
    assert await provider.count(sid) == 1


# ----- filters --------------------------------------------------------------------------------

# nearest to the query first: q0 is closest to e(1)
FILTER_CHUNKS = [
    ("q0", e(1, 0.0), {"file_id": "f1", "page": 1, "lang": "en", "year": 2021, "score": 0.5, "draft": True}),
    ("q1", e(1, 0.2), {"file_id": "f1", "page": 2, "lang": "de", "year": 2022, "score": 1.5}),
    ("q2", e(1, 0.4), {"file_id": "f2", "page": 1, "year": 2023.0, "draft": False}),
    ("q3", e(1, 0.6), {"file_id": "f2", "page": 2, "lang": "en", "year": "2024", "score": 2}),
    ("q4", e(1, 0.8), {"file_id": "f3", "page": 1, "lang": "fr", "year": 2020, "draft": 1}),
    ("q5", e(1, 1.0), {"file_id": "f3", "page": 3}),
]

FILTER_CASES: list[tuple[str, dict, list[str]]] = [
    ("eq str", {"type": "eq", "key": "lang", "value": "en"}, ["q0", "q3"]),
    ("eq int matches float", {"type": "eq", "key": "year", "value": 2023}, ["q2"]),
    ("eq bool is not int", {"type": "eq", "key": "draft", "value": True}, ["q0"]),
    ("eq int is not bool", {"type": "eq", "key": "draft", "value": 1}, ["q4"]),
    ("ne keeps missing key", {"type": "ne", "key": "lang", "value": "en"}, ["q1", "q2", "q4", "q5"]),
    ("ne bool", {"type": "ne", "key": "draft", "value": True}, ["q1", "q2", "q3", "q4", "q5"]),
    ("gt number", {"type": "gt", "key": "year", "value": 2021}, ["q1", "q2"]),
    ("gte number", {"type": "gte", "key": "score", "value": 1.5}, ["q1", "q3"]),
    ("lt number", {"type": "lt", "key": "year", "value": 2022}, ["q0", "q4"]),
    ("lte float", {"type": "lte", "key": "score", "value": 0.5}, ["q0"]),
    ("gt string compares strings only", {"type": "gt", "key": "year", "value": "2000"}, ["q3"]),
    ("in", {"type": "in", "key": "lang", "value": ["de", "fr"]}, ["q1", "q4"]),
    ("in mixed types", {"type": "in", "key": "year", "value": [2022, "2024", 2023.0, True]}, ["q1", "q2", "q3"]),
    ("in scalar", {"type": "in", "key": "page", "value": 3}, ["q5"]),
    ("in empty", {"type": "in", "key": "page", "value": []}, []),
    ("nin keeps missing key", {"type": "nin", "key": "lang", "value": ["en", "de"]}, ["q2", "q4", "q5"]),
    ("nin empty", {"type": "nin", "key": "lang", "value": []}, ["q0", "q1", "q2", "q3", "q4", "q5"]),
    (
        "and",
        {
            "type": "and",
            "filters": [{"type": "eq", "key": "page", "value": 1}, {"type": "gt", "key": "year", "value": 2020}],
        },
        ["q0", "q2"],
    ),
    (
        "or",
        {
            "type": "or",
            "filters": [{"type": "eq", "key": "lang", "value": "fr"}, {"type": "eq", "key": "file_id", "value": "f1"}],
        },
        ["q0", "q1", "q4"],
    ),
    (
        "nested and/or with ne",
        {
            "type": "and",
            "filters": [
                {
                    "type": "or",
                    "filters": [
                        {"type": "eq", "key": "file_id", "value": "f2"},
                        {"type": "eq", "key": "file_id", "value": "f3"},
                    ],
                },
                {"type": "ne", "key": "lang", "value": "en"},
            ],
        },
        ["q2", "q4", "q5"],
    ),
    (
        "or of and",
        {
            "type": "or",
            "filters": [
                {
                    "type": "and",
                    "filters": [
                        {"type": "eq", "key": "page", "value": 1},
                        {"type": "eq", "key": "lang", "value": "fr"},
                    ],
                },
                {"type": "gte", "key": "score", "value": 2},
            ],
        },
        ["q3", "q4"],
    ),
    ("single-child and", {"type": "and", "filters": [{"type": "eq", "key": "page", "value": 2}]}, ["q1", "q3"]),
    ("single-child or", {"type": "or", "filters": [{"type": "eq", "key": "page", "value": 3}]}, ["q5"]),
    ("empty and = everything", {"type": "and", "filters": []}, ["q0", "q1", "q2", "q3", "q4", "q5"]),
    ("empty or = nothing", {"type": "or", "filters": []}, []),
    ("unknown key", {"type": "eq", "key": "nope", "value": 1}, []),
]


@pytest.mark.anyio
async def test_filters(provider: ChromaVectorIOProvider) -> None:
    sid = new_store_id()
    await provider.create_collection(sid, DIM)
    await provider.add_chunks(sid, [chunk(cid, vec, **md) for cid, vec, md in FILTER_CHUNKS])
    for name, raw, expected in FILTER_CASES:
        flt = parse_filter(raw)
        # the hand-written expectation agrees with the reference semantics...
        assert [cid for cid, _, md in FILTER_CHUNKS if matches(flt, md)] == expected, name
        # ...and so does the provider, best first, whether given the model or the raw dict
        hits = await provider.query(sid, e(1), k=10, filters=flt)
        assert [h.chunk.id for h in hits] == expected, name
        hits = await provider.query(sid, e(1), k=10, filters=raw)
        assert [h.chunk.id for h in hits] == expected, name
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True), name
    # k is honoured after filtering
    hits = await provider.query(sid, e(1), k=2, filters={"type": "ne", "key": "lang", "value": "en"})
    assert [h.chunk.id for h in hits] == ["q1", "q2"]
    with pytest.raises(BadRequestError):
        await provider.query(sid, e(1), k=2, filters={"type": "near", "key": "x", "value": 1})


@pytest.mark.anyio
async def test_post_filter_over_fetches_until_k(provider: ChromaVectorIOProvider) -> None:
    """The nearest 40 chunks fail a `ne` filter (not pushed down): the provider keeps fetching."""
    sid = new_store_id()
    await provider.create_collection(sid, DIM)
    near = [chunk(f"n{i:02d}", e(1, i / 100), lang="en") for i in range(40)]
    far = [chunk(f"f{i}", e(1, 5 + i), **({"lang": "de"} if i % 2 else {})) for i in range(4)]
    await provider.add_chunks(sid, near + far)
    hits = await provider.query(sid, e(1), k=3, filters={"type": "ne", "key": "lang", "value": "en"})
    assert [h.chunk.id for h in hits] == ["f0", "f1", "f2"]
    hits = await provider.query(sid, e(1), k=10, filters={"type": "nin", "key": "lang", "value": ["en"]})
    assert [h.chunk.id for h in hits] == ["f0", "f1", "f2", "f3"]


# ----- errors ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_dimension_mismatch_is_400(provider: ChromaVectorIOProvider) -> None:
    sid = new_store_id()
    await provider.create_collection(sid, DIM)
    with pytest.raises(BadRequestError) as err:
        await provider.add_chunks(sid, [chunk("short", [1.0, 0.0, 0.0, 0.0])])
    assert err.value.status_code == 400
    assert "dimension 4" in err.value.message and f"dimension {DIM}" in err.value.message
    with pytest.raises(BadRequestError):
        await provider.query(sid, [1.0, 0.0], k=1)
    with pytest.raises(BadRequestError):
        await provider.create_collection(sid, 4)
    with pytest.raises(BadRequestError):
        await provider.add_chunks(sid, [StoredChunk(id="noemb", text="t")])
    with pytest.raises(BadRequestError):
        await provider.add_chunks(sid, [chunk("nan", [float("nan")] + [0.0] * (DIM - 1))])
    with pytest.raises(BadRequestError):
        await provider.create_collection(new_store_id(), 0)
    assert await provider.count(sid) == 0


@pytest.mark.anyio
async def test_metadata_restrictions(provider: ChromaVectorIOProvider) -> None:
    sid = new_store_id()
    await provider.create_collection(sid, DIM)
    # None values are dropped (the key is absent); empty metadata is fine
    loose = StoredChunk.model_construct(id="n", text="t", metadata={"a": 1, "gone": None}, embedding=e(1))
    await provider.add_chunks(sid, [loose, chunk("empty", e(0, 1))])
    got = {c.id: c.metadata for c in await provider.get_chunks(sid, {})}
    assert got == {"n": {"a": 1}, "empty": {}}
    for bad in ({"bbox": [1, 2, 3, 4]}, {"d": {"x": 1}}, {"chroma:document": "x"}, {"big": 2**70}):
        with pytest.raises(BadRequestError):
            await provider.add_chunks(
                sid, [StoredChunk.model_construct(id="b", text="t", metadata=bad, embedding=e(1))]
            )
    assert await provider.count(sid) == 2


@pytest.mark.anyio
async def test_unknown_store_is_404_and_deletes_are_idempotent(provider: ChromaVectorIOProvider) -> None:
    sid = new_store_id()
    for call in (
        provider.query(sid, e(1), k=1),
        provider.get_chunks(sid, {}),
        provider.count(sid),
        provider.add_chunks(sid, [chunk("a", e(1))]),
    ):
        with pytest.raises(NotFoundError) as err:
            await call
        assert err.value.status_code == 404 and sid in err.value.message
    await provider.delete_collection(sid)  # never existed: fine

    await provider.create_collection(sid, DIM)
    await provider.add_chunks(sid, [chunk("a", e(1))])
    await provider.delete_collection(sid)
    await provider.delete_collection(sid)
    with pytest.raises(NotFoundError):
        await provider.count(sid)
    await provider.create_collection(sid, DIM)  # recreated empty, through a stale cache
    assert await provider.count(sid) == 0


@pytest.mark.anyio
async def test_collection_deleted_by_another_instance(open_provider) -> None:
    first, second = await open_provider(), await open_provider()
    sid = new_store_id()
    await first.create_collection(sid, DIM)
    await first.add_chunks(sid, [chunk("a", e(1))])
    assert await second.count(sid) == 1  # second caches the collection
    await first.delete_collection(sid)
    await first.create_collection(sid, DIM)
    await first.add_chunks(sid, [chunk("b", e(1)), chunk("c", e(0, 1))])
    assert await second.count(sid) == 2  # stale cache detected and refreshed


# ----- persistence, health, availability ------------------------------------------------------


@pytest.mark.anyio
async def test_persistence_across_instances(open_provider) -> None:
    first = await open_provider()
    sid = new_store_id()
    await first.create_collection(sid, DIM)
    await first.add_chunks(sid, [chunk("a", e(1), file_id="f1", page=1), chunk("b", e(0, 1), file_id="f1", page=2)])
    await first.shutdown()

    second = await open_provider()
    assert await second.count(sid) == 2
    hits = await second.query(sid, e(0, 1), k=1)
    assert hits[0].chunk.id == "b" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(BadRequestError):  # the recorded dimension survived too
        await second.add_chunks(sid, [chunk("c", [1.0, 0.0])])


@pytest.mark.anyio
async def test_health_ok(provider: ChromaVectorIOProvider) -> None:
    health = await provider.health()
    assert health.status == HealthStatus.OK


@pytest.mark.anyio
async def test_concurrent_calls(provider: ChromaVectorIOProvider) -> None:
    sids = [new_store_id() for _ in range(4)]
    await asyncio.gather(*(provider.create_collection(s, DIM) for s in sids))
    await asyncio.gather(
        *(provider.add_chunks(s, [chunk(f"{i}-{j}", e(1, j)) for j in range(10)]) for i, s in enumerate(sids))
    )
    counts = await asyncio.gather(*(provider.count(s) for s in sids))
    assert counts == [10, 10, 10, 10]
    results = await asyncio.gather(*(provider.query(s, e(1), k=3) for s in sids for _ in range(3)))
    assert all(len(r) == 3 for r in results)


@pytest.mark.anyio
async def test_server_down_is_503_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    provider = await _open(ChromaRemoteConfig(url=url, timeout_s=2), tmp_path)  # must not raise
    try:
        health = await provider.health()
        assert health.status == HealthStatus.ERROR and url in (health.message or "")
        for call in (provider.create_collection(new_store_id(), DIM), provider.query("vs_x", e(1), k=1)):
            with pytest.raises(ServiceUnavailableError) as err:
                await call
            assert err.value.status_code == 503
            assert url in err.value.message and "chroma run" in err.value.message
            assert "CHROMA_URL" in err.value.message
    finally:
        await provider.shutdown()


@pytest.mark.anyio
async def test_unresponsive_server_fails_fast(tmp_path: Path) -> None:
    """A host that never answers: bounded by timeout_s, never a hang.

    A loopback listener accepts the TCP connection (kernel backlog) and never
    answers, which is what an unreachable host looks like to the client,
    without sending anything off this machine.
    """
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        provider = await _open(ChromaRemoteConfig(url=url, timeout_s=0.5), tmp_path)
        try:
            with pytest.raises(ServiceUnavailableError) as err:
                await provider.count(new_store_id())
            assert url in err.value.message
            assert (await provider.health()).status == HealthStatus.ERROR
        finally:
            await provider.shutdown()
        assert time.monotonic() - start < 10  # bounds a hang (functional), not a speed


@pytest.mark.anyio
async def test_server_restart_keeps_data_and_client_recovers(tmp_path: Path) -> None:
    with ChromaServer(tmp_path / "db") as server:
        provider = await _open(ChromaRemoteConfig(url=server.url, timeout_s=5), tmp_path)
        try:
            sid = new_store_id()
            await provider.create_collection(sid, DIM)
            await provider.add_chunks(sid, [chunk("a", e(1), file_id="f1")])
            server.stop()
            with pytest.raises(ServiceUnavailableError) as err:
                await provider.count(sid)
            assert server.url in err.value.message
            assert (await provider.health()).status == HealthStatus.ERROR
            server.start()
            assert await provider.count(sid) == 1  # same provider, same client: reconnects
            assert (await provider.health()).status == HealthStatus.OK
        finally:
            await provider.shutdown()


@pytest.mark.anyio
async def test_inline_default_path_is_under_state_dir(tmp_path: Path) -> None:
    provider = await _open(ChromaInlineConfig(), tmp_path)
    try:
        await provider.create_collection("vs_default", DIM)
        assert provider.db_path == tmp_path / "chroma"
        assert (tmp_path / "chroma").is_dir()
    finally:
        await provider.shutdown()


# ----- pure helpers and configs ---------------------------------------------------------------


def test_collection_names_are_valid_and_deterministic() -> None:
    sid = "vs_123e4567-e89b-12d3-a456-426614174000"
    assert collection_name(sid) == sid
    valid = __import__("re").compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$")
    odd = ["ab", "a/b", "a_b_", "_x", "1.2.3.4", "a..b", "x" * 100, "vs with spaces", "ü" * 5, "a b"]
    names = [collection_name(s) for s in odd]
    assert all(valid.match(n) and ".." not in n for n in names), names
    assert len(set(names)) == len(odd)
    assert collection_name("a/b") == collection_name("a/b") != collection_name("a_b")


def test_translate_filter_pushdown() -> None:
    def t(raw):
        return translate_filter(parse_filter(raw))

    assert t({"type": "eq", "key": "a", "value": 1}) == ({"a": {"$eq": 1}}, True)
    # a single-child compound is unwrapped (Chroma wants >= 2 children)
    assert t({"type": "and", "filters": [{"type": "eq", "key": "a", "value": 1}]}) == ({"a": {"$eq": 1}}, True)
    assert t({"type": "or", "filters": [{"type": "gt", "key": "a", "value": 1}]}) == ({"a": {"$gt": 1}}, True)
    assert t({"type": "and", "filters": []}) == (None, True)
    assert t({"type": "or", "filters": []}) == (NOTHING, True)
    # ne / nin are post-filtered only; ordering on strings too
    assert t({"type": "ne", "key": "a", "value": 1}) == (None, False)
    assert t({"type": "gt", "key": "a", "value": "x"}) == (None, False)
    # an "and" keeps what it can push down
    where, exact = t(
        {"type": "and", "filters": [{"type": "eq", "key": "a", "value": 1}, {"type": "ne", "key": "b", "value": 2}]}
    )
    assert where == {"a": {"$eq": 1}} and exact is False
    # mixed-type "in" becomes one homogeneous $in per kind
    where, exact = t({"type": "in", "key": "a", "value": [1, 2.5, "x", True]})
    assert where == {"$or": [{"a": {"$in": [1.0, 2.5]}}, {"a": {"$in": ["x"]}}, {"a": {"$in": [True]}}]} and exact
    assert t({"type": "in", "key": "a", "value": []}) == (NOTHING, True)


def test_configs() -> None:
    remote = ChromaRemoteConfig(
        url="https://chroma.example.com:8443/prefix/", auth_token="s3cret", headers={"X-Api-Key": "k"}
    )
    assert (remote.host, remote.port, remote.ssl, remote.url) == (
        "chroma.example.com",
        8443,
        True,
        "https://chroma.example.com:8443/prefix",
    )
    assert remote.request_headers() == {"X-Api-Key": "k", "Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(remote) and "'k'" not in repr(remote)
    assert ChromaRemoteConfig(url="http://localhost").port == 80
    assert ChromaRemoteConfig(url="http://127.0.0.1:8000").port == 8000
    token = ChromaRemoteConfig(url="http://h:1", auth_token="t", auth_header="X-Chroma-Token")
    assert token.request_headers() == {"X-Chroma-Token": "t"}
    for bad in ("", "localhost:8000", "ftp://h", "http://h:notaport"):
        with pytest.raises(ValidationError):
            ChromaRemoteConfig(url=bad)
    with pytest.raises(ValidationError):
        ChromaInlineConfig(hnsw_space="l2")
    with pytest.raises(ValidationError):
        ChromaInlineConfig(unknown=1)
    assert ChromaInlineConfig().db_path is None

    registry = ProviderRegistry()
    for ptype, config_cls in (("inline::chromadb", ChromaInlineConfig), ("remote::chromadb", ChromaRemoteConfig)):
        spec = registry.get(Api.vector_io, ptype)
        assert spec.load_provider_class() is ChromaVectorIOProvider
        assert spec.load_config_class() is config_cls


def test_module_import_does_not_import_chromadb() -> None:
    code = "import sys, vistack.providers.vector_io.chroma; sys.exit('chromadb' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0
