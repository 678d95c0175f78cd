"""OpenAI's ``logit_bias``, ``frequency_penalty`` and ``presence_penalty`` as logits processors.

As OpenAI documents them (and vLLM applies them): the bias is added to a token's logit (-100 bans it,
100 all but forces it); the penalties lower each token's logit by ``frequency_penalty`` times how often
it has appeared in the generated text so far, plus ``presence_penalty`` once it has appeared at all.
Only generated tokens count, never the prompt. They run after the logprob recorder (logprobs stay the
model's own) and before the grammar mask and the sampling warpers.
"""

from __future__ import annotations

from typing import Any

from vistack.api import BadRequestError


def parse_logit_bias(value: dict[str, float] | None, vocab_size: int) -> dict[int, float]:
    """``{"token id": bias}`` checked: ids in the vocabulary, biases in [-100, 100] (a 400 otherwise)."""
    out: dict[int, float] = {}
    for key, bias in (value or {}).items():
        try:
            token = int(key)
        except (TypeError, ValueError):
            raise BadRequestError(f"logit_bias keys are token ids; got {key!r}.", param="logit_bias") from None
        if not 0 <= token < vocab_size:
            raise BadRequestError(f"logit_bias token id {token} is outside the vocabulary [0, {vocab_size}).",
                                  param="logit_bias")
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
            raise BadRequestError(f"logit_bias values must be numbers in [-100, 100]; got {bias!r} for {token}.",
                                  param="logit_bias")
        out[token] = float(bias)
    return out


class LogitBias:
    """Adds each biased token's bias to its logit, every step."""

    def __init__(self, bias: dict[int, float]) -> None:
        self.ids = list(bias)
        self.values = list(bias.values())
        self._tensor: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self._tensor is None or self._tensor.device != scores.device:
            self._tensor = torch.tensor(self.values, dtype=scores.dtype, device=scores.device)
        scores[:, self.ids] += self._tensor
        return scores


class RepetitionPenalties:
    """OpenAI's frequency and presence penalties over the tokens generated so far (per sequence)."""

    def __init__(self, prompt_len: int, frequency: float, presence: float) -> None:
        self.prompt_len, self.frequency, self.presence = prompt_len, frequency, presence
        self.counts: Any = None  # per sequence and token: how often generated so far (kept, not recounted)
        self.counted = 0  # generated tokens already in counts

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        new = input_ids[:, self.prompt_len + self.counted:]
        if self.counts is None:
            if input_ids.shape[1] == self.prompt_len:
                return scores
            self.counts = torch.zeros_like(scores)
        if new.shape[1]:
            self.counts.scatter_add_(1, new, torch.ones_like(new, dtype=self.counts.dtype))
            self.counted += new.shape[1]
        scores -= self.frequency * self.counts + self.presence * (self.counts > 0).to(scores.dtype)
        return scores
