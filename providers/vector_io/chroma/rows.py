"""Chunks in and out of Chroma: metadata and embeddings checked, rows turned back into chunks.

Chroma accepts only flat scalar metadata and silently merges metadata on
upsert; checking here turns a bad chunk into a 400 naming the chunk and
key, and makes a re-added chunk *replace* its old metadata.
"""

from __future__ import annotations

import math
from typing import Any

from vistack.api import BadRequestError
from vistack.api.protocols import StoredChunk

from .filters import RESERVED_KEY_PREFIXES, is_number

__all__ = ["check_embedding", "clean_metadata", "order_key", "replacing_metadata", "rows_to_chunks"]

_INT64 = (-(2**63), 2**63 - 1)


def order_key(chunk: StoredChunk) -> tuple:
    """Reading order, (page, chunk_index); chunks without them last. Chroma returns rows in no set order."""
    page = chunk.metadata.get("page")
    index = chunk.metadata.get("chunk_index")
    page = page if is_number(page) else None
    index = index if is_number(index) else None
    return (page is None, page or 0, index is None, index or 0)


def clean_metadata(chunk_id: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """Chroma-safe metadata: ``None`` values dropped; anything else non-scalar is a 400."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if not isinstance(key, str) or not key or key.startswith(RESERVED_KEY_PREFIXES):
            raise BadRequestError(
                f"chunk '{chunk_id}': metadata key {key!r} is not allowed "
                f"(keys must be non-empty and not start with {', '.join(RESERVED_KEY_PREFIXES)})"
            )
        if isinstance(value, (bool, str)):
            out[key] = value
        elif isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                raise BadRequestError(f"chunk '{chunk_id}': metadata '{key}' is outside the 64-bit integer range")
            out[key] = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise BadRequestError(f"chunk '{chunk_id}': metadata '{key}' must be a finite number, got {value}")
            out[key] = value
        else:
            raise BadRequestError(
                f"chunk '{chunk_id}': metadata '{key}' must be a string, number or boolean "
                f"(got {type(value).__name__}); flatten or JSON-encode it"
            )
    return out or None  # Chroma rejects an empty metadata dict


def check_embedding(store_id: str, what: str, embedding: Any, dimension: int | None) -> list[float]:
    """``embedding`` as floats of the store's dimension; anything else is a 400 naming ``what``."""
    if embedding is None:
        raise BadRequestError(f"{what} has no embedding; vector store '{store_id}' needs precomputed embeddings")
    try:
        vec = [float(x) for x in embedding]
    except (TypeError, ValueError):
        raise BadRequestError(f"{what}: embedding must be a list of numbers") from None
    if not vec:
        raise BadRequestError(f"{what}: embedding is empty")
    if dimension is not None and len(vec) != dimension:
        raise BadRequestError(
            f"{what} has an embedding of dimension {len(vec)}, but vector store '{store_id}' "
            f"was created with dimension {dimension}",
            code="dimension_mismatch",
        )
    if not all(math.isfinite(x) for x in vec):
        raise BadRequestError(f"{what}: embedding contains NaN or infinite values")
    return vec


def replacing_metadata(
    col: Any, ids: list[str], metadatas: list[dict[str, Any] | None]
) -> list[dict[str, Any] | None] | None:
    """Metadata that *replaces* what a re-added chunk had: Chroma's upsert merges keys, so keys
    the new version lacks are sent as ``None`` (which Chroma deletes)."""
    old = col.get(ids=ids, include=["metadatas"])
    previous = {cid: md for cid, md in zip(old["ids"], old.get("metadatas") or [], strict=False) if md}
    out: list[dict[str, Any] | None] = []
    for cid, md in zip(ids, metadatas, strict=True):
        stale = {k: None for k in previous.get(cid, {}) if not md or k not in md}
        merged = {**stale, **(md or {})}
        out.append(merged or None)
    return out if any(m is not None for m in out) else None


def rows_to_chunks(page: dict[str, Any], with_embeddings: bool) -> list[StoredChunk]:
    """A ``Collection.get`` answer (column lists) as chunks."""
    ids = page.get("ids") or []
    docs = page.get("documents") or [None] * len(ids)
    mds = page.get("metadatas") or [None] * len(ids)
    embs = page.get("embeddings") if with_embeddings else None
    if embs is None:
        embs = [None] * len(ids)
    out = []
    for i, cid in enumerate(ids):
        emb = embs[i]
        out.append(
            StoredChunk(
                id=cid,
                text=docs[i] or "",
                metadata=dict(mds[i] or {}),
                embedding=[float(x) for x in emb] if emb is not None else None,
            )
        )
    return out
