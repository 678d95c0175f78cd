"""Reciprocal-rank and weighted fusion over hand-made result lists."""

from __future__ import annotations

import pytest

from vistack.api.protocols import ScoredChunk, StoredChunk
from vistack.rag.fusion import reciprocal_rank_fusion, weighted_fusion


def hit(
    cid: str, score: float, text: str | None = None, embedding: list[float] | None = None, **metadata
) -> ScoredChunk:
    return ScoredChunk(
        chunk=StoredChunk(id=cid, text=text or f"text of {cid}", metadata=metadata, embedding=embedding), score=score
    )


def as_pairs(results: list[ScoredChunk]) -> list[tuple[str, float]]:
    return [(r.chunk.id, r.score) for r in results]


# ----- reciprocal rank fusion ----------------------------------------------------------------------


def test_rrf_scores_and_order() -> None:
    dense = [hit("a", 0.9), hit("b", 0.8), hit("c", 0.7)]
    sparse = [hit("c", 12.0), hit("a", 9.0), hit("d", 1.0)]
    fused = reciprocal_rank_fusion([dense, sparse])
    assert [r.chunk.id for r in fused] == ["a", "c", "b", "d"]
    expected = {"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 63}
    for r in fused:
        assert r.score == pytest.approx(expected[r.chunk.id])


def test_rrf_k_and_weights() -> None:
    dense = [hit("a", 0.9), hit("b", 0.8)]
    sparse = [hit("b", 5.0), hit("c", 4.0)]
    fused = dict(as_pairs(reciprocal_rank_fusion([dense, sparse], k=0.0)))
    assert fused == pytest.approx({"a": 1.0, "b": 1 / 2 + 1 / 1, "c": 1 / 2})
    weighted = dict(as_pairs(reciprocal_rank_fusion([dense, sparse], k=10.0, weights=[2.0, 0.5])))
    assert weighted == pytest.approx({"a": 2 / 11, "b": 2 / 12 + 0.5 / 11, "c": 0.5 / 12})
    only_dense = reciprocal_rank_fusion([dense, sparse], weights=[1.0, 0.0])
    assert [r.chunk.id for r in only_dense][:2] == ["a", "b"]


def test_rrf_ignores_input_scores_and_uses_ranks() -> None:
    fused = reciprocal_rank_fusion([[hit("x", -5.0), hit("y", 1000.0)]])
    assert [r.chunk.id for r in fused] == ["x", "y"]


def test_rrf_counts_a_repeated_chunk_once_per_list_at_its_best_rank() -> None:
    fused = dict(as_pairs(reciprocal_rank_fusion([[hit("a", 1.0), hit("b", 0.5), hit("a", 0.1)]])))
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62})


def test_rrf_keeps_the_richest_chunk_object() -> None:
    plain = hit("a", 0.5)
    with_meta = hit("a", 0.4, file_id="f1", page=3)
    with_embedding = hit("a", 0.3, embedding=[0.1, 0.2])
    fused = reciprocal_rank_fusion([[plain], [with_meta], [with_embedding]])
    assert len(fused) == 1
    assert fused[0].chunk.embedding == [0.1, 0.2]
    fused = reciprocal_rank_fusion([[plain], [with_meta]])
    assert fused[0].chunk.metadata == {"file_id": "f1", "page": 3}
    longer = hit("a", 0.4, text="a much longer text of a")
    assert reciprocal_rank_fusion([[plain], [longer]])[0].chunk.text == "a much longer text of a"


def test_rrf_ties_keep_first_seen_order() -> None:
    fused = reciprocal_rank_fusion([[hit("p", 1.0)], [hit("q", 1.0)], [hit("r", 1.0)]])
    assert [r.chunk.id for r in fused] == ["p", "q", "r"]
    assert len({r.score for r in fused}) == 1


def test_rrf_edge_cases() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[hit("a", 1.0)]], weights=[1.0, 2.0])
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[hit("a", 1.0)]], k=-1.0)


# ----- weighted fusion -----------------------------------------------------------------------------


def test_weighted_fusion_min_max_normalises_each_list() -> None:
    vector = [hit("a", 0.9), hit("b", 0.5), hit("c", 0.1)]
    keyword = [hit("c", 20.0), hit("d", 10.0), hit("a", 0.0)]
    fused = dict(as_pairs(weighted_fusion(vector, keyword, alpha=0.5)))
    # vector: a=1, b=0.5, c=0;  keyword: c=1, d=0.5, a=0
    assert fused == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.5, "d": 0.25})
    ordered = weighted_fusion(vector, keyword, alpha=0.5)
    assert [r.chunk.id for r in ordered] == ["a", "c", "b", "d"]  # ties: first seen


def test_weighted_fusion_alpha_extremes() -> None:
    vector = [hit("a", 0.9), hit("b", 0.5)]
    keyword = [hit("b", 7.0), hit("c", 3.0), hit("a", 1.0)]
    only_vector = weighted_fusion(vector, keyword, alpha=1.0)
    assert [r.chunk.id for r in only_vector][:2] == ["a", "b"]
    assert dict(as_pairs(only_vector))["c"] == 0.0
    only_keyword = weighted_fusion(vector, keyword, alpha=0.0)
    assert [r.chunk.id for r in only_keyword] == ["b", "c", "a"]


def test_weighted_fusion_equal_scores_normalise_to_one() -> None:
    fused = dict(as_pairs(weighted_fusion([hit("a", 0.3), hit("b", 0.3)], [], alpha=0.25)))
    assert fused == pytest.approx({"a": 0.25, "b": 0.25})


def test_weighted_fusion_edge_cases() -> None:
    assert weighted_fusion([], [], 0.5) == []
    with pytest.raises(ValueError):
        weighted_fusion([], [], 1.5)
    rich = hit("a", 1.0, embedding=[1.0])
    fused = weighted_fusion([hit("a", 0.2)], [rich], 0.5)
    assert fused[0].chunk.embedding == [1.0]
