"""Agent overhead: ``/v1/responses`` with file_search vs the same search + chat completion called directly.

    .venv/bin/python benchmarks/agent_overhead.py [--requests 30] [--max-tokens 16] [--strategy top1]

Both paths run against one real server in one run, interleaved (A, B, A, B, ...):

* **agent**: ``POST /v1/responses`` with the file_search tool (retrieval runs before the model
  call), the vision strategy's page image, citations, storage of the response;
* **direct**: what a client would do by hand: ``POST /v1/vector_stores/{id}/search`` (same query,
  same mode and k), ``GET`` the top page's PNG from the Files API, then
  ``POST /v1/chat/completions`` with *the same messages* the agent builds (the prompt is built
  with the agent's own ``plan_calls``, so both generate the same tokens with greedy decoding).

Also the time to the first streamed event (``response.created``) and to the first text delta,
next to the search latency. Goals: agent p50 <= 1.10x direct; first event <= 50 ms + the search.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from vistack.agents.tools.file_search import group_by_page
from vistack.agents.visual import PageImage, plan_calls
from vistack.api.responses import FileSearchResult
from vistack.testing import build_tiny_mllama
from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

console = Console()
QUESTIONS = ["What was total revenue for fiscal 2025?", "What was EMEA revenue in Q3?",
             "How did operating margin change by quarter?", "How many employees at year end?"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ingest(client: httpx.Client) -> str:
    report = docs.annual_report_pdf()
    file_id = client.post("/v1/files", data={"purpose": "assistants"},
                          files={"file": (report.filename, report.data, report.mime_type)}).json()["id"]
    store_id = client.post("/v1/vector_stores", json={"name": "bench", "file_ids": [file_id]}).json()["id"]
    deadline = time.monotonic() + 300
    while client.get(f"/v1/vector_stores/{store_id}/files/{file_id}").json()["status"] == "in_progress":
        if time.monotonic() > deadline:
            raise TimeoutError("ingestion did not finish")
        time.sleep(0.2)
    return store_id


def agent_body(store_id: str, question: str, args: argparse.Namespace) -> dict:
    return {"model": "tiny-mllama", "input": question, "max_output_tokens": args.max_tokens, "temperature": 0,
            "tools": [{"type": "file_search", "vector_store_ids": [store_id], "max_num_results": args.k}],
            "vision": {"strategy": args.strategy, "pages": args.pages}, "store": True}


def agent_once(client: httpx.Client, store_id: str, question: str, args: argparse.Namespace) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = client.post("/v1/responses", json=agent_body(store_id, question, args))
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed, r.json()["usage"]["output_tokens"]


def direct_once(client: httpx.Client, store_id: str, question: str, args: argparse.Namespace,
                ) -> tuple[float, int, float]:
    t0 = time.perf_counter()
    hits = client.post(f"/v1/vector_stores/{store_id}/search", json={
        "query": question, "max_num_results": args.k, "search_mode": "hybrid"}).json()["data"]
    searched = time.perf_counter() - t0
    results = [("bench", FileSearchResult(file_id=h["file_id"], filename=h["filename"], score=h["score"],
                                          attributes=h["attributes"], text="\n".join(c["text"] for c in h["content"])))
               for h in hits]
    sources = group_by_page(results)
    wanted = sources[:1] if args.strategy == "top1" else sources[: args.pages]
    images = {s.number: PageImage.from_bytes(client.get(f"/v1/files/{s.page_image_file_id}/content").content)
              for s in wanted if s.page_image_file_id}
    [call] = plan_calls(args.strategy, question, [], sources, images, pages=args.pages, chars_per_source=2000,
                        max_side=1120)
    body = {"model": "tiny-mllama", "max_completion_tokens": args.max_tokens, "temperature": 0,
            "messages": [json.loads(m.model_dump_json(exclude_none=True)) for m in call.messages]}
    r = client.post("/v1/chat/completions", json=body)
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed, r.json()["usage"]["completion_tokens"], searched


def first_events(client: httpx.Client, store_id: str, question: str, args: argparse.Namespace,
                 ) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = delta = None
    with client.stream("POST", "/v1/responses", json={**agent_body(store_id, question, args), "stream": True}) as r:
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            now = time.perf_counter() - t0
            first = first if first is not None else now
            if delta is None and '"response.output_text.delta"' in line:
                delta = now
    return first or 0.0, delta or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--strategy", choices=["top1", "stitch", "text"], default="top1")
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()

    agent, direct, searches, first, first_delta = [], [], [], [], []
    tokens = {"agent": set(), "direct": set()}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_mllama(Path(tmp) / "tiny")
        dist = tiny_distribution(model_dir, documents=True, vector_stores={"page_image_dpi": 110})
        dist["providers"]["inference"][0]["config"]["default_max_tokens"] = args.max_tokens
        with ServerProcess(dist, Path(tmp) / "srv") as server, \
                httpx.Client(base_url=server.base_url, timeout=300) as client:
            store_id = ingest(client)
            for q in QUESTIONS:  # warm-up: model load, caches
                agent_once(client, store_id, q, args)
                direct_once(client, store_id, q, args)
            for i in range(args.requests):
                q = QUESTIONS[i % len(QUESTIONS)]
                seconds, n = agent_once(client, store_id, q, args)
                agent.append(seconds)
                tokens["agent"].add(n)
                seconds, n, searched = direct_once(client, store_id, q, args)
                direct.append(seconds)
                searches.append(searched)
                tokens["direct"].add(n)
                f, d = first_events(client, store_id, q, args)
                first.append(f)
                first_delta.append(d)

    table = Table(title=f"agent overhead: {args.requests} questions, strategy {args.strategy}, "
                        f"{args.max_tokens} max tokens (tokens generated: agent {sorted(tokens['agent'])}, "
                        f"direct {sorted(tokens['direct'])})")
    for col in ("measurement", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(col, justify="right" if col != "measurement" else "left")
    rows = (("agent: POST /v1/responses (file_search)", agent),
            ("direct: search + page image + chat", direct),
            ("  of which the search", searches),
            ("stream: first event (response.created)", first),
            ("stream: first output_text.delta", first_delta))
    for name, values in rows:
        table.add_row(name, f"{pct(values, 0.5) * 1e3:.1f}", f"{pct(values, 0.99) * 1e3:.1f}",
                      f"{statistics.fmean(values) * 1e3:.1f}")
    console.print(table)
    console.print(f"agent/direct p50 ratio: [bold]{pct(agent, 0.5) / pct(direct, 0.5):.3f}x[/bold] "
                  f"(p99 {pct(agent, 0.99) / pct(direct, 0.99):.3f}x; goal <= 1.10x); first event p50 "
                  f"{pct(first, 0.5) * 1e3:.1f} ms vs search p50 {pct(searches, 0.5) * 1e3:.1f} ms "
                  f"(goal: first event <= 50 ms + the search)")


if __name__ == "__main__":
    main()
