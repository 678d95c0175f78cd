"""Running ``generate`` on a model's worker: whole completions, and text pieces for streams.

Cancellation reaches the worker through a ``threading.Event`` checked by the stopping criteria, so
a client that goes away stops the compute spent on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from vistack.api import ServiceUnavailableError

from .decoding import ChoiceOutcome, DecodeSession, LogprobRequest, Piece
from .loading import Loaded, empty_cache, first_line
from .logprobs import LogprobRecorder, TokenLogprob, TokenText, prompt_logprobs
from .penalties import LogitBias, RepetitionPenalties
from .prompting import Prepared
from .sampling import Sampling, generation_config
from .structured import GrammarMask
from .worker import Slot

# Sampling draws from torch's process-wide RNG; a seeded request must not share it with another
# model's concurrent sampling, or the same seed would not give the same output.
_RNG_LOCK = threading.Lock()


@dataclass
class Outcome:
    """Every choice of one ``generate`` call (``n`` sequences sampled together)."""

    choices: list[ChoiceOutcome] = field(default_factory=list)
    sampled_tokens: int | None = None  # when choices were dropped (best_of): every token sampled

    @property
    def completion_tokens(self) -> int:
        if self.sampled_tokens is not None:
            return self.sampled_tokens
        return sum(c.completion_tokens for c in self.choices)


@dataclass
class Decoding:
    """What a request asks of decoding beyond sampling: how many choices, log-probabilities, a grammar."""

    n: int = 1
    logprobs: LogprobRequest = field(default_factory=LogprobRequest)
    grammar: Any = None  # a compiled xgrammar grammar


async def generate(slot: Slot, loaded: Loaded, prepared: Prepared, sampling: Sampling, decoding: Decoding) -> Outcome:
    """Every choice, whole, cut at its first stop string."""
    cancel = threading.Event()
    fut = slot.submit(_generate_sync, slot, loaded, prepared, sampling, decoding, cancel, None)
    try:
        return await asyncio.wrap_future(fut)
    except asyncio.CancelledError:
        cancel.set()  # client went away: stop spending compute on it
        raise


async def stream_pieces(
    slot: Slot, loaded: Loaded, prepared: Prepared, sampling: Sampling, decoding: Decoding, outcome: Outcome
) -> AsyncGenerator[Piece, None]:
    """Text pieces of every choice as they are decoded; fills ``outcome`` when done. Closing it stops generation."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Piece | None] = asyncio.Queue()
    cancel = threading.Event()

    def sink(piece: Piece) -> None:
        with contextlib.suppress(RuntimeError):  # the reader's loop may be gone already
            loop.call_soon_threadsafe(queue.put_nowait, piece)

    def run() -> Outcome:
        try:
            return _generate_sync(slot, loaded, prepared, sampling, decoding, cancel, sink)
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, None)  # end of stream (an error follows from fut)

    fut = slot.submit(run)
    try:
        while (piece := await queue.get()) is not None:
            yield piece
        result: Outcome = await asyncio.wrap_future(fut)
        outcome.choices = result.choices
    finally:
        cancel.set()  # consumer stopped early (disconnect)
        fut.cancel()  # still queued: never starts


def _generate_sync(
    slot: Slot,
    loaded: Loaded,
    prepared: Prepared,
    sampling: Sampling,
    decoding: Decoding,
    cancel: threading.Event,
    sink: Callable[[Piece], None] | None,
) -> Outcome:
    """Runs on the slot's worker thread."""
    import torch
    from transformers import LogitsProcessorList

    try:
        if cancel.is_set() or sampling.max_new_tokens == 0:  # 0: echo + logprobs scoring the prompt only
            rows = int(prepared.inputs["input_ids"].shape[0]) * decoding.n
            finish = "length" if sampling.max_new_tokens == 0 else "stop"
            return Outcome(choices=[ChoiceOutcome(index=i, finish_reason=finish) for i in range(rows)])
        model, tok = loaded.model, loaded.tokenizer
        gen_config = generation_config(loaded, sampling)
        inputs = {k: _batched(v, decoding.n).to(loaded.device) if hasattr(v, "to") else v
                  for k, v in prepared.inputs.items()}
        recorder = LogprobRecorder() if decoding.logprobs.record else None
        session = DecodeSession(
            tok, int(inputs["input_ids"].shape[0]), loaded.eos_ids, sampling.stop, decoding.logprobs, recorder,
            _token_text(loaded) if recorder is not None else None, sink,
        )
        processors = LogitsProcessorList()
        if recorder is not None:
            processors.append(recorder)  # first: the model's own distribution, before grammar and warpers
        if sampling.logit_bias:
            processors.append(LogitBias(sampling.logit_bias))
        if sampling.frequency_penalty or sampling.presence_penalty:
            processors.append(RepetitionPenalties(int(inputs["input_ids"].shape[1]), sampling.frequency_penalty,
                                                  sampling.presence_penalty))
        if decoding.grammar is not None:
            processors.append(GrammarMask(decoding.grammar, session.finished, loaded.eos_ids))
        rng = _RNG_LOCK if gen_config.do_sample else contextlib.nullcontext()
        started = time.monotonic()
        with rng:
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            model.generate(
                **inputs,
                generation_config=gen_config,
                logits_processor=processors,
                stopping_criteria=session.stopping_criteria(cancel),
            )
        timed_out = sampling.max_time is not None and time.monotonic() - started >= sampling.max_time
        return Outcome(choices=session.finish(sampling.max_new_tokens, timed_out))
    except torch.OutOfMemoryError as e:
        raise _out_of_memory(slot, "generating", "send a smaller image, fewer max_tokens or a smaller n", e) from e


def _out_of_memory(slot: Slot, doing: str, fix: str, e: BaseException) -> ServiceUnavailableError:
    """A 503 the client can act on (the memory is given back first), not a 500."""
    import torch

    empty_cache(torch)
    return ServiceUnavailableError(
        f"out of memory while {doing} with model '{slot.resource_id}' ({first_line(e)}); {fix}, "
        "or use quantization: 4bit.",
        code="out_of_memory",
    )


async def score_prompts(slot: Slot, loaded: Loaded, prepared: Prepared, top_n: int) -> list[list[TokenLogprob]]:
    """Each prompt's token logprobs (``echo`` with ``logprobs``), computed on the model's worker."""

    def run() -> list[list[TokenLogprob]]:
        import torch

        inputs = {k: v.to(loaded.device) for k, v in prepared.inputs.items() if k in ("input_ids", "attention_mask")}
        try:
            return prompt_logprobs(loaded.model, inputs, prepared.added_tokens, top_n, _token_text(loaded))
        except torch.OutOfMemoryError as e:
            raise _out_of_memory(slot, "scoring the prompt", "send shorter or fewer prompts", e) from e

    return await asyncio.wrap_future(slot.submit(run))


def _batched(tensor: Any, n: int) -> Any:
    """Each prompt repeated ``n`` times in place along the batch (prompt-major): its n sequences decoded together.

    (Rather than ``num_return_sequences``, which transformers refuses for greedy decoding, where n
    identical choices are still what OpenAI and vLLM return.)
    """
    return tensor if n == 1 else tensor.repeat_interleave(n, dim=0)


def _token_text(loaded: Loaded) -> TokenText:
    """One cache of token texts per loaded model: it lives as long as the weights."""
    if loaded.token_texts is None:
        loaded.token_texts = TokenText(loaded.tokenizer)
    return loaded.token_texts
