"""Chroma as vistack's vector index: one adapter, two configs.

``inline::chromadb`` opens an embedded ``PersistentClient`` under the state
dir; ``remote::chromadb`` talks to a Chroma server (``chroma run --path DIR``)
through ``HttpClient``. Both feed :class:`ChromaVectorIOProvider`, which picks
the client by the config's type.

What the adapter guarantees, whichever client it has:

- Chroma's default embedding function (which downloads a model) is never
  used: collections are created with ``embedding_function=None`` and every
  add and query passes its vectors explicitly.
- Collections use cosine space; a score is ``1 - cosine distance``.
- One collection per vector store, named by :func:`collection_name`; the
  store's dimension is recorded in the collection's metadata and checked on
  every add and query (a mismatch is a 400, not a silent corruption).
- OpenAI attribute filters are pushed down as a Chroma ``where`` that can
  only ever be wider than :func:`vistack.api.filters.matches`; the answer is
  then filtered with ``matches`` itself (over an over-fetched candidate set
  where the push-down was not exact), so results follow ``matches`` exactly
  whatever the Chroma version does with missing keys or mixed types.
- chromadb is synchronous: every call runs in a worker thread; the embedded
  client is additionally serialised behind a lock.
- A server that is down or unreachable is a ``ServiceUnavailableError`` (503)
  naming the URL and the fix; an unknown store is a ``NotFoundError``;
  ``initialize`` never fails because Chroma is down.
- Nothing is deleted except by ``delete_collection`` / ``delete_chunks``.

chromadb is imported only inside methods, so importing this module is cheap.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from vistack.api import (
    BadRequestError,
    ConfigError,
    HealthResponse,
    HealthStatus,
    NotFoundError,
    ServiceUnavailableError,
    VistackError,
)
from vistack.api.filters import ComparisonFilter, CompoundFilter, Filter, matches, parse_filter
from vistack.api.protocols import ChunkMetadataValue, ScoredChunk, StoredChunk, VectorIOProvider

if TYPE_CHECKING:  # pragma: no cover
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = [
    "DIMENSION_KEY",
    "STORE_ID_KEY",
    "ChromaInlineConfig",
    "ChromaRemoteConfig",
    "ChromaVectorIOProvider",
    "collection_name",
    "translate_filter",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DIMENSION_KEY = "vistack_dimension"  # collection metadata: the store's embedding dimension
STORE_ID_KEY = "vistack_store_id"  # collection metadata: the store id the name was derived from

_PROBE_TIMEOUT_S = 5.0  # health checks and the first connection must not hang startup
_OVERFETCH = 4  # candidates per wanted hit when the pushed-down filter is only a superset
_INT64 = (-(2**63), 2**63 - 1)
_RESERVED_KEY_PREFIXES = ("chroma:", "#", "$")


# ----- configs ---------------------------------------------------------------------------------


class _ChromaCommonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hnsw_space: Literal["cosine"] = Field(
        default="cosine", description="Distance of new collections; vistack scores are cosine similarities"
    )
    batch_size: int = Field(default=1000, ge=1, le=100_000, description="Chunks per upsert/get request to Chroma")


class ChromaInlineConfig(_ChromaCommonConfig):
    """Embedded Chroma (``PersistentClient``) in this process."""

    db_path: str | None = Field(
        default=None, description="Directory of the Chroma database; default <state_dir>/chroma"
    )


class ChromaRemoteConfig(_ChromaCommonConfig):
    """A Chroma server reached over HTTP, e.g. ``chroma run --path DIR --port 8000``."""

    url: str = Field(description="Base URL of the Chroma server, e.g. http://127.0.0.1:8000 (CHROMA_URL)")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra headers sent with every request (values treated as secrets)"
    )
    auth_token: SecretStr | None = Field(
        default=None, description="Token for a server started with token auth; sent in `auth_header`"
    )
    auth_header: str = Field(
        default="Authorization",
        description="Header carrying auth_token: 'Authorization' (sent as 'Bearer <token>') or e.g. 'X-Chroma-Token'",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Seconds per request to the server")
    tls_verify: bool | str = Field(default=True, description="Verify TLS (https), or a CA bundle path")
    tenant: str = Field(default="default_tenant", min_length=1)
    database: str = Field(default="default_database", min_length=1)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        v = (v or "").strip().rstrip("/")
        if not v:
            raise ValueError(
                "url is required: set CHROMA_URL or the provider's config.url (e.g. http://127.0.0.1:8000)"
            )
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must look like http://host:port, got {v!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as e:
            raise ValueError(f"url has an invalid port: {v!r}") from e
        if parts.query or parts.fragment:
            raise ValueError(f"url must not carry a query or fragment: {v!r}")
        return v

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The explicit port, else the scheme's default (80/443), as any URL means."""
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def ssl(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    def request_headers(self) -> dict[str, str]:
        out = {k: v.get_secret_value() for k, v in self.headers.items()}
        if self.auth_token is not None and self.auth_token.get_secret_value():
            token = self.auth_token.get_secret_value()
            if self.auth_header.lower() == "authorization" and not token.lower().startswith(("bearer ", "basic ")):
                token = f"Bearer {token}"
            out[self.auth_header] = token
        return out


# ----- names and filters -----------------------------------------------------------------------

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


class _Nothing:
    """A where that matches nothing (Chroma has no literal for it)."""

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = _Nothing()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kind(v: Any) -> str:
    return "bool" if isinstance(v, bool) else "number" if _is_number(v) else "str"


def translate_filter(flt: Filter | None) -> tuple[dict[str, Any] | None | _Nothing, bool]:
    """OpenAI filter -> (Chroma ``where``, exact).

    ``where`` is ``None`` for "no restriction" and :data:`NOTHING` for "no
    chunk can match"; otherwise a Chroma where that every chunk satisfying
    ``matches(flt, ...)`` also satisfies. ``exact`` says whether the converse
    holds too (then no over-fetch is needed). Callers still post-filter with
    ``matches``.

    ``ne`` and ``nin`` are never pushed down: Chroma servers have disagreed
    across versions about chunks that lack the key, and ``matches`` keeps them.
    Ordering comparisons on strings or booleans are not pushed down either
    (Chroma only orders numbers).
    """
    if flt is None:
        return None, True
    if isinstance(flt, CompoundFilter):
        parts = [translate_filter(f) for f in flt.filters]
        exact = all(e for _, e in parts)
        if flt.type == "and":
            if any(w is NOTHING for w, _ in parts):
                return NOTHING, True
            wheres = [w for w, _ in parts if w is not None]
            if not wheres:
                return None, exact
            return (wheres[0] if len(wheres) == 1 else {"$and": wheres}), exact
        # or
        live = [(w, e) for w, e in parts if w is not NOTHING]
        if not live:
            return NOTHING, True  # an empty "or", or every branch impossible
        if any(w is None for w, _ in live):
            return None, all(e for _, e in live)
        wheres = [w for w, _ in live]
        return (wheres[0] if len(wheres) == 1 else {"$or": wheres}), all(e for _, e in live)
    return _translate_comparison(flt)


def _translate_comparison(flt: ComparisonFilter) -> tuple[dict[str, Any] | None | _Nothing, bool]:
    key, op, value = flt.key, flt.type, flt.value
    if key.startswith(_RESERVED_KEY_PREFIXES):
        # no stored chunk can carry such a key: the answer is what `matches` says of a missing key
        return (None if matches(flt, {}) else NOTHING), True
    if op in ("ne", "nin"):
        if op == "ne" and isinstance(value, list):
            return None, True  # a scalar never equals a list: always true
        if op == "nin" and isinstance(value, list) and not value:
            return None, True
        return None, False
    if op == "eq":
        if isinstance(value, list):
            return NOTHING, True
        return {key: {"$eq": value}}, True
    if op == "in":
        values = value if isinstance(value, list) else [value]
        if not values:
            return NOTHING, True
        groups: dict[str, list[Any]] = {}
        for v in values:
            k = _kind(v)
            v = float(v) if k == "number" else v  # Chroma wants one type per list; 1.0 matches a stored 1
            if v not in groups.setdefault(k, []):
                groups[k].append(v)
        clauses = [{key: {"$in": vs}} for vs in groups.values()]
        return (clauses[0] if len(clauses) == 1 else {"$or": clauses}), True
    # gt / gte / lt / lte
    if isinstance(value, list):
        return NOTHING, True
    if _is_number(value) and math.isfinite(value):
        return {key: {f"${op}": value}}, True
    return None, False


def _where_from_equalities(where: dict[str, ChunkMetadataValue] | None) -> Filter | None:
    if not where:
        return None
    filters = [ComparisonFilter(type="eq", key=k, value=v) for k, v in where.items()]
    return filters[0] if len(filters) == 1 else CompoundFilter(type="and", filters=filters)


def _coerce_filter(filters: Any) -> Filter | None:
    if filters is None or isinstance(filters, (ComparisonFilter, CompoundFilter)):
        return filters
    if isinstance(filters, BaseModel):
        filters = filters.model_dump(exclude_none=True)
    if isinstance(filters, dict):
        if not filters:
            return None
        try:
            return parse_filter(filters)
        except ValidationError as e:
            raise BadRequestError(f"invalid filters: {e.errors()[0].get('msg', e)}", param="filters") from None
    raise BadRequestError(f"filters must be an OpenAI comparison or compound filter, got {type(filters).__name__}")


def _order_key(chunk: StoredChunk) -> tuple:
    page = chunk.metadata.get("page")
    index = chunk.metadata.get("chunk_index")
    page = page if _is_number(page) else None
    index = index if _is_number(index) else None
    return (page is None, page or 0, index is None, index or 0)


def _clean_metadata(chunk_id: str, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """Chroma-safe metadata: ``None`` values dropped; anything else non-scalar is a 400."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if not isinstance(key, str) or not key or key.startswith(_RESERVED_KEY_PREFIXES):
            raise BadRequestError(
                f"chunk '{chunk_id}': metadata key {key!r} is not allowed "
                f"(keys must be non-empty and not start with {', '.join(_RESERVED_KEY_PREFIXES)})"
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


def _check_embedding(store_id: str, what: str, embedding: Any, dimension: int | None) -> list[float]:
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


def _space_of(collection: Any) -> str | None:
    # configuration_json, not .configuration: the latter warns about the (deliberately absent) embedding function
    conf = getattr(collection, "configuration_json", None) or {}
    for index in ("hnsw", "spann"):
        section = conf.get(index) if isinstance(conf, dict) else None
        if isinstance(section, dict) and section.get("space"):
            return str(section["space"])
    md = collection.metadata or {}
    return md.get("hnsw:space")


def _dimension_of(collection: Any) -> int | None:
    dim = (collection.metadata or {}).get(DIMENSION_KEY)
    return int(dim) if _is_number(dim) else None


# ----- the provider ----------------------------------------------------------------------------


class ChromaVectorIOProvider(VectorIOProvider):
    """Vector stores as Chroma collections, embedded or on a Chroma server."""

    config: ChromaInlineConfig | ChromaRemoteConfig

    def __init__(self, config: BaseModel, deps: dict | None = None) -> None:
        if not isinstance(config, (ChromaInlineConfig, ChromaRemoteConfig)):
            raise ConfigError(
                f"ChromaVectorIOProvider needs ChromaInlineConfig or ChromaRemoteConfig, got {type(config).__name__}"
            )
        super().__init__(config, deps)
        self._client: ClientAPI | None = None
        self._client_lock = threading.Lock()  # guards creating/closing the client
        # the embedded client shares one SQLite database per path: serialise every call
        self._op_lock: threading.RLock | None = threading.RLock() if self.is_inline else None
        self._collections: dict[str, tuple[Collection, int | None]] = {}
        self._cache_lock = threading.Lock()
        self._max_batch: int | None = None
        self._db_path: Path | None = None

    # ----- identity ------------------------------------------------------------------------------

    @property
    def is_inline(self) -> bool:
        return isinstance(self.config, ChromaInlineConfig)

    @property
    def db_path(self) -> Path:
        """Where the embedded database lives (inline only)."""
        if self._db_path is None:
            assert isinstance(self.config, ChromaInlineConfig)
            if self.config.db_path:
                self._db_path = Path(self.config.db_path).expanduser()
            elif self.context is not None:
                self._db_path = Path(self.context.state_dir) / "chroma"
            else:
                raise ConfigError(
                    "inline::chromadb: config.db_path is not set and the provider has no state_dir; "
                    "set db_path in the distribution file"
                )
        return self._db_path

    @property
    def location(self) -> str:
        """Human-readable: the server URL or the database path."""
        if isinstance(self.config, ChromaRemoteConfig):
            return self.config.url
        try:
            return str(self.db_path)
        except ConfigError:
            return "(no db_path)"

    def _unavailable(self, detail: str) -> ServiceUnavailableError:
        if isinstance(self.config, ChromaRemoteConfig):
            return ServiceUnavailableError(
                f"Chroma server at {self.config.url} is unavailable ({detail}). "
                f"Is `chroma run` running there? Check CHROMA_URL / the provider's config.url.",
                code="vector_io_unavailable",
            )
        return ServiceUnavailableError(
            f"embedded Chroma database at {self.location} cannot be used ({detail}). "
            "Check that the directory is writable and not opened by another process with other settings.",
            code="vector_io_unavailable",
        )

    # ----- lifecycle -----------------------------------------------------------------------------

    async def initialize(self) -> None:
        if self.is_inline:
            _ = self.db_path  # resolve now: a missing path is a configuration error
        try:
            await asyncio.to_thread(self._ensure_client)
        except VistackError as e:
            log.warning("vector_io chromadb (%s): %s", self.location, e.message)

    async def shutdown(self) -> None:
        await asyncio.to_thread(self._close_client)

    async def health(self) -> HealthResponse:
        try:
            await asyncio.to_thread(self._heartbeat)
        except VistackError as e:
            return HealthResponse(status=HealthStatus.ERROR, message=e.message)
        except Exception as e:  # noqa: BLE001 - health reports, never raises
            return HealthResponse(status=HealthStatus.ERROR, message=f"Chroma at {self.location}: {e}")
        return HealthResponse(status=HealthStatus.OK)

    # ----- the client ----------------------------------------------------------------------------

    def _settings(self) -> Any:
        from chromadb.config import Settings

        kwargs: dict[str, Any] = {"anonymized_telemetry": False}
        if isinstance(self.config, ChromaRemoteConfig) and self.config.ssl:
            kwargs["chroma_server_ssl_verify"] = self.config.tls_verify
        return Settings(**kwargs)

    def _probe(self, timeout: float) -> None:
        """One GET of the server's heartbeat: a clear 503 instead of chromadb's timeout-less hang."""
        import httpx

        assert isinstance(self.config, ChromaRemoteConfig)
        url = f"{self.config.url}/api/v2/heartbeat"
        verify: Any = self.config.tls_verify
        if isinstance(verify, str):  # a CA bundle path
            import ssl

            try:
                verify = ssl.create_default_context(cafile=verify)
            except (OSError, ssl.SSLError) as e:
                raise self._unavailable(
                    f"cannot load the CA bundle tls_verify={self.config.tls_verify!r}: {e}"
                ) from None
        try:
            resp = httpx.get(url, headers=self.config.request_headers(), timeout=timeout, verify=verify)
        except httpx.TimeoutException:
            raise self._unavailable(f"no answer within {timeout:g}s") from None
        except httpx.HTTPError as e:
            raise self._unavailable(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
        if resp.status_code in (401, 403):
            raise ServiceUnavailableError(
                f"Chroma server at {self.config.url} rejected our credentials (HTTP {resp.status_code}); "
                "check the provider's auth_token / headers.",
                code="vector_io_unavailable",
            )
        if resp.status_code >= 400:
            raise self._unavailable(f"GET /api/v2/heartbeat answered HTTP {resp.status_code}")

    def _ensure_client(self) -> ClientAPI:
        client = self._client
        if client is not None:
            return client
        with self._client_lock:
            if self._client is not None:
                return self._client
            self._client = self._open_client()
            return self._client

    def _open_client(self) -> ClientAPI:
        try:
            import chromadb
        except ImportError as e:
            raise ServiceUnavailableError(
                f"the chromadb package is not importable ({e}); install it: pip install chromadb"
            ) from None
        config = self.config
        if isinstance(config, ChromaInlineConfig):
            path = self.db_path
            try:
                path.mkdir(parents=True, exist_ok=True)
                return chromadb.PersistentClient(path=str(path), settings=self._settings())
            except Exception as e:  # noqa: BLE001 - any failure to open is "unavailable"
                raise self._unavailable(f"{type(e).__name__}: {e}") from None
        self._probe(min(config.timeout_s, _PROBE_TIMEOUT_S))
        try:
            client = chromadb.HttpClient(
                host=config.url,  # a full URL keeps any path prefix (reverse proxies)
                port=config.port,
                ssl=config.ssl,
                headers=config.request_headers() or None,
                settings=self._settings(),
                tenant=config.tenant,
                database=config.database,
            )
        except Exception as e:  # noqa: BLE001
            raise self._unavailable(
                f"cannot open tenant '{config.tenant}' / database '{config.database}': {type(e).__name__}: {e}"
            ) from None
        self._set_timeout(client, config.timeout_s)
        return client

    @staticmethod
    def _set_timeout(client: Any, timeout_s: float) -> None:
        # chromadb's HTTP session is created with timeout=None; bound every request
        import httpx

        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, _PROBE_TIMEOUT_S))
        else:  # pragma: no cover - a chromadb layout we do not know
            log.warning("chromadb client has no httpx session to bound; requests will use chromadb's defaults")

    def _close_client(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
            with self._cache_lock:
                self._collections.clear()
            self._max_batch = None
        if client is None:
            return
        # chromadb's close() releases its Systems but never their HTTP sessions (the client's and
        # its internal admin client's): close those too, or their sockets leak
        sessions = [
            getattr(getattr(owner, "_server", None), "_session", None)
            for owner in (client, getattr(client, "_admin_client", None))
        ]
        try:
            client.close()
        except Exception as e:  # noqa: BLE001
            log.warning("closing the Chroma client (%s) failed: %s", self.location, e)
        for session in sessions:
            close = getattr(session, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception as e:  # noqa: BLE001
                log.warning("closing the Chroma HTTP session (%s) failed: %s", self.location, e)

    def _heartbeat(self) -> None:
        if isinstance(self.config, ChromaRemoteConfig):
            self._probe(min(self.config.timeout_s, _PROBE_TIMEOUT_S))
        self._sync("heartbeat", None, lambda client: client.heartbeat())

    # ----- running calls -------------------------------------------------------------------------

    def _sync(self, op: str, store_id: str | None, fn: Callable[[ClientAPI], T]) -> T:
        """Run ``fn(client)`` (in a worker thread) and turn chromadb's errors into vistack's."""
        import chromadb.errors as ce
        import httpx

        try:
            client = self._ensure_client()
            if self._op_lock is None:
                return fn(client)
            with self._op_lock:
                return fn(client)
        except VistackError:
            raise
        except ce.NotFoundError as e:
            raise self._not_found(store_id, str(e)) from None
        except (httpx.TimeoutException, httpx.TransportError, ConnectionError) as e:
            raise self._unavailable(
                f"{op}: {type(e).__name__}: {e}" if str(e) else f"{op}: {type(e).__name__}"
            ) from None
        except (ce.ChromaAuthError, ce.AuthorizationError) as e:
            raise ServiceUnavailableError(
                f"Chroma at {self.location} refused {op} ({e}); check the provider's auth_token / headers.",
                code="vector_io_unavailable",
            ) from None
        except (ce.InvalidArgumentError, ce.DuplicateIDError, ce.InvalidDimensionException, ValueError) as e:
            raise BadRequestError(f"Chroma rejected {op} on vector store '{store_id}': {e}") from None
        except Exception as e:
            log.exception("Chroma %s failed (%s)", op, self.location)
            raise VistackError(f"Chroma {op} failed at {self.location}: {type(e).__name__}: {e}") from None

    async def _run(self, op: str, store_id: str | None, fn: Callable[[ClientAPI], T]) -> T:
        return await asyncio.to_thread(self._sync, op, store_id, fn)

    def _not_found(self, store_id: str | None, detail: str = "") -> NotFoundError:
        name = collection_name(store_id) if store_id else "?"
        return NotFoundError(
            f"vector store '{store_id}' not found in Chroma at {self.location} (collection '{name}')",
            code="vector_store_not_found",
        )

    def _collection(self, client: ClientAPI, store_id: str) -> tuple[Collection, int | None]:
        name = collection_name(store_id)
        with self._cache_lock:
            hit = self._collections.get(name)
        if hit is not None:
            return hit
        import chromadb.errors as ce

        try:
            col = client.get_collection(name, embedding_function=None)
        except ce.NotFoundError:
            raise self._not_found(store_id) from None
        except ValueError as e:  # older chromadb says "does not exist" with a ValueError
            if "does not exist" in str(e):
                raise self._not_found(store_id) from None
            raise
        entry = (col, _dimension_of(col))
        with self._cache_lock:
            self._collections[name] = entry
        return entry

    def _forget(self, store_id: str) -> None:
        with self._cache_lock:
            self._collections.pop(collection_name(store_id), None)

    def _on_collection(self, op: str, store_id: str, fn: Callable[[Collection, int | None], T]) -> T:
        """``fn(collection, dimension)``; a stale cached collection (deleted elsewhere) is looked up again."""
        import chromadb.errors as ce

        def call(client: ClientAPI) -> T:
            for attempt in (0, 1):
                col, dim = self._collection(client, store_id)
                try:
                    return fn(col, dim)
                except ce.NotFoundError:
                    self._forget(store_id)
                    if attempt:
                        raise self._not_found(store_id) from None
            raise AssertionError("unreachable")

        return self._sync(op, store_id, call)

    def _batch(self, client: ClientAPI) -> int:
        if self._max_batch is None:
            try:
                self._max_batch = max(1, int(client.get_max_batch_size()))
            except Exception:  # noqa: BLE001 - an old server without the endpoint
                self._max_batch = 1000
        return max(1, min(self.config.batch_size, self._max_batch))

    # ----- collections ---------------------------------------------------------------------------

    async def create_collection(self, store_id: str, dimension: int) -> None:
        if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension <= 0:
            raise BadRequestError(f"vector store '{store_id}': dimension must be a positive integer, got {dimension!r}")
        name = collection_name(store_id)

        def create(client: ClientAPI) -> None:
            col = client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": self.config.hnsw_space}},
                metadata={DIMENSION_KEY: dimension, STORE_ID_KEY: store_id},
            )
            existing = _dimension_of(col)
            if existing is not None and existing != dimension:
                raise BadRequestError(
                    f"vector store '{store_id}' already exists with dimension {existing}, not {dimension}",
                    code="dimension_mismatch",
                )
            space = _space_of(col)
            if space not in (None, "cosine"):
                raise BadRequestError(
                    f"Chroma collection '{name}' already exists with distance '{space}'; vistack needs cosine. "
                    "Use another vector store id (nothing was changed)."
                )
            with self._cache_lock:
                self._collections[name] = (col, existing if existing is not None else dimension)

        await self._run("create_collection", store_id, create)

    async def delete_collection(self, store_id: str) -> None:
        import chromadb.errors as ce

        name = collection_name(store_id)

        def delete(client: ClientAPI) -> None:
            self._forget(store_id)
            try:
                client.delete_collection(name)
            except ce.NotFoundError:
                pass
            except ValueError as e:  # older chromadb
                if "does not exist" not in str(e):
                    raise

        await self._run("delete_collection", store_id, delete)

    # ----- chunks --------------------------------------------------------------------------------

    async def add_chunks(self, store_id: str, chunks: list[StoredChunk]) -> None:
        if not chunks:
            return
        # upsert semantics inside one call too: the last chunk with an id wins
        latest: dict[str, StoredChunk] = {}
        for chunk in chunks:
            latest.pop(chunk.id, None)
            latest[chunk.id] = chunk
        items = list(latest.values())
        for chunk in items:
            if not chunk.id:
                raise BadRequestError(f"vector store '{store_id}': every chunk needs a non-empty id")
        metadatas = [_clean_metadata(c.id, dict(c.metadata)) for c in items]

        def add(col: Collection, dim: int | None) -> None:
            vectors = [_check_embedding(store_id, f"chunk '{c.id}'", c.embedding, dim) for c in items]
            size = self._batch(self._ensure_client())
            for start in range(0, len(items), size):
                part = slice(start, start + size)
                ids = [c.id for c in items[part]]
                col.upsert(
                    ids=ids,
                    embeddings=vectors[part],
                    documents=[c.text for c in items[part]],
                    metadatas=_replacing(col, ids, metadatas[part]),
                )

        await self._on_collection_async("add_chunks", store_id, add)

    async def delete_chunks(self, store_id: str, where: dict[str, ChunkMetadataValue]) -> None:
        if not where:
            raise BadRequestError(
                f"delete_chunks on vector store '{store_id}' needs a non-empty `where`; "
                "use delete_collection to drop the whole store"
            )
        flt = _where_from_equalities(where)
        chroma_where, _ = translate_filter(flt)
        if chroma_where is NOTHING:
            return

        def delete(col: Collection, dim: int | None) -> None:
            size = self._batch(self._ensure_client())
            ids: list[str] = []
            offset = 0
            while True:  # collect first, then delete: paging must not shift under our feet
                page = col.get(where=chroma_where, include=["metadatas"], limit=size, offset=offset)
                got = page["ids"]
                for cid, md in zip(got, page["metadatas"] or [None] * len(got), strict=False):
                    if matches(flt, md or {}):
                        ids.append(cid)
                if len(got) < size:
                    break
                offset += size
            for start in range(0, len(ids), size):
                col.delete(ids=ids[start : start + size])

        try:
            await self._on_collection_async("delete_chunks", store_id, delete)
        except NotFoundError:
            return  # nothing to delete in a store that does not exist

    async def get_chunks(
        self, store_id: str, where: dict[str, ChunkMetadataValue], include_embeddings: bool = False
    ) -> list[StoredChunk]:
        flt = _where_from_equalities(where)
        chroma_where, _ = translate_filter(flt)
        include = ["documents", "metadatas"] + (["embeddings"] if include_embeddings else [])

        def get(col: Collection, dim: int | None) -> list[StoredChunk]:
            if chroma_where is NOTHING:
                return []
            size = self._batch(self._ensure_client())
            out: list[StoredChunk] = []
            offset = 0
            while True:
                page = col.get(where=chroma_where, include=include, limit=size, offset=offset)
                out.extend(c for c in _rows(page, include_embeddings) if matches(flt, c.metadata))
                if len(page["ids"]) < size:
                    break
                offset += size
            return out

        chunks = await self._on_collection_async("get_chunks", store_id, get)
        chunks.sort(key=_order_key)
        return chunks

    async def query(
        self, store_id: str, embedding: list[float], k: int, filters: Any | None = None
    ) -> list[ScoredChunk]:
        flt = _coerce_filter(filters)
        chroma_where, exact = translate_filter(flt)

        def run(col: Collection, dim: int | None) -> list[ScoredChunk]:
            vec = _check_embedding(store_id, "the query", embedding, dim)
            if k <= 0 or chroma_where is NOTHING:
                return []
            total: int | None = None
            n = k if exact else k * _OVERFETCH
            while True:
                res = col.query(
                    query_embeddings=[vec],
                    n_results=n,
                    where=chroma_where,
                    include=["documents", "metadatas", "distances"],
                )
                ids = (res.get("ids") or [[]])[0]
                docs = (res.get("documents") or [[None] * len(ids)])[0]
                mds = (res.get("metadatas") or [[None] * len(ids)])[0]
                dists = (res.get("distances") or [[None] * len(ids)])[0]
                hits = []
                for cid, doc, md, dist in zip(ids, docs, mds, dists, strict=False):
                    md = dict(md or {})
                    if not matches(flt, md):
                        continue
                    score = 1.0 - float(dist) if dist is not None else 0.0
                    hits.append(ScoredChunk(chunk=StoredChunk(id=cid, text=doc or "", metadata=md), score=score))
                if len(hits) >= k or len(ids) < n:
                    return hits[:k]
                if total is None:
                    total = col.count()
                if n >= total:
                    return hits[:k]
                n = min(n * _OVERFETCH, total)

        return await self._on_collection_async("query", store_id, run)

    async def count(self, store_id: str) -> int:
        return await self._on_collection_async("count", store_id, lambda col, dim: int(col.count()))

    async def _on_collection_async(self, op: str, store_id: str, fn: Callable[[Collection, int | None], T]) -> T:
        return await asyncio.to_thread(self._on_collection, op, store_id, fn)


def _replacing(col: Any, ids: list[str], metadatas: list[dict[str, Any] | None]) -> list[dict[str, Any] | None] | None:
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


def _rows(page: dict[str, Any], with_embeddings: bool) -> list[StoredChunk]:
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
