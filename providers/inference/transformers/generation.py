"""Running ``generate`` on a model's worker: whole completions, and text deltas for streams.

Cancellation reaches the worker through a ``threading.Event`` checked by the stopping criteria, so
a client that goes away stops the compute spent on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from vistack.api import ServiceUnavailableError
from vistack.api.inference import FinishReason

from .loading import Loaded, empty_cache, first_line
from .prompting import Prepared
from .sampling import Sampling, generation_config
from .stops import StopScanner, first_stop, stopping_criteria
from .worker import Slot

# Sampling draws from torch's process-wide RNG; a seeded request must not share it with another
# model's concurrent sampling, or the same seed would not give the same output.
_RNG_LOCK = threading.Lock()


@dataclass
class Outcome:
    text: str = ""
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"


async def generate(slot: Slot, loaded: Loaded, prepared: Prepared, sampling: Sampling) -> Outcome:
    """The whole completion, cut at the first stop string."""
    cancel = threading.Event()
    fut = slot.submit(_generate_sync, slot, loaded, prepared, sampling, cancel, None)
    try:
        outcome: Outcome = await asyncio.wrap_future(fut)
    except asyncio.CancelledError:
        cancel.set()  # client went away: stop spending compute on it
        raise
    cut = first_stop(outcome.text, sampling.stop)
    if cut is not None:
        outcome.text, outcome.finish_reason = outcome.text[:cut], "stop"
    return outcome


async def stream_text(
    slot: Slot, loaded: Loaded, prepared: Prepared, sampling: Sampling, outcome: Outcome
) -> AsyncGenerator[str, None]:
    """Text deltas, cut at stop strings; fills ``outcome`` when done. Closing it stops generation."""
    from transformers import AsyncTextIteratorStreamer

    streamer = AsyncTextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
    cancel = threading.Event()

    def run() -> Outcome:
        try:
            return _generate_sync(slot, loaded, prepared, sampling, cancel, streamer)
        except BaseException:
            with contextlib.suppress(RuntimeError):  # the reader's loop may be gone already
                streamer.on_finalized_text("", stream_end=True)  # unblock the reader; the error follows
            raise

    fut = slot.submit(run)
    scanner = StopScanner(sampling.stop)
    stopped = False
    try:
        async for piece in streamer:
            out, stopped = scanner.feed(piece)
            if out:
                yield out
            if stopped:
                cancel.set()
                break
        if not stopped and (tail := scanner.flush()):
            yield tail
        result: Outcome = await asyncio.wrap_future(fut)
        outcome.completion_tokens = result.completion_tokens
        outcome.finish_reason = "stop" if stopped else result.finish_reason
    finally:
        cancel.set()  # consumer stopped early (disconnect) or we hit a stop string
        fut.cancel()  # still queued: never starts


def _generate_sync(
    slot: Slot,
    loaded: Loaded,
    prepared: Prepared,
    sampling: Sampling,
    cancel: threading.Event,
    streamer: Any | None,
) -> Outcome:
    """Runs on the slot's worker thread."""
    import torch

    try:
        if cancel.is_set():
            return Outcome(finish_reason="stop")
        model, tok = loaded.model, loaded.tokenizer
        gen_config = generation_config(loaded, sampling)
        inputs = {k: (v.to(loaded.device) if hasattr(v, "to") else v) for k, v in prepared.inputs.items()}
        prompt_len = int(inputs["input_ids"].shape[1])
        criteria = stopping_criteria(tok, prompt_len, sampling.stop, cancel)
        rng = _RNG_LOCK if gen_config.do_sample else contextlib.nullcontext()
        started = time.monotonic()
        with rng:
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            output = model.generate(
                **inputs, generation_config=gen_config, stopping_criteria=criteria, streamer=streamer
            )
        new_ids = output[0, prompt_len:].tolist()
        hit_eos = bool(new_ids) and new_ids[-1] in loaded.eos_ids
        timed_out = sampling.max_time is not None and time.monotonic() - started >= sampling.max_time
        cut_short = len(new_ids) >= sampling.max_new_tokens or timed_out  # max_tokens or max_generation_s
        finish: FinishReason = "length" if cut_short and not hit_eos else "stop"
        text = "" if streamer is not None else tok.decode(new_ids, skip_special_tokens=True)
        return Outcome(text=text, completion_tokens=len(new_ids), finish_reason=finish)
    except torch.OutOfMemoryError as e:
        empty_cache(torch)
        raise ServiceUnavailableError(
            f"out of memory while generating with model '{slot.resource_id}' ({first_line(e)}); "
            "send a smaller image or fewer max_tokens, or use quantization: 4bit.",
            code="out_of_memory",
        ) from e
