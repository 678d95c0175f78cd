"""Hybrid retrieval: dense (embedding + vector DB) and BM25, fused with RRF,
optionally reranked by a cross-encoder, then thresholded.
"""

from __future__ import annotations

import asyncio

from vistack.api import BadRequestError
from vistack.api.filters import Filter
from vistack.api.protocols import ScoredChunk
from vistack.api.vector_stores import RankingOptions, SearchMode
from vistack.rag.fusion import reciprocal_rank_fusion, weighted_fusion
from vistack.rag.index import Embedder, StoreIndexes
from vistack.rag.readers.normalize import normalize_text
from vistack.rag.records import StoreRecord
from vistack.rag.rerank import CrossEncoderReranker

# Each retriever fetches this many times k before fusion, so a chunk ranked
# moderately by both can still win.
CANDIDATE_MULTIPLIER = 4
MIN_CANDIDATES = 20
RANKERS = {None, "auto", "default", "default-2024-11-15", "rrf", "weighted", "none"}


class HybridSearcher:
    def __init__(self, indexes: StoreIndexes, embed: Embedder, reranker: CrossEncoderReranker | None = None) -> None:
        self.indexes = indexes
        self.embed = embed
        self.reranker = reranker

    async def search(
        self,
        store: StoreRecord,
        query: str,
        k: int,
        mode: SearchMode,
        filters: Filter | None,
        ranking: RankingOptions | None,
    ) -> list[ScoredChunk]:
        ranker = ranking.ranker if ranking else None
        if ranker not in RANKERS:
            raise BadRequestError(
                f"unknown ranker '{ranker}'; expected one of: auto, default-2024-11-15, rrf, weighted, none",
                param="ranking_options.ranker",
            )
        use_reranker = self.reranker is not None and ranker != "none"
        fetch = max(k * CANDIDATE_MULTIPLIER, MIN_CANDIDATES) if (mode == "hybrid" or use_reranker) else k
        index = self.indexes.of(store)
        query = normalize_text(query)  # as the chunks were

        async def dense() -> list[ScoredChunk]:
            [vector] = await self.embed(store, [query])
            return await index.dense_search(vector, fetch, filters)

        async def sparse() -> list[ScoredChunk]:
            return await index.keyword_search(query, fetch, filters)

        if mode == "vector":
            results = await dense()
        elif mode == "keyword":
            results = await sparse()
        else:
            vector_hits, keyword_hits = await asyncio.gather(dense(), sparse())
            if ranker == "weighted":
                alpha = ranking.alpha if ranking and ranking.alpha is not None else 0.5
                results = weighted_fusion(vector_hits, keyword_hits, alpha)
            else:
                impact = ranking.impact_factor if ranking and ranking.impact_factor else 60.0
                results = reciprocal_rank_fusion([vector_hits, keyword_hits], k=impact)
        if use_reranker and results:
            results = await asyncio.to_thread(self.reranker.rerank, query, results, k)  # type: ignore[union-attr]
        threshold = ranking.score_threshold if ranking and ranking.score_threshold else None
        if threshold is not None:
            results = [r for r in results if r.score >= threshold]
        return results[:k]
