"""Cross-encoder reranking mechanics with a tiny random cross-encoder built here (never its judgement)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vistack.api import ServiceUnavailableError
from vistack.api.protocols import ScoredChunk, StoredChunk
from vistack.rag.rerank import CrossEncoderReranker
from vistack.testing.tiny_models import build_tiny_cross_encoder

pytestmark = pytest.mark.timeout(120)

TEXTS = [
    "quarterly revenue grew in the third quarter",
    "the invoice total is due next month",
    "a dashboard chart of monthly sales",
    "scanned form with a signature",
    "slide deck about hiring plans",
    "table of costs by region",
    "unrelated text",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder") / "model")


@pytest.fixture(scope="module")
def reranker(model_dir: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(str(model_dir), batch_size=3)


def hits() -> list[ScoredChunk]:
    return [
        ScoredChunk(chunk=StoredChunk(id=f"c{i}", text=t, metadata={"i": i}), score=100.0 - i)
        for i, t in enumerate(TEXTS)
    ]


def test_loads_lazily(model_dir: Path) -> None:
    assert CrossEncoderReranker(str(model_dir)).problem() is None
    r = CrossEncoderReranker(str(model_dir))
    assert not r.loaded
    assert r.rerank("q", [], 3) == []
    assert not r.loaded  # nothing to score, nothing loaded


def test_order_follows_the_cross_encoder_scores(reranker: CrossEncoderReranker) -> None:
    query = "revenue chart"
    results = reranker.rerank(query, hits(), top_n=None)
    model = reranker.load()
    raw = model.predict([(query, t) for t in TEXTS], show_progress_bar=False)
    expected = sorted(range(len(TEXTS)), key=lambda i: -float(raw[i]))
    assert [r.chunk.id for r in results] == [f"c{i}" for i in expected]
    assert [r.score for r in results] == pytest.approx([float(raw[i]) for i in expected], rel=1e-5)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert len({round(r.score, 6) for r in results}) > 1  # the scores really come from the model
    assert all(r.chunk.metadata == {"i": int(r.chunk.id[1:])} for r in results)  # chunks kept whole


def test_top_n(reranker: CrossEncoderReranker) -> None:
    full = reranker.rerank("invoice", hits(), top_n=None)
    top3 = reranker.rerank("invoice", hits(), top_n=3)
    assert [r.chunk.id for r in top3] == [r.chunk.id for r in full[:3]]
    assert len(reranker.rerank("invoice", hits(), top_n=100)) == len(TEXTS)
    assert reranker.rerank("invoice", hits(), top_n=0) == []


def test_missing_model_is_a_clear_503(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    r = CrossEncoderReranker(str(missing))
    with pytest.raises(ServiceUnavailableError) as err:
        r.rerank("q", hits(), 2)
    assert str(missing) in err.value.message and "cross-encoder" in err.value.message
    assert err.value.status_code == 503
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(ServiceUnavailableError, match="config.json"):
        CrossEncoderReranker(str(empty_dir)).rerank("q", hits(), 2)
    # the same problems are found without loading, so the server can say so at startup
    assert "not a directory" in (CrossEncoderReranker(str(missing)).problem() or "")
    assert "config.json" in (CrossEncoderReranker(str(empty_dir)).problem() or "")


def test_unloadable_model_names_the_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ServiceUnavailableError) as err:
        CrossEncoderReranker(str(broken)).rerank("q", hits(), 2)
    assert str(broken) in err.value.message
