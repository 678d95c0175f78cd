"""How a vector store maps onto a Chroma collection: its name and recorded settings.

Store ids are not always valid Chroma names, so names are derived
deterministically; the store's dimension and distance live in the
collection's metadata, so a mismatch is caught instead of corrupting it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

from .filters import is_number

__all__ = ["DIMENSION_KEY", "STORE_ID_KEY", "collection_name", "dimension_of", "space_of"]

DIMENSION_KEY = "vistack_dimension"  # collection metadata: the store's embedding dimension
STORE_ID_KEY = "vistack_store_id"  # collection metadata: the store id the name was derived from


_VALID_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$")


def collection_name(store_id: str) -> str:
    """The Chroma collection for a store: deterministic, and valid on every Chroma version.

    An id that already is a valid name of at most 63 characters (``vs_<uuid>``)
    is used as is; any other id becomes ``vs-<sanitised prefix>-<sha256[:16]>``,
    so distinct ids never share a collection.
    """
    if _VALID_NAME.match(store_id) and ".." not in store_id and not _is_ip(store_id):
        return store_id
    digest = hashlib.sha256(store_id.encode("utf-8")).hexdigest()[:16]
    safe = re.sub(r"[^a-zA-Z0-9_-]+", "_", store_id)[:40].strip("_-")
    return f"vs-{safe}-{digest}" if safe else f"vs-{digest}"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def space_of(collection: Any) -> str | None:
    """The collection's distance (``cosine``, ``l2``, ...), wherever this chromadb version keeps it."""
    # configuration_json, not .configuration: the latter warns about the (deliberately absent) embedding function
    conf = getattr(collection, "configuration_json", None) or {}
    for index in ("hnsw", "spann"):
        section = conf.get(index) if isinstance(conf, dict) else None
        if isinstance(section, dict) and section.get("space"):
            return str(section["space"])
    md = collection.metadata or {}
    return md.get("hnsw:space")


def dimension_of(collection: Any) -> int | None:
    """The store dimension recorded at creation; ``None`` for a collection vistack did not create."""
    dim = (collection.metadata or {}).get(DIMENSION_KEY)
    return int(dim) if is_number(dim) else None
