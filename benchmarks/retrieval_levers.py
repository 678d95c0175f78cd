"""Retrieval levers measured offline over a store's own chunks: text normalisation, chunk
context, page-level fusion, BM25 parameters. Page-level metrics, as ``retrieval.py``.

    .venv/bin/python benchmarks/retrieval.py --set own --state /tmp/rb      # ingest once, keep the state
    .venv/bin/python benchmarks/retrieval_levers.py --state /tmp/rb         # levers on the own set (~3 min)
    .venv/bin/python benchmarks/retrieval_levers.py --state /tmp/rb --set heldout --confirm-heldout

The chunks are read back from the kept server state (``/v1/vector_stores/{id}/files/{id}/content``)
and re-indexed in this process: the same MiniLM (exact cosine instead of Chroma's HNSW),
vistack's ``KeywordIndex`` (BM25) and RRF with the server's candidate depth. So every lever
changes one thing over the same chunk boundaries. The first row reproduces the server's
hybrid mode (to one question: HNSW vs exact search).

Levers are chosen on the own set. The held-out set is only for checking a chosen lever (the
issue's rule: keep what wins on both sets); ``--confirm-heldout`` makes that explicit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import document_distribution
from retrieval import KINDS, METRICS, SETS, console, first_rank, load_questions, scores, stored_chunks

from vistack.testing.server import ServerProcess

FETCH = 40  # the server's hybrid candidate depth at 10 results (rag/search.py)
K = 10
PageKey = tuple[str, int]


def load_chunks(state: Path, store_name: str) -> list[dict]:
    with ServerProcess(document_distribution(state / "state"), state, startup_timeout_s=300) as server, \
            httpx.Client(base_url=server.base_url, timeout=300) as client:
        stores = client.get("/v1/vector_stores", params={"limit": 100}).raise_for_status().json()["data"]
        ids = [s["id"] for s in stores if s["name"] == store_name]
        if not ids:
            raise SystemExit(f"no store {store_name!r} in {state}: run retrieval.py --state {state} first")
        return stored_chunks(client, ids[0])


def page_of(chunk: dict) -> PageKey:
    return (str(chunk["metadata"].get("filename", "")), int(chunk["metadata"].get("page", 0)))


def dedup(keys: list[PageKey]) -> list[PageKey]:
    return list(dict.fromkeys(keys))


def rrf_pages(lists: list[list[PageKey]], k: float = 60.0) -> list[PageKey]:
    score: dict[PageKey, float] = defaultdict(float)
    for ranking in lists:
        for rank, key in enumerate(ranking, 1):
            score[key] += 1.0 / (k + rank)
    return sorted(score, key=lambda key: -score[key])


class Corpus:
    """The chunks re-indexed in-process with one text variant: embeddings and BM25 (chunk and page level)."""

    def __init__(self, chunks: list[dict], embed_text: list[str], bm25_text: list[str], model,
                 k1: float = 1.5, b: float = 0.75) -> None:
        from vistack.api.protocols import StoredChunk
        from vistack.rag.keyword_index import KeywordIndex

        self.chunks = chunks
        self.keys = [page_of(c) for c in chunks]
        self.matrix = model.encode(embed_text, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        self.stored = [StoredChunk(id=c["id"], text=t, metadata=c["metadata"]) for c, t in zip(chunks, bm25_text)]
        self._tmp = tempfile.TemporaryDirectory()
        self.chunk_bm25 = KeywordIndex(Path(self._tmp.name) / "chunks", k1=k1, b=b)
        self.chunk_bm25.add(self.stored)
        pages: dict[PageKey, list[str]] = defaultdict(list)
        for key, text in zip(self.keys, bm25_text, strict=True):
            pages[key].append(text)
        self.page_bm25 = KeywordIndex(Path(self._tmp.name) / "pages", k1=k1, b=b)
        self.page_bm25.add([StoredChunk(id=f"{f}#{p}", text="\n".join(texts), metadata={"filename": f, "page": p})
                            for (f, p), texts in pages.items()])

    def lists(self, query: str, query_vector) -> dict[str, list]:
        from vistack.api.protocols import ScoredChunk
        from vistack.rag.fusion import reciprocal_rank_fusion

        sims = self.matrix @ query_vector
        order = np.argsort(-sims)[:FETCH]
        dense = [ScoredChunk(chunk=self.stored[i], score=float(sims[i])) for i in order]
        sparse = self.chunk_bm25.search(query, FETCH)
        fused = reciprocal_rank_fusion([dense, sparse])

        def keys(hits) -> list[PageKey]:
            return [(str(h.chunk.metadata["filename"]), int(h.chunk.metadata["page"])) for h in hits]

        pages = keys(self.page_bm25.search(query, FETCH))
        return {"dense": keys(dense), "sparse": keys(sparse), "fused": keys(fused), "fused_top": keys(fused[:K]),
                "pages": pages}


Ranker = Callable[[dict[str, list]], list[PageKey]]
RANKERS: dict[str, Ranker] = {
    "vector": lambda x: dedup(x["dense"][:K]),
    "keyword": lambda x: dedup(x["sparse"][:K]),
    "hybrid (chunk RRF, the server's)": lambda x: dedup(x["fused_top"]),
    "page RRF (hybrid, whole-page BM25)": lambda x: rrf_pages([dedup(x["fused"]), x["pages"]]),
    "page RRF (vector, keyword, whole-page BM25)":
        lambda x: rrf_pages([dedup(x["dense"]), dedup(x["sparse"]), x["pages"]]),
    "whole-page BM25 alone": lambda x: x["pages"],
}


def text_variants(chunks: list[dict]) -> dict[str, tuple[list[str], list[str], dict]]:
    """name -> (text to embed, text for BM25, BM25 parameters)."""
    from vistack.rag.readers.normalize import normalize_text

    raw = [c["text"] for c in chunks]
    norm = [normalize_text(t) for t in raw]
    by_page: dict[PageKey, list[int]] = defaultdict(list)
    for i, c in enumerate(chunks):
        by_page[page_of(c)].append(i)
    titles = {}
    for i, c in enumerate(chunks):  # the first line of a document's first page: its title in these PDFs
        if page_of(c)[1] == 1:
            titles.setdefault(page_of(c)[0], norm[i].split("\n")[0][:120])
    first_lines = {key: norm[idx[0]].split("\n")[0][:100] for key, idx in by_page.items()}

    def previous_tail(i: int, words: int = 30) -> str:
        f, p = page_of(chunks[i])
        if by_page[(f, p)][0] != i or (f, p - 1) not in by_page:
            return ""
        return " ".join(norm[by_page[(f, p - 1)][-1]].split()[-words:])

    title = [f"{titles.get(page_of(c)[0], '')}\n{t}" for c, t in zip(chunks, norm, strict=True)]
    heading = [t if first_lines[page_of(c)] in t else f"{first_lines[page_of(c)]}\n{t}"
               for c, t in zip(chunks, norm, strict=True)]
    tail = [f"{previous_tail(i)}\n{t}".strip() for i, t in enumerate(norm)]
    return {
        "as stored": (raw, raw, {}),
        "normalised (NFKC + TeX T1 glyphs)": (norm, norm, {}),
        "+ document title in the embedded text": (title, norm, {}),
        "+ document title in both": (title, title, {}),
        "+ page heading in the embedded text": (heading, norm, {}),
        "+ previous page's last 30 words in both": (tail, tail, {}),
        "+ BM25 b=0.5": (norm, norm, {"b": 0.5}),
        "+ BM25 k1=1.2": (norm, norm, {"k1": 1.2}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--state", type=Path, required=True, help="a state directory kept by retrieval.py --state")
    ap.add_argument("--set", choices=["own", "heldout"], default="own")
    ap.add_argument("--confirm-heldout", action="store_true",
                    help="needed with --set heldout: checking chosen levers, never choosing them")
    ap.add_argument("--text-variants", default="all", help="comma-separated names (default all)")
    args = ap.parse_args()
    if args.set == "heldout" and not args.confirm_heldout:
        console.print("[red]the held-out set checks levers chosen on the own set; pass --confirm-heldout[/red]")
        return 2
    _, questions_path, store_name = SETS[args.set]
    questions = load_questions(questions_path)
    chunks = load_chunks(args.state, store_name)
    console.print(f"set {args.set!r}: {len(questions)} questions, {len(chunks)} stored chunks")

    from ingest import load_minilm  # benchmarks/ is on sys.path (above)

    model = load_minilm()
    query_vectors = model.encode([q["question"] for q in questions], normalize_embeddings=True,
                                 show_progress_bar=False)
    variants = text_variants(chunks)
    chosen = list(variants) if args.text_variants == "all" else args.text_variants.split(",")
    table = Table(title=f"Retrieval levers, set {args.set!r} ({K} results, page-level metrics)")
    for col in ("chunk text", "ranking", *METRICS, *(f"R@1 {kind[:5]}" for kind in KINDS)):
        table.add_column(col, justify="left" if col in ("chunk text", "ranking") else "right", no_wrap=True)
    for name in chosen:
        embed_text, bm25_text, bm25_params = variants[name]
        console.print(f"  indexing: {name} ...")
        corpus = Corpus(chunks, embed_text, bm25_text, model, **bm25_params)
        ranks: dict[str, dict[str, int | None]] = {r: {} for r in RANKERS}
        for q, qv in zip(questions, query_vectors, strict=True):
            gold = {(a["file"], p) for a in q["answers"] for p in a["pages"]}
            lists = corpus.lists(q["question"], qv)
            for ranker, rank in RANKERS.items():
                ranks[ranker][q["id"]] = first_rank(rank(lists)[:K], gold)
        for i, (ranker, by_question) in enumerate(ranks.items()):
            overall = scores(list(by_question.values()))
            per_kind = [scores([by_question[q["id"]] for q in questions if q["kind"] == kind])["recall@1"]
                        for kind in KINDS]
            table.add_row(name if i == 0 else "", ranker, *(f"{overall[m]:.3f}" for m in METRICS),
                          *(f"{v:.3f}" for v in per_kind), end_section=i == len(ranks) - 1)
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
