"""Prometheus metrics: one :class:`Metrics` (its own ``CollectorRegistry``) per app instance.

Services that are handed a ``Metrics`` call its methods; code deep in a call
(the inference router, ingestion, a provider's worker thread) uses
:func:`current`, the metrics of the running app, instead of threading an
argument through every layer.

Why a module-level "current" and not a context variable: ingestion runs in
a background worker task started at startup and generation runs on worker
threads, neither of which inherits a request's context, and a context
variable set in the lifespan is not seen by request tasks either. The
trade-off: one process has one current ``Metrics``. With several apps in one
process (tests), deep-code records go to the app started last; each app's
HTTP metrics (the middleware's) always go to its own registry. Before any app
starts (and after it stops), :func:`current` returns a process-wide fallback
that nobody exposes, so recording never fails and never needs a ``None`` check.

Recording never raises: a metric must not break a request.
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

try:  # prometheus-client >= 0.22 defaults to text format 1.0.0; 0.0.4 is what every Prometheus scrapes
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE
except ImportError:  # pragma: no cover - older prometheus-client
    from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE

log = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"
"""Route label of requests no route matched (404s): raw paths would explode the label set."""

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
INGESTION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
INGESTION_STATUSES = ("completed", "failed", "unavailable")


class Metrics:
    """The server's Prometheus metrics on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "vistack_requests", "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"], registry=r,
        )
        self.request_duration = Histogram(
            "vistack_request_duration_seconds", "HTTP request duration to the end of the response body.",
            ["route", "method"], buckets=REQUEST_BUCKETS, registry=r,
        )
        self.tokens_generated = Counter(
            "vistack_tokens_generated", "Completion tokens generated, by model (from usage).", ["model"], registry=r,
        )
        self.prompt_tokens = Counter(
            "vistack_prompt_tokens", "Prompt (input) tokens processed, by model (from usage).", ["model"], registry=r,
        )
        self.queue_depth_gauge = Gauge(
            "vistack_queue_depth", "Generations waiting or running, by model.", ["model"], registry=r,
        )
        self.ingestion_pages = Counter(
            "vistack_ingestion_pages", "Pages of completed file ingestions.", registry=r,
        )
        self.ingestion_files = Counter(
            "vistack_ingestion_files",
            "File ingestions that ended: completed, failed, or unavailable (a backend was down; may be retried).",
            ["status"], registry=r,
        )
        self.ingestion_seconds = Histogram(
            "vistack_ingestion_seconds", "Time to ingest one file.", buckets=INGESTION_BUCKETS, registry=r,
        )
        for status in INGESTION_STATUSES:  # present (at 0) before the first file
            self.ingestion_files.labels(status)

    # ----- recording (never raises) -------------------------------------------------------------

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        try:
            self.requests.labels(route, method, str(status)).inc()
            self.request_duration.labels(route, method).observe(max(seconds, 0.0))
        except Exception:  # noqa: BLE001
            log.debug("request metric not recorded", exc_info=True)

    def tokens(self, model: str, prompt: int | None, completion: int | None) -> None:
        """Prompt and completion tokens of one answered request (a usage object)."""
        try:
            if prompt and prompt > 0:
                self.prompt_tokens.labels(model).inc(prompt)
            if completion and completion > 0:
                self.tokens_generated.labels(model).inc(completion)
        except Exception:  # noqa: BLE001
            log.debug("token metric not recorded", exc_info=True)

    def queue_depth(self, model: str, depth: int) -> None:
        """Generations waiting or running on ``model`` now (set, not inc/dec: no drift)."""
        try:
            self.queue_depth_gauge.labels(model).set(max(depth, 0))
        except Exception:  # noqa: BLE001
            log.debug("queue depth metric not recorded", exc_info=True)

    def ingestion(self, status: str, pages: int = 0, seconds: float | None = None) -> None:
        """One file's ingestion ended with ``status`` (completed, failed, unavailable)."""
        try:
            self.ingestion_files.labels(status).inc()
            if pages > 0:
                self.ingestion_pages.inc(pages)
            if seconds is not None:
                self.ingestion_seconds.observe(max(seconds, 0.0))
        except Exception:  # noqa: BLE001
            log.debug("ingestion metric not recorded", exc_info=True)

    # ----- exposition ---------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of this registry, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE


# ----- the running app's metrics ---------------------------------------------------------------------

_lock = threading.Lock()
_fallback: Metrics | None = None
_current: Metrics | None = None


def current() -> Metrics:
    """The running app's metrics; a process-wide fallback (never exposed) when no app runs."""
    global _fallback
    found = _current
    if found is not None:
        return found
    with _lock:
        if _fallback is None:
            _fallback = Metrics()
        return _fallback


def set_current(metrics: Metrics | None) -> Metrics | None:
    """Make ``metrics`` the process's current metrics (app startup); returns the previous ones."""
    global _current
    with _lock:
        previous, _current = _current, metrics
    return previous


def clear_current(metrics: Metrics) -> None:
    """App shutdown: forget ``metrics`` if they are still current (another app may have started since)."""
    global _current
    with _lock:
        if _current is metrics:
            _current = None
