"""Optional cross-encoder reranking of retrieved chunks (sentence-transformers ``CrossEncoder``).

The model loads lazily, on the first :meth:`CrossEncoderReranker.rerank`,
from a local directory only: nothing is ever downloaded. A missing or
unloadable model raises :class:`~vistack.api.ServiceUnavailableError` naming
the path tried and the fix.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vistack.api import ServiceUnavailableError
from vistack.api.protocols import ScoredChunk

__all__ = ["CrossEncoderReranker"]


class CrossEncoderReranker:
    """Scores (query, chunk text) pairs with a cross-encoder and reorders by that score.

    ``model_path`` is a directory saved by ``CrossEncoder.save_pretrained`` (or a
    Hugging Face sequence-classification checkpoint with one label), e.g. a local
    copy of ``cross-encoder/ms-marco-MiniLM-L6-v2``. Scores are what
    ``CrossEncoder.predict`` returns (for one label: the sigmoid of the logit,
    unless the model's config names another activation).
    """

    def __init__(self, model_path: str | Path, device: str = "cpu", batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = str(model_path)
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Any:
        """Load the model now (idempotent); raises ServiceUnavailableError when it cannot."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def problem(self) -> str | None:
        """Why the model cannot load, found without loading it (a missing directory or config.json); else None."""
        path = Path(self.model_path).expanduser()
        if not path.is_dir():
            return f"reranker model '{path}' is not a directory"
        if not (path / "config.json").is_file():
            return f"reranker model '{path}' has no config.json"
        return None

    def _load(self) -> Any:
        path = Path(self.model_path).expanduser()
        fix = (
            "Copy a cross-encoder model (e.g. cross-encoder/ms-marco-MiniLM-L6-v2, saved with "
            "save_pretrained) into that directory, point the reranker's model path at one, "
            "or turn reranking off."
        )
        if not path.is_dir():
            raise ServiceUnavailableError(
                f"Reranker model not found: '{path}' is not a directory. {fix}", code="reranker_unavailable"
            )
        if not (path / "config.json").is_file():
            raise ServiceUnavailableError(
                f"Reranker model at '{path}' has no config.json, so it is not a saved model. {fix}",
                code="reranker_unavailable",
            )
        try:
            from sentence_transformers import CrossEncoder

            return CrossEncoder(str(path), device=self.device, local_files_only=True)
        except Exception as exc:  # any failure means "the reranker is unusable"; the cause goes in the message
            raise ServiceUnavailableError(
                f"Reranker model at '{path}' could not be loaded ({type(exc).__name__}: {exc}). {fix}",
                code="reranker_unavailable",
            ) from exc

    def rerank(self, query: str, chunks: Sequence[ScoredChunk], top_n: int | None = None) -> list[ScoredChunk]:
        """``chunks`` rescored by the cross-encoder, best first, at most ``top_n`` (all when None).

        Equal scores keep the input order. Chunk objects are kept; only the scores change.
        """
        if top_n is not None and top_n <= 0:
            return []
        if not chunks:
            return []
        model = self.load()
        pairs = [(query, hit.chunk.text) for hit in chunks]
        raw = model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        scores = [float(s) for s in raw.reshape(len(pairs), -1)[:, 0]]
        order = sorted(range(len(chunks)), key=lambda i: (-scores[i], i))
        if top_n is not None:
            order = order[:top_n]
        return [ScoredChunk(chunk=chunks[i].chunk, score=scores[i]) for i in order]
