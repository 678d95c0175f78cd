"""Stop strings: cutting streamed text at the first one (``DecodeSession`` ends that sequence there)."""

from __future__ import annotations


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
