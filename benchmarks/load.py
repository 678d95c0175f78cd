"""Load: N concurrent clients for a bounded time against one server, mixed operations.

    .venv/bin/python benchmarks/load.py [--clients 50] [--seconds 60] [--max-queued 8]

One ``vistack serve`` subprocess on loopback with the tiny random Mllama (4-token answers),
MiniLM embeddings, embedded Chroma and a store holding the annual-report PDF. Each client
loops, choosing an operation by weight: search (hybrid, k=5) 40%, chat 25%, list
(``GET /v1/files`` or ``/v1/models``) 25%, upload (a 2 KiB text file) 10%. Reported per
operation: count, throughput, p50 / p99 latency, and the status classes; overall the count of
5xx (goal 0) and of 429 (expected once the generation queue is full, each must carry
``Retry-After``). Clients back off for the Retry-After they are given, as a well-behaved SDK does.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from vistack.testing import build_tiny_mllama
from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

console = Console()
WEIGHTS = {"search": 40, "chat": 25, "list": 25, "upload": 10}


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter] = defaultdict(Counter)
        self.missing_retry_after = 0
        self.errors: Counter = Counter()

    def record(self, op: str, seconds: float, response: httpx.Response | None, error: str | None = None) -> None:
        self.latency[op].append(seconds)
        if response is None:
            self.status[op]["error"] += 1
            self.errors[f"{op}: {error}"] += 1
            return
        self.status[op][response.status_code] += 1
        if response.status_code == 429 and "retry-after" not in response.headers:
            self.missing_retry_after += 1


async def client_loop(http: httpx.AsyncClient, store_id: str, stop_at: float, stats: Stats, seed: int) -> None:
    rng = random.Random(seed)
    ops, weights = zip(*WEIGHTS.items(), strict=True)
    while time.monotonic() < stop_at:
        op = rng.choices(ops, weights)[0]
        started = time.perf_counter()
        response: httpx.Response | None = None
        error: str | None = None
        try:
            if op == "search":
                response = await http.post(f"/v1/vector_stores/{store_id}/search",
                                           json={"query": rng.choice(["revenue", "headcount", "outlook"]),
                                                 "max_num_results": 5})
            elif op == "chat":
                response = await http.post("/v1/chat/completions", json={
                    "model": "tiny-mllama", "max_tokens": 4, "temperature": 0,
                    "messages": [{"role": "user", "content": "Summarise the report."}]})
            elif op == "list":
                response = await http.get(rng.choice(["/v1/files", "/v1/models"]))
            else:
                response = await http.post("/v1/files", data={"purpose": "assistants"},
                                           files={"file": (f"note-{seed}.txt", b"n" * 2048, "text/plain")})
        except httpx.HTTPError as e:
            response, error = None, f"{type(e).__name__}: {e}"[:120]
        stats.record(op, time.perf_counter() - started, response, error)
        if response is not None and response.status_code == 429:
            await asyncio.sleep(min(float(response.headers.get("retry-after", "1")), 5.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--max-queued", type=int, default=8, help="the tiny model's max_queued_requests")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vistack-load-"))
    model = build_tiny_mllama(root / "tiny")
    dist = tiny_distribution(model, name="load", documents=True)
    dist["providers"]["inference"][0]["config"]["max_queued_requests"] = args.max_queued
    stats = Stats()
    with ServerProcess(dist, root / "srv") as server:
        async def run() -> float:
            limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as http:
                report = docs.annual_report_pdf()
                file_id = (await http.post("/v1/files", data={"purpose": "assistants"},
                                           files={"file": (report.filename, report.data, report.mime_type)})).json()["id"]
                store = (await http.post("/v1/vector_stores", json={"name": "load", "file_ids": [file_id]})).json()
                deadline = time.monotonic() + 180
                while (await http.get(f"/v1/vector_stores/{store['id']}/files/{file_id}")).json()["status"] != "completed":
                    assert time.monotonic() < deadline, "ingestion did not finish"
                    await asyncio.sleep(0.3)
                await http.post("/v1/chat/completions", json={"model": "tiny-mllama", "max_tokens": 2,
                                                               "messages": [{"role": "user", "content": "warm up"}]})
                started = time.monotonic()
                stop_at = started + args.seconds
                await asyncio.gather(*(client_loop(http, store["id"], stop_at, stats, i) for i in range(args.clients)))
                elapsed = time.monotonic() - started
                alive = (await http.get("/v1/health")).status_code
                assert alive == 200, "the server stopped serving"
                return elapsed

        elapsed = asyncio.run(run())
    table = Table("operation", "requests", "req/s", "p50 ms", "p99 ms", "statuses")
    total = Counter()
    for op in WEIGHTS:
        values = sorted(stats.latency[op])
        if not values:
            continue
        total.update(stats.status[op])
        p99 = values[min(len(values) - 1, int(0.99 * (len(values) - 1)))]
        table.add_row(op, str(len(values)), f"{len(values) / elapsed:.1f}", f"{statistics.median(values) * 1000:.1f}",
                      f"{p99 * 1000:.1f}", ", ".join(f"{k}: {v}" for k, v in sorted(stats.status[op].items(), key=str)))
    console.print(f"{args.clients} clients, {elapsed:.0f} s, max_queued_requests={args.max_queued}")
    console.print(table)
    fivexx = sum(v for k, v in total.items() if isinstance(k, int) and k >= 500)
    console.print(f"total {sum(total.values())} requests ({sum(total.values()) / elapsed:.1f}/s): "
                  f"5xx {fivexx}, 429 {total[429]} (without Retry-After: {stats.missing_retry_after}), "
                  f"transport errors {total['error']}")
    for what, n in stats.errors.most_common():
        console.print(f"  {n} x {what}")


if __name__ == "__main__":
    main()
