"""Background responses: a bounded queue and a few workers, each job cancellable by response id.

A job is a coroutine factory; the worker runs it as a task it can cancel
(``POST /v1/responses/{id}/cancel``) and bounds it in time. Jobs run with
the principal of whoever created them, so what they read and write is
that caller's. A full queue is the client's signal to retry later (429).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vistack.access import Principal
from vistack.api.errors import TooManyRequestsError
from vistack.context import set_principal

log = logging.getLogger(__name__)


class QueueFullError(TooManyRequestsError):
    """The background queue is full (429 with Retry-After)."""


@dataclass
class Job:
    response_id: str
    owner: Principal
    run: Callable[[], Awaitable[None]]
    on_timeout: Callable[[], Awaitable[None]]
    on_cancel: Callable[[], Awaitable[None]]


class BackgroundJobs:
    def __init__(self, workers: int, queue_size: int, timeout_s: float) -> None:
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self._n = workers
        self._timeout_s = timeout_s
        self._workers: list[asyncio.Task] = []
        self._running: dict[str, asyncio.Task] = {}
        self._cancelled: set[str] = set()

    def start(self) -> None:
        if not self._workers:
            self._workers = [asyncio.create_task(self._worker(), name=f"responses-bg-{i}") for i in range(self._n)]

    async def stop(self) -> None:
        tasks = [*self._workers, *self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()

    def submit(self, job: Job) -> None:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFullError(
                f"the background response queue is full ({self._queue.maxsize} waiting); retry later",
                code="rate_limit_exceeded",
            ) from None

    def cancel(self, response_id: str) -> None:
        """Stop a running job now, or skip a queued one when its turn comes."""
        self._cancelled.add(response_id)
        task = self._running.get(response_id)
        if task is not None:
            task.cancel()

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                if job.response_id in self._cancelled:
                    continue
                set_principal(job.owner)
                task = asyncio.create_task(asyncio.wait_for(job.run(), self._timeout_s))
                self._running[job.response_id] = task
                try:
                    await task
                except asyncio.CancelledError:
                    if job.response_id not in self._cancelled:
                        raise  # the server is stopping; the job resumes after a restart
                    await job.on_cancel()
                except TimeoutError:
                    await job.on_timeout()
                except Exception:  # a job's failure is recorded by the job itself; keep the worker alive
                    log.exception("background response %s crashed", job.response_id)
            finally:
                self._running.pop(job.response_id, None)
                self._cancelled.discard(job.response_id)
                self._queue.task_done()
