"""Fusing ranked result lists (dense + BM25) into one: reciprocal-rank and weighted.

Pure functions over :class:`ScoredChunk` lists, each list best first. A chunk
found by several retrievers appears once in the output, as the *richest* of
its copies (one carrying an embedding, then the most metadata, then the
longest text; the first seen on ties), with the fused score. Output is best
first; equal scores keep the order in which chunks were first seen (list by
list, rank by rank), so results are deterministic.

- :func:`reciprocal_rank_fusion`: ``score = sum_i w_i / (k + rank_i)``, rank from 1
  (Cormack et al. 2009; Llama Stack's ``rrf`` ranker with ``impact_factor`` = ``k``).
- :func:`weighted_fusion`: min-max normalised scores, ``alpha * vector + (1 - alpha) * keyword``
  (Llama Stack's ``weighted`` ranker: alpha=1 is vector only, alpha=0 keyword only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vistack.api.protocols import ScoredChunk, StoredChunk

__all__ = ["reciprocal_rank_fusion", "weighted_fusion"]


def _richness(chunk: StoredChunk) -> tuple[bool, int, int]:
    return (chunk.embedding is not None, len(chunk.metadata), len(chunk.text))


class _Pool:
    """Chunks by id in first-seen order, keeping the richest copy of each."""

    def __init__(self) -> None:
        self.chunks: dict[str, StoredChunk] = {}

    def see(self, chunk: StoredChunk) -> None:
        current = self.chunks.get(chunk.id)
        if current is None or _richness(chunk) > _richness(current):
            self.chunks[chunk.id] = chunk

    def ranked(self, scores: dict[str, float]) -> list[ScoredChunk]:
        first_seen = {cid: i for i, cid in enumerate(self.chunks)}
        order = sorted(scores, key=lambda cid: (-scores[cid], first_seen[cid]))
        return [ScoredChunk(chunk=self.chunks[cid], score=scores[cid]) for cid in order]


def reciprocal_rank_fusion(
    result_lists: Sequence[Sequence[ScoredChunk]],
    k: float = 60.0,
    weights: Sequence[float] | None = None,
) -> list[ScoredChunk]:
    """Fuse best-first lists by reciprocal rank: ``sum w / (k + rank)``, rank from 1.

    A chunk repeated within one list counts at its best rank only. ``weights``
    (one per list, default all 1) scale each list's contribution.
    """
    if not math.isfinite(k) or k < 0:
        raise ValueError(f"k must be a finite number >= 0, got {k}")
    if weights is None:
        weights = [1.0] * len(result_lists)
    elif len(weights) != len(result_lists):
        raise ValueError(f"got {len(weights)} weights for {len(result_lists)} result lists")
    pool = _Pool()
    scores: dict[str, float] = {}
    for results, weight in zip(result_lists, weights):
        seen: set[str] = set()
        for rank, hit in enumerate(results, start=1):
            cid = hit.chunk.id
            pool.see(hit.chunk)
            if cid in seen:
                continue
            seen.add(cid)
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    return pool.ranked(scores)


def _min_max(results: Sequence[ScoredChunk]) -> dict[str, float]:
    """Each chunk's best score scaled to [0, 1]; all 1.0 when every score is equal."""
    best: dict[str, float] = {}
    for hit in results:
        cid = hit.chunk.id
        if cid not in best or hit.score > best[cid]:
            best[cid] = hit.score
    if not best:
        return {}
    lo, hi = min(best.values()), max(best.values())
    span = hi - lo
    if span > 0:
        return {cid: (s - lo) / span for cid, s in best.items()}
    return dict.fromkeys(best, 1.0)


def weighted_fusion(
    vector: Sequence[ScoredChunk],
    keyword: Sequence[ScoredChunk],
    alpha: float = 0.5,
) -> list[ScoredChunk]:
    """``alpha * norm(vector) + (1 - alpha) * norm(keyword)``, min-max normalised per list.

    A chunk missing from one list scores 0 there. ``alpha`` = 1 ranks by the
    vector scores only, 0 by the keyword scores only.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    pool = _Pool()
    for hit in (*vector, *keyword):
        pool.see(hit.chunk)
    v, kw = _min_max(vector), _min_max(keyword)
    scores = {cid: alpha * v.get(cid, 0.0) + (1.0 - alpha) * kw.get(cid, 0.0) for cid in pool.chunks}
    return pool.ranked(scores)
