"""Torch intra-op threads for one worker thread, without changing what other threads get.

Every provider that runs torch on its own worker (transformers models, Prompt Guard) needs this, so it
lives in the core rather than in either provider.
"""

from __future__ import annotations

import threading
from typing import Any


def pin_threads(torch: Any, threads: int) -> None:
    """``threads`` intra-op threads for the calling thread only (a model's worker: it loads and runs).

    ``torch.set_num_threads`` sets the calling thread's OpenMP/MKL count *and* the process-wide
    value that threads starting torch work later pick up, so an LLM's ``cores - 1`` would also
    throttle, say, an embedding model running in another thread. The worker's own count is fixed
    now (the first parallel call initialises a thread's count), then the process-wide value goes
    back to what it was, set from a short-lived helper thread.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.get_num_threads()  # initialises this thread's count now, while the process-wide value is ours
    if previous != threads:
        helper = threading.Thread(target=torch.set_num_threads, args=(previous,), name="vistack-threads-restore")
        helper.start()
        helper.join()
