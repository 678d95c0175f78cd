"""Guardrail overhead: a Responses call with and without input + output Llama Guard checks, in one run.

    .venv/bin/python benchmarks/guard_overhead.py [--requests 15] [--max-tokens 16]

The tiny random Mllama is both the answering model and the guard model (served by the same
``inline::transformers`` provider, as in the ``local`` distribution), so the numbers show the
*structure* of the cost on this machine, not an 11B's speed. Three series, same server:

- plain: ``POST /v1/responses`` without guardrails;
- guarded: the same with ``guardrails: ["llama-guard"]`` (one input check, one output check; the random
  guard's unreadable answers are allowed here so that both checks and the answer always run);
- guard model: ``POST /v1/chat/completions`` to the guard model with a Llama Guard prompt of the same
  size (temperature 0, the shield's token cap): the share of the added time the guard model itself takes.

Added p50 = guarded - plain; our code = added - 2 x guard model (the rest: prompt building, routing,
parsing, holding the answer for the check).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from vistack.api.inference import ChatMessage
from vistack.providers.safety.llama_guard.prompt import build_guard_message
from vistack.testing import build_tiny_mllama
from vistack.testing.server import ServerProcess, tiny_distribution

console = Console()
QUESTION = "Summarise the quarterly revenue table on page 3 of the annual report."


def timed(fn, n: int) -> list[float]:
    for _ in range(2):  # warm-up: model load, first-call caches
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=15)
    ap.add_argument("--max-tokens", type=int, default=16)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vistack-guard-bench-"))
    model = build_tiny_mllama(root / "tiny")
    dist = tiny_distribution(model, name="guard-bench", guard=True)
    # A random guard's answers are unreadable: "allow" lets both checks pass so every guarded call also generates
    # the answer (fail closed would refuse at the input check and measure a shorter path).
    dist["providers"]["safety"][0]["config"]["on_unparseable"] = "allow"
    with ServerProcess(dist, root / "srv") as server, httpx.Client(base_url=server.base_url, timeout=600) as http:
        body = {"model": "tiny-mllama", "input": QUESTION, "max_output_tokens": args.max_tokens, "temperature": 0,
                "store": False}

        def respond(guarded: bool) -> None:
            r = http.post("/v1/responses", json=body | ({"guardrails": ["llama-guard"]} if guarded else {}))
            r.raise_for_status()

        guard_prompt = build_guard_message([ChatMessage(role="user", content=QUESTION)], "vision").message

        def guard_call() -> None:
            r = http.post("/v1/chat/completions", json={
                "model": "transformers/tiny-guard", "messages": [guard_prompt.model_dump(exclude_none=True)],
                "temperature": 0, "max_tokens": 10})
            r.raise_for_status()

        plain = timed(lambda: respond(False), args.requests)
        guarded = timed(lambda: respond(True), args.requests)
        guard = timed(guard_call, args.requests)
    p50 = statistics.median
    added = p50(guarded) - p50(plain)
    model_share = 2 * p50(guard)
    table = Table("series", "p50 ms", "p90 ms")
    for name, values in (("plain response", plain), ("guarded response (input + output)", guarded),
                         ("one guard model call", guard)):
        ordered = sorted(values)
        table.add_row(name, f"{p50(values) * 1000:.1f}", f"{ordered[int(0.9 * (len(ordered) - 1))] * 1000:.1f}")
    console.print(table)
    console.print(f"added p50: {added * 1000:.1f} ms ({p50(guarded) / p50(plain):.2f}x the plain response)")
    console.print(f"guard model (2 calls): {model_share * 1000:.1f} ms = {model_share / added:.0%} of the added time; "
                  f"our code: {(added - model_share) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
