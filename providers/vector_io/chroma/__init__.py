"""Chroma as vistack's vector index: one adapter, two configs.

``inline::chromadb`` opens an embedded ``PersistentClient`` under the state
dir; ``remote::chromadb`` talks to a Chroma server (``chroma run --path DIR``)
through ``HttpClient``. Both feed :class:`ChromaVectorIOProvider`, which picks
the client by the config's type.

chromadb is imported only inside functions, so importing this package (the
registry does it to read the config class) stays cheap.

Modules: ``config`` (the two config blocks), ``adapter`` (the provider:
collections and chunks), ``connection`` (the chromadb client: open, probe,
close, error mapping), ``collection`` (store id -> collection name, the
store's settings on its collection), ``filters`` (OpenAI filters -> Chroma
``where`` + the exact post-check) and ``rows`` (chunk metadata and
embeddings in, rows out).
"""

from .adapter import ChromaVectorIOProvider
from .collection import DIMENSION_KEY, STORE_ID_KEY, collection_name
from .config import ChromaInlineConfig, ChromaRemoteConfig
from .filters import NOTHING, translate_filter

__all__ = [
    "DIMENSION_KEY",
    "NOTHING",
    "STORE_ID_KEY",
    "ChromaInlineConfig",
    "ChromaRemoteConfig",
    "ChromaVectorIOProvider",
    "collection_name",
    "translate_filter",
]
