"""vistack.rag.index: one store's dense (embedded Chroma) and keyword (BM25) copies kept in step."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from vistack.api import NotFoundError
from vistack.api.filters import parse_filter
from vistack.api.protocols import ProviderContext, StoredChunk
from vistack.api.vector_stores import VectorStoreObject
from vistack.providers.vector_io.chroma import ChromaInlineConfig, ChromaVectorIOProvider
from vistack.rag.index import StoreIndex, StoreIndexes
from vistack.rag.records import StoreRecord

DIM = 4
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def unit(*weights: float) -> list[float]:
    v = list(weights) + [0.0] * (DIM - len(weights))
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def chunk(cid: str, text: str, vec: list[float], **metadata) -> StoredChunk:
    return StoredChunk(id=cid, text=text, metadata=metadata, embedding=vec)


def store_record(store_id: str) -> StoreRecord:
    return StoreRecord(
        object=VectorStoreObject(id=store_id, created_at=0),
        provider_id="chromadb",
        embedding_model="test/embedder",
        embedding_dimension=DIM,
    )


@pytest.fixture
async def chroma(tmp_path: Path):
    provider = ChromaVectorIOProvider(ChromaInlineConfig(db_path=str(tmp_path / "chroma")))
    provider.provider_id = "chromadb"
    provider.context = ProviderContext(state_dir=tmp_path, store=None)
    await provider.initialize()
    yield provider
    await provider.shutdown()


@pytest.fixture
async def indexes(chroma, tmp_path: Path):
    registry = StoreIndexes({"chromadb": chroma}, tmp_path / "keyword")
    yield registry
    registry.close()


@pytest.fixture
async def index(indexes: StoreIndexes) -> StoreIndex:
    index = await indexes.create(store_record("vs_test"))
    await index.add([
        chunk("a1", "quarterly revenue grew in EMEA", unit(1), file_id="file-a", page=1, team="sales"),
        chunk("a2", "headcount stayed flat", unit(0, 1), file_id="file-a", page=2, team="sales"),
        chunk("b1", "invoice INV-2025-00417 is overdue", unit(0, 0, 1), file_id="file-b", page=1),
    ])
    return index


async def both_copies(index: StoreIndex, query: str, **where) -> tuple[set[str], set[str]]:
    """Chunk ids matching ``where`` in the dense copy, and BM25 hits for ``query`` under the same filter."""
    dense = {c.id for c in await index.get(where)}
    flt = parse_filter({"type": "and", "filters": [{"type": "eq", "key": k, "value": v} for k, v in where.items()]})
    keyword = {h.chunk.id for h in await index.keyword_search(query, 10, flt if where else None)}
    return dense, keyword


@pytest.mark.anyio
async def test_add_reaches_both_copies(index: StoreIndex) -> None:
    assert await both_copies(index, "revenue headcount invoice") == ({"a1", "a2", "b1"}, {"a1", "a2", "b1"})
    hits = await index.dense_search(unit(1), 1)
    assert [h.chunk.id for h in hits] == ["a1"] and hits[0].score == pytest.approx(1.0)


@pytest.mark.anyio
async def test_delete_removes_from_both_copies(index: StoreIndex) -> None:
    await index.delete({"file_id": "file-a"})
    assert await both_copies(index, "revenue headcount invoice") == ({"b1"}, {"b1"})
    with pytest.raises(ValueError, match="non-empty"):
        await index.delete({})


@pytest.mark.anyio
async def test_update_metadata_rewrites_both_copies_and_keeps_vectors(index: StoreIndex) -> None:
    def rehome(metadata: dict) -> dict:
        return {**{k: v for k, v in metadata.items() if k != "team"}, "file_id": "file-c", "dept": "legal"}

    assert await index.update_metadata({"file_id": "file-a"}, rehome) == 2
    assert await both_copies(index, "revenue headcount", file_id="file-a") == (set(), set())
    assert await both_copies(index, "revenue headcount", file_id="file-c", dept="legal") == ({"a1", "a2"}, {"a1", "a2"})
    (a1,) = [c for c in await index.get({"file_id": "file-c"}, include_embeddings=True) if c.id == "a1"]
    assert "team" not in a1.metadata and a1.text == "quarterly revenue grew in EMEA"
    assert a1.embedding == pytest.approx(unit(1))
    assert await index.update_metadata({"file_id": "file-a"}, rehome) == 0  # idempotent: nothing left to move


@pytest.mark.anyio
async def test_drop_removes_both_copies_and_the_bm25_directory(indexes: StoreIndexes, index: StoreIndex,
                                                               tmp_path: Path) -> None:
    await index.flush()
    assert (tmp_path / "keyword" / "vs_test").is_dir()
    await indexes.drop(store_record("vs_test"))
    assert not (tmp_path / "keyword" / "vs_test").exists()
    with pytest.raises(NotFoundError):
        await index.get({})
    fresh = indexes.of(store_record("vs_test"))
    assert fresh is not index and await fresh.keyword_search("revenue", 5) == []


@pytest.mark.anyio
async def test_one_index_per_store_survives_close(indexes: StoreIndexes, index: StoreIndex) -> None:
    assert indexes.of(store_record("vs_test")) is index
    indexes.close()  # flushes BM25 to disk; a later lookup reopens it
    reopened = indexes.of(store_record("vs_test"))
    assert reopened is not index
    assert {h.chunk.id for h in await reopened.keyword_search("invoice", 5)} == {"b1"}


# ----- the invariant: nothing else writes to either copy ------------------------------------------

_DENSE_WRITES = {"add_chunks", "delete_chunks", "delete_collection", "create_collection"}


def _product_modules() -> list[Path]:
    roots = ("rag", "agents", "safety", "vistack", "providers")
    return [p for root in roots for p in (REPO / root).rglob("*.py") if ".venv" not in p.parts]


def test_only_the_store_index_writes_chunks() -> None:
    """Dense writes are calls to the vector_io protocol's write methods; keyword copies are KeywordIndex objects."""
    offenders = []
    allowed = {REPO / "rag" / "index.py", REPO / "rag" / "keyword_index.py"}
    for path in _product_modules():
        if path in allowed or "vector_io" in path.parts or path.name == "protocols.py":
            continue  # the index itself, the providers implementing the protocol, the protocol
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _DENSE_WRITES or name == "KeywordIndex":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert offenders == []
