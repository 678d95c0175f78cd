"""Following ``generate`` token by token for every sequence of a request (``n`` choices at once).

``DecodeSession`` is the stopping criterion transformers calls once per step, right after that step's
logits processors (so the log-probabilities just recorded are this step's) with the tokens just sampled
at the end of ``input_ids`` (a streamer would not do: transformers calls it after the stopping criteria, a
step late on some devices, so a row ending at a stop string would cost one more forward pass). Per sequence it
detokenizes incrementally (only whole characters are released), cuts at stop strings, notes the end
of turn, counts tokens, and pairs each token's log-probability with the text it produced, so a stream
and a whole response carry exactly the tokens behind the text they show. Its stopping criteria end a
sequence at its stop string while the others go on, and all of them when the request is cancelled.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vistack.api.inference import FinishReason

from .logprobs import LogprobRecorder, TokenLogprob, TokenText, step_entries
from .stops import StopScanner


@dataclass
class Piece:
    """Text (and the log-probabilities of the tokens behind it) released for choice ``index``."""

    index: int
    text: str
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass
class ChoiceOutcome:
    index: int
    text: str = ""
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"
    logprobs: list[TokenLogprob] = field(default_factory=list)
    cumulative_logprob: float = 0.0  # of every generated token (best_of ranks choices by its mean per token)


@dataclass
class LogprobRequest:
    """Whether to record log-probabilities, and how many alternatives to report per token."""

    record: bool = False  # also without reporting them: best_of needs each choice's total
    report: bool = False
    top: int = 0


class _Row:
    def __init__(self, index: int, stops: list[str]) -> None:
        self.index = index
        self.tokens: list[int] = []
        self.prefix = self.read = 0  # incremental detokenization window (as vLLM does it)
        self.decoded = 0  # characters decoded so far (before stop-string cutting)
        self.emitted = 0  # characters released so far
        self.scanner = StopScanner(stops)
        self.pending: deque[tuple[int, TokenLogprob]] = deque()  # (offset of its text, entry), not yet released
        self.done = False
        self.finish: FinishReason | None = None
        self.outcome = ChoiceOutcome(index=index)
        self.parts: list[str] = []


class DecodeSession:
    """The per-step bookkeeping and stopping criteria of one ``generate`` call."""

    def __init__(
        self,
        tokenizer: Any,
        rows: int,
        eos_ids: list[int],
        stops: list[str],
        logprobs: LogprobRequest,
        recorder: LogprobRecorder | None,
        text_of: TokenText | None,
        sink: Callable[[Piece], None] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.rows = [_Row(i, stops) for i in range(rows)]
        self.eos = set(eos_ids)
        self.logprobs, self.recorder, self.text_of = logprobs, recorder, text_of
        self.sink = sink

    def step(self, tokens: list[int]) -> list[bool]:
        """One generation step: each unfinished sequence's new token; which sequences are done now."""
        active = [row for row in self.rows if not row.done]
        entries: list[TokenLogprob | None] = [None] * len(active)
        if active and self.recorder is not None and self.logprobs.record:
            assert self.text_of is not None
            indices = [row.index for row in active]
            entries = list(step_entries(self.recorder.last[indices], [tokens[i] for i in indices], self.logprobs.top,
                                        self.text_of))
        for row, entry in zip(active, entries, strict=True):
            self._token(row, int(tokens[row.index]), entry)
        return [row.done for row in self.rows]

    # -- stopping ------------------------------------------------------------------------------------

    def finished(self, row: int) -> bool:
        return self.rows[row].done

    def stopping_criteria(self, cancel: threading.Event) -> Any:
        from transformers import StoppingCriteria, StoppingCriteriaList

        session = self

        class _RowsDone(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                import torch

                if cancel.is_set():
                    return torch.ones((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)
                done = session.step(input_ids[:, -1].tolist())
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([_RowsDone()])

    # -- per token -----------------------------------------------------------------------------------

    def _token(self, row: _Row, token: int, entry: TokenLogprob | None) -> None:
        row.outcome.completion_tokens += 1
        if entry is not None:
            row.outcome.cumulative_logprob += entry.logprob
        if token in self.eos:  # the end of turn: not part of the text, nor of the reported tokens
            self._release(row, row.scanner.flush(), everything=True)  # what was held back for a stop string
            row.done, row.finish = True, "stop"
            return
        delta = self._detokenize(row, token)
        if entry is not None and self.logprobs.report:
            row.pending.append((row.decoded, entry))
        row.decoded += len(delta)
        out, stopped = row.scanner.feed(delta)
        self._release(row, out)
        if stopped:
            row.done, row.finish = True, "stop"
            row.pending.clear()  # tokens of the stop string and after it are not part of the answer

    def _detokenize(self, row: _Row, token: int) -> str:
        row.tokens.append(token)
        decode = self.tokenizer.decode
        before = decode(row.tokens[row.prefix : row.read], skip_special_tokens=True)
        after = decode(row.tokens[row.prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):  # wait for the rest of a character
            row.prefix, row.read = row.read, len(row.tokens)
            return after[len(before) :]
        return ""

    def _release(self, row: _Row, text: str, everything: bool = False) -> None:
        row.emitted += len(text)
        released = []
        while row.pending and (everything or row.pending[0][0] < row.emitted):
            released.append(row.pending.popleft()[1])
        if not text and not released:
            return
        row.parts.append(text)
        row.outcome.logprobs.extend(released)
        if self.sink is not None:
            self.sink(Piece(row.index, text, released))

    # -- the end -------------------------------------------------------------------------------------

    def finish(self, max_new_tokens: int, timed_out: bool) -> list[ChoiceOutcome]:
        """Flush what stop-string scanning held back; a sequence that did not end itself hit a limit."""
        outcomes = []
        for row in self.rows:
            if row.finish is None:
                self._release(row, row.scanner.flush(), everything=True)
                cut_short = row.outcome.completion_tokens >= max_new_tokens or timed_out
                row.finish = "length" if cut_short else "stop"
            row.outcome.text = "".join(row.parts)
            row.outcome.finish_reason = row.finish
            outcomes.append(row.outcome)
        return outcomes
