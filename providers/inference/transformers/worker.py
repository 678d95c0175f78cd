"""One served model: its weights once loaded, and the single worker thread that queues its requests.

``generate`` is not re-entrant on one model, so everything that touches the weights (loading,
generating, freeing) runs FIFO on the model's one worker thread while the event loop stays free.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vistack.api import ServiceUnavailableError, TooManyRequestsError
from vistack.metrics import current as current_metrics

from .loading import Loaded

logger = logging.getLogger(__package__)  # the provider's one logger, named as before the package split

Load = Callable[[str], Loaded]
"""Loads the weights of a provider_resource_id (``ModelLoader.load``)."""


@dataclass
class Slot:
    """One provider_resource_id: its identifiers, its weights once loaded, and its worker thread."""

    resource_id: str
    max_queued: int  # requests waiting or running on the worker before new ones are refused
    identifiers: set[str] = field(default_factory=set)
    loaded: Loaded | None = None
    error: ServiceUnavailableError | None = None
    error_at: float = 0.0
    pending: int = 0  # requests queued or running on the worker
    seconds_per_request: float = 1.0  # moving average of a request's time on the worker (for Retry-After)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards pending
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="vistack-transformers")
    )

    def __post_init__(self) -> None:
        self._report_depth()  # the model's queue-depth series exists (at 0) from registration

    def _report_depth(self) -> None:
        """Observability: ``vistack_queue_depth{model=<provider_resource_id>}`` = ``pending`` (under ``lock``)."""
        current_metrics().queue_depth(self.resource_id, self.pending)

    # -- requests -------------------------------------------------------------------------------------

    def check_capacity(self) -> None:
        """429 with a Retry-After of about the time the queue ahead needs to drain one place."""
        if self.pending >= self.max_queued:
            raise TooManyRequestsError(
                f"model '{self.resource_id}' is busy: {self.pending} requests are running or waiting "
                f"(max_queued_requests={self.max_queued}); retry later.",
                retry_after_s=min(60.0, max(1.0, self.seconds_per_request)),
                code="model_busy",
            )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Queue ``fn`` on the model's single worker: generate() calls on one model never interleave."""
        with self.lock:
            self.check_capacity()
            queued_behind = self.pending
            self.pending += 1
            self._report_depth()

        started = time.monotonic()

        def done(_: Future | None) -> None:
            with self.lock:
                self.pending -= 1
                # time on the worker including the wait, divided by the requests it waited behind
                self.seconds_per_request = 0.8 * self.seconds_per_request + 0.2 * (time.monotonic() - started) / (
                    queued_behind + 1)
                self._report_depth()

        try:
            fut = self.executor.submit(fn, *args)
        except RuntimeError as e:  # executor shut down: the model was unregistered meanwhile
            done(None)
            raise ServiceUnavailableError(f"model '{self.resource_id}' was unloaded; retry.") from e
        fut.add_done_callback(done)
        return fut

    # -- weights --------------------------------------------------------------------------------------

    async def ensure_loaded(self, load: Load) -> Loaded:
        if self.loaded is not None:
            return self.loaded
        try:
            fut = self.executor.submit(self._load_sync, load, time.monotonic())
        except RuntimeError as e:  # executor shut down: unregistered meanwhile
            raise ServiceUnavailableError(f"model '{self.resource_id}' was unloaded; retry.") from e
        return await asyncio.wrap_future(fut)

    def start_preload(self, load: Load) -> None:
        if self.loaded is not None:
            return
        fut = self.executor.submit(self._load_sync, load, time.monotonic())

        def report(f: Future) -> None:
            error = None if f.cancelled() else f.exception()
            if error is not None:
                logger.warning("preload of %s failed: %s", self.resource_id, getattr(error, "message", error))

        fut.add_done_callback(report)

    def _load_sync(self, load: Load, requested_at: float) -> Loaded:
        """Runs on the single worker, so loads never overlap and happen once."""
        if self.loaded is not None:
            return self.loaded
        # Requests that queued behind a failed attempt share its error instead of each retrying
        # a slow load; a later request retries (the operator may have fixed the path).
        if self.error is not None and self.error_at >= requested_at:
            raise self.error
        try:
            self.loaded = load(self.resource_id)
            self.error = None
            return self.loaded
        except ServiceUnavailableError as e:
            self.error, self.error_at = e, time.monotonic()
            raise

    def free(self) -> None:
        """Drop the weights after in-flight requests finish (FIFO on the worker), then stop the worker."""

        def release() -> None:
            cuda = self.loaded is not None and str(self.loaded.device).startswith("cuda")
            self.loaded = None
            gc.collect()
            if cuda:
                import torch

                torch.cuda.empty_cache()

        with contextlib.suppress(RuntimeError):  # executor already shut down
            self.executor.submit(release)
        self.executor.shutdown(wait=False)
