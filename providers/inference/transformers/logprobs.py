"""Token log-probabilities: recorded during ``generate`` and shaped as OpenAI's chat and completions want them.

The recorder is the first of our logits processors: before logit_bias, the OpenAI penalties, any grammar
mask and the sampling warpers (temperature, top-k/p), so the numbers are the model's own distribution for
the step, as vLLM reports by default (``raw_logprobs``), not the one sampling drew from. One difference:
the processors transformers builds from the generation config run before ours, so ``repetition_penalty``
and ``min_tokens`` (or ``ignore_eos``, which keeps the end of turn out) do show in the numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TopToken:
    token: str
    logprob: float
    bytes: list[int]


@dataclass
class TokenLogprob:
    """One generated token: its text, its log-probability and the step's most likely alternatives."""

    token: str
    logprob: float | None  # None only for a prompt's first token (nothing precedes it)
    bytes: list[int]
    top: list[TopToken] = field(default_factory=list)


class LogprobRecorder:
    """A ``LogitsProcessor`` that keeps the last step's log-softmax (it leaves the scores untouched)."""

    def __init__(self) -> None:
        self.last: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self.last = torch.log_softmax(scores.float(), dim=-1)
        return scores


class TokenText:
    """A token id's text and exact bytes, cached per tokenizer (byte-level BPE pieces map back to raw bytes)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._byte_decoder = {c: b for b, c in _bytes_to_unicode().items()}
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def __call__(self, token_id: int) -> tuple[str, list[int]]:
        hit = self._cache.get(token_id)
        if hit is None:
            text = self.tokenizer.decode([token_id])
            piece = self.tokenizer.convert_ids_to_tokens(token_id)
            if isinstance(piece, str) and piece and all(c in self._byte_decoder for c in piece):
                raw = [self._byte_decoder[c] for c in piece]
            else:
                raw = list(text.encode("utf-8"))
            hit = self._cache[token_id] = (text, raw)
        return hit


def step_entries(step_logprobs: Any, tokens: list[int], top_n: int, text_of: TokenText) -> list[TokenLogprob]:
    """Each row's token (``tokens[row]``) with its log-probability and ``top_n`` alternatives, from one step's
    log-softmax (rows x vocabulary): a few transfers to the host for the whole batch, not a few per row."""
    import torch

    index = torch.tensor(tokens, device=step_logprobs.device).unsqueeze(1)
    chosen = step_logprobs.gather(1, index).squeeze(1).tolist()
    top_values: list[list[float]] = [[] for _ in tokens]
    top_ids: list[list[int]] = [[] for _ in tokens]
    if top_n:
        values, ids = step_logprobs.topk(top_n)
        top_values, top_ids = values.tolist(), ids.tolist()
    return [_entry(*row, text_of=text_of) for row in zip(tokens, chosen, top_values, top_ids, strict=True)]


def _entry(token_id: int, logprob: float, top_values: list[float], top_ids: list[int],
           text_of: TokenText) -> TokenLogprob:
    text, raw = text_of(token_id)
    entry = TokenLogprob(token=text, logprob=_finite(logprob), bytes=raw)
    for value, tid in zip(top_values, top_ids, strict=True):
        t, b = text_of(tid)
        entry.top.append(TopToken(token=t, logprob=_finite(value), bytes=b))
    return entry


_SCORE_CHUNK = 512
"""Prompt positions normalised at once when scoring a prompt: bounds the float32 copy at 512 vocabulary rows."""


def prompt_logprobs(model: Any, inputs: dict[str, Any], skip: list[int], top_n: int,
                    text_of: TokenText) -> list[list[TokenLogprob]]:
    """Each prompt's tokens with their log-probability given the tokens before them (``echo`` + ``logprobs``).

    ``inputs`` is the left-padded batch; ``skip[b]`` leading tokens of prompt ``b`` (a BOS the tokenizer
    added) are context, not part of the echoed text. A prompt's very first token has no logprob.
    One forward pass per prompt (its logits are one prompt's, not the batch's), normalised
    ``_SCORE_CHUNK`` positions at a time with one transfer to the host per chunk.
    """
    import torch

    out = []
    width = inputs["input_ids"].shape[1]
    for b, mask in enumerate(inputs["attention_mask"].tolist()):
        start = width - sum(mask)
        row = inputs["input_ids"][b : b + 1, start:]
        ids = row[0].tolist()
        entries: list[TokenLogprob] = []
        first = max(skip[b], 1)  # position j is scored by the logits at j - 1
        if skip[b] == 0 and ids:
            text, raw = text_of(ids[0])
            entries.append(TokenLogprob(token=text, logprob=None, bytes=raw))
        if first < len(ids):
            with torch.inference_mode():
                logits = model(input_ids=row, attention_mask=torch.ones_like(row)).logits[0]
                for lo in range(first, len(ids), _SCORE_CHUNK):
                    hi = min(lo + _SCORE_CHUNK, len(ids))
                    step = torch.log_softmax(logits[lo - 1 : hi - 1].float(), dim=-1)
                    chosen = step.gather(1, row[0, lo:hi].unsqueeze(1)).squeeze(1).tolist()
                    tops = step.topk(top_n) if top_n else None
                    top_values = tops.values.tolist() if tops is not None else [[] for _ in chosen]
                    top_ids = tops.indices.tolist() if tops is not None else [[] for _ in chosen]
                    entries.extend(map(functools.partial(_entry, text_of=text_of), ids[lo:hi], chosen, top_values,
                                       top_ids))
            del logits
        out.append(entries)
    return out


def chat_logprobs(entries: list[TokenLogprob]) -> dict[str, Any]:
    """OpenAI chat shape: ``{"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}``."""
    return {
        "content": [
            {
                "token": e.token,
                "logprob": e.logprob,
                "bytes": e.bytes,
                "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in e.top],
            }
            for e in entries
        ],
        "refusal": None,
    }


def completion_logprobs(entries: list[TokenLogprob], text_offset: int) -> dict[str, Any]:
    """OpenAI completions shape: parallel ``tokens`` / ``token_logprobs`` / ``top_logprobs`` / ``text_offset``."""
    offsets, at = [], text_offset
    for e in entries:
        offsets.append(at)
        at += len(e.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        # "The API will always return the logprob of the sampled token, so there may be up to logprobs+1
        # elements" (OpenAI's completions reference; vLLM does the same); a prompt's first token: null
        "top_logprobs": [None if e.logprob is None else {**{t.token: t.logprob for t in e.top}, e.token: e.logprob}
                         for e in entries],
        "text_offset": offsets,
    }


def _finite(value: float) -> float:
    """-inf (a token masked to impossible) is not valid JSON; OpenAI and vLLM report -9999.0 instead."""
    return value if value > -9999.0 else -9999.0


@functools.cache
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte ↔ printable-character table, which byte-level BPE vocabularies (Llama 3's) are written in."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))
