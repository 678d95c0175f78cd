"""Stop strings: cutting finished and streamed text, and stopping ``generate`` when one appears."""

from __future__ import annotations

import threading
from typing import Any


class StopScanner:
    """Cuts streamed text at the first stop string, holding back text that may begin one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buf = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop string was hit)."""
        self.buf += text
        if not self.stops:
            out, self.buf = self.buf, ""
            return out, False
        cut = first_stop(self.buf, self.stops)
        if cut is not None:
            out, self.buf = self.buf[:cut], ""
            return out, True
        keep = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), keep, -1):
                if self.buf.endswith(s[:k]):
                    keep = k
                    break
        out, self.buf = self.buf[: len(self.buf) - keep], self.buf[len(self.buf) - keep :]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


def first_stop(text: str, stops: list[str]) -> int | None:
    """Index where the earliest stop string begins in ``text``, or ``None``."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def stopping_criteria(tokenizer: Any, prompt_len: int, stops: list[str], cancel: threading.Event) -> Any:
    """Stop when the request is cancelled (client gone) or a stop string appears in the new text."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    stops = [s for s in stops if s]
    window = max((len(s) for s in stops), default=0) + 8  # tokens: enough to contain any stop string

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = cancel.is_set()
            if not done and stops:
                tail = input_ids[0, max(prompt_len, input_ids.shape[1] - window) :]
                text = tokenizer.decode(tail, skip_special_tokens=True)
                done = any(s in text for s in stops)
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])
