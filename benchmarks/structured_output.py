"""Structured output and n: what the grammar costs per token, and n=4 batched vs four requests, in one run.

    .venv/bin/python benchmarks/structured_output.py [--rounds 5] [--max-tokens 128]

In-process ``inline::transformers`` on the tiny random Mllama (CPU), the code path a server request takes
below the HTTP layer. Series, each repeated ``--rounds`` times after a warm-up, medians reported:

- free: chat at temperature 1.0 with ``ignore_eos`` (every request generates ``--max-tokens`` tokens);
- json_schema: the same with ``response_format: json_schema`` ({"summary": string}: the random model keeps
  writing the string until max_tokens, so both series decode about as many tokens);
- n=4 batched: one request with ``n: 4``; 4 sequential: four ``n: 1`` requests (same max_tokens).

The tiny model's forward pass takes a fraction of a millisecond, so the grammar's per-token work shows
at its largest here; on an 11B model the same work is a far smaller share of a step.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vistack.api import Model
from vistack.api.inference import ChatCompletionRequest
from vistack.providers.inference.transformers import TransformersInferenceConfig, TransformersInferenceProvider
from vistack.testing import build_tiny_mllama

console = Console()
MESSAGES = [{"role": "user", "content": "Summarise the quarterly revenue table on page 3 of the annual report."}]
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}


async def timed(provider: TransformersInferenceProvider, rounds: int, calls: int = 1, **kw: Any) -> tuple[float, int]:
    """(median seconds per round, completion tokens of a round); a round is ``calls`` requests one after another."""
    seconds, tokens = [], 0
    for i in range(rounds + 1):  # the first round warms up (model load, grammar compile cache)
        t0 = time.perf_counter()
        total = 0
        for _ in range(calls):
            r = await provider.chat_completion(ChatCompletionRequest(messages=MESSAGES, **kw))
            total += r.usage.completion_tokens
        if i:
            seconds.append(time.perf_counter() - t0)
            tokens = total
    return statistics.median(seconds), tokens


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    model_dir = str(build_tiny_mllama(Path(tempfile.mkdtemp(prefix="vistack-structured-bench-")) / "tiny"))
    provider = TransformersInferenceProvider(TransformersInferenceConfig())
    await provider.initialize()
    await provider.register_model(Model(identifier="tiny", provider_resource_id=model_dir, provider_id="transformers"))
    base = {"model": model_dir, "max_tokens": args.max_tokens, "temperature": 1.0, "seed": 1}
    fmt = {"type": "json_schema", "json_schema": {"name": "summary", "schema": SCHEMA}}

    free_s, free_tok = await timed(provider, args.rounds, **base, ignore_eos=True)
    json_s, json_tok = await timed(provider, args.rounds, **base, response_format=fmt)
    batch_s, batch_tok = await timed(provider, args.rounds, **base, ignore_eos=True, n=4)
    seq_s, seq_tok = await timed(provider, args.rounds, **base, ignore_eos=True, calls=4)

    table = Table(title=f"inline::transformers, tiny Mllama on CPU, median of {args.rounds}")
    for col in ("series", "tokens", "seconds", "tokens/s"):
        table.add_column(col, justify="right" if col != "series" else "left")
    for name, s, tok in (("free", free_s, free_tok), ("json_schema", json_s, json_tok),
                         ("n=4 batched", batch_s, batch_tok), ("4 sequential", seq_s, seq_tok)):
        table.add_row(name, str(tok), f"{s:.3f}", f"{tok / s:.0f}")
    console.print(table)
    grammar_cost = (free_tok / free_s) / (json_tok / json_s) - 1
    console.print(f"grammar cost per token: {grammar_cost:+.1%} (goal: at most +10%)")
    console.print(f"n=4 batched vs 4 sequential: {seq_s / batch_s:.2f}x faster")
    await provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
