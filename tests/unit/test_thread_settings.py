"""An LLM provider's torch thread count applies to its own worker thread, not to the rest of the process."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

torch = pytest.importorskip("torch")

from vistack.torch_threads import pin_threads  # noqa: E402 - after the torch skip


def _in_fresh_thread(fn):
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_pin_threads_is_per_worker() -> None:
    default = _in_fresh_thread(torch.get_num_threads)
    worker = ThreadPoolExecutor(max_workers=1)
    try:
        x = torch.randn(64, 64)
        worker.submit(pin_threads, torch, 1).result()
        assert worker.submit(lambda: (x @ x, torch.get_num_threads())[1]).result() == 1
        # a thread that starts torch work afterwards (e.g. an embedding model's) gets the process default
        assert _in_fresh_thread(lambda: (x @ x, torch.get_num_threads())[1]) == default
        # and the worker keeps its own count afterwards
        assert worker.submit(lambda: (x @ x, torch.get_num_threads())[1]).result() == 1
    finally:
        worker.shutdown()
