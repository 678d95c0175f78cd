"""Per-principal rate limits: a token bucket per caller, refilled continuously.

``requests_per_minute`` tokens per minute, up to ``burst`` saved; a request
takes one, and an empty bucket is a 429 whose ``Retry-After`` is the time
until the next token. Buckets live in memory (one server process), at most
``MAX_BUCKETS`` of them, least recently used dropped first.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from vistack.api import TooManyRequestsError

MAX_BUCKETS = 100_000


class RateLimiter:
    def __init__(self, requests_per_minute: int | None, burst: int | None = None,
                 per_principal: dict[str, int] | None = None) -> None:
        self.default = requests_per_minute
        self.burst = burst
        self.per_principal = dict(per_principal or {})
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # id -> (tokens, last refill)

    @property
    def active(self) -> bool:
        return self.default is not None or bool(self.per_principal)

    def check(self, principal_id: str, now: float | None = None) -> None:
        rate = self.per_principal.get(principal_id, self.default)
        if rate is None:
            return
        now = time.monotonic() if now is None else now
        capacity = float(self.burst or rate)
        tokens, last = self._buckets.pop(principal_id, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate / 60.0)
        if tokens < 1.0:
            self._remember(principal_id, tokens, now)
            wait = (1.0 - tokens) * 60.0 / rate
            raise TooManyRequestsError(
                f"rate limit of {rate} requests per minute reached for '{principal_id}'; retry in {wait:.1f} s",
                retry_after_s=wait)
        self._remember(principal_id, tokens - 1.0, now)

    def _remember(self, principal_id: str, tokens: float, now: float) -> None:
        self._buckets[principal_id] = (tokens, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
