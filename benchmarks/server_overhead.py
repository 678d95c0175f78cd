"""Server overhead: tiny-model chat through HTTP vs the direct provider call, and
metadata-route latency, measured in one run.

    .venv/bin/python benchmarks/server_overhead.py [--requests 40] [--max-tokens 8]

Goals: HTTP chat p50 <= 1.05x the direct call; /v1/models p50 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from vistack.api.inference import ChatCompletionRequest
from vistack.testing import build_tiny_mllama
from vistack.testing.server import ServerProcess, tiny_distribution

console = Console()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def chat_body(max_tokens: int) -> dict:
    return {
        "model": "tiny-mllama",
        "messages": [{"role": "user", "content": "Summarise the quarterly revenue table on page 3."}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }


async def direct_latencies(model_dir: Path, n: int, max_tokens: int) -> tuple[list[float], int]:
    from vistack.api import Model
    from vistack.providers.inference.transformers import TransformersInferenceConfig, TransformersInferenceProvider

    provider = TransformersInferenceProvider(TransformersInferenceConfig(device="cpu"))
    provider.provider_id = "transformers"
    await provider.initialize()
    await provider.register_model(Model(identifier="transformers/tiny-mllama", provider_resource_id=str(model_dir),
                                        provider_id="transformers"))
    body = chat_body(max_tokens) | {"model": str(model_dir)}
    for _ in range(3):
        await provider.chat_completion(ChatCompletionRequest(**body))
    out, tokens = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = await provider.chat_completion(ChatCompletionRequest(**body))
        out.append(time.perf_counter() - t0)
        tokens = r.usage.completion_tokens
    await provider.shutdown()
    return out, tokens


def http_latencies(client: httpx.Client, n: int, max_tokens: int) -> tuple[list[float], int]:
    for _ in range(3):
        client.post("/v1/chat/completions", json=chat_body(max_tokens)).raise_for_status()
    out, tokens = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.post("/v1/chat/completions", json=chat_body(max_tokens))
        out.append(time.perf_counter() - t0)
        r.raise_for_status()
        tokens = r.json()["usage"]["completion_tokens"]
    return out, tokens


def route_latencies(client: httpx.Client, path: str, n: int) -> list[float]:
    for _ in range(20):
        client.get(path).raise_for_status()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.get(path)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--route-requests", type=int, default=500)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_mllama(Path(tmp) / "tiny")
        direct, direct_tokens = asyncio.run(direct_latencies(model_dir, args.requests, args.max_tokens))
        with ServerProcess(tiny_distribution(model_dir), Path(tmp) / "srv") as server, \
                httpx.Client(base_url=server.base_url, timeout=120) as client:
            via_http, http_tokens = http_latencies(client, args.requests, args.max_tokens)
            models = route_latencies(client, "/v1/models", args.route_requests)
            health = route_latencies(client, "/v1/health", args.route_requests)

    table = Table(title=f"vistack server overhead ({args.requests} chats, {args.max_tokens} max tokens; "
                        f"tokens generated direct={direct_tokens} http={http_tokens})")
    for col in ("measurement", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(col, justify="right" if col != "measurement" else "left")
    for name, values in (("chat: direct provider call", direct), ("chat: HTTP /v1/chat/completions", via_http),
                         ("GET /v1/models", models), ("GET /v1/health", health)):
        table.add_row(name, f"{pct(values, 0.5) * 1e3:.2f}", f"{pct(values, 0.99) * 1e3:.2f}",
                      f"{statistics.fmean(values) * 1e3:.2f}")
    console.print(table)
    ratio = pct(via_http, 0.5) / pct(direct, 0.5)
    console.print(f"chat p50 ratio HTTP/direct: [bold]{ratio:.3f}x[/bold] (goal <= 1.05x); "
                  f"/v1/models p50 {pct(models, 0.5) * 1e3:.2f} ms (goal <= 2 ms)")


if __name__ == "__main__":
    main()
