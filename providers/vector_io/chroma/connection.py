"""The chromadb client behind one provider: opened lazily, probed, closed, every call's errors mapped.

chromadb is synchronous, waits forever on a dead server unless told
otherwise, and raises its own exception types. This is the one place that
knows: every call goes through :meth:`ChromaConnection.call`, which maps a
down or unreachable backend to a 503 naming the URL or path and the fix, an
unknown collection to a 404 and a rejected argument to a 400. The embedded
client shares one SQLite database per path, so its calls are serialised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vistack.api import BadRequestError, ConfigError, NotFoundError, ServiceUnavailableError, VistackError

from .collection import collection_name
from .config import ChromaConfig, ChromaInlineConfig, ChromaRemoteConfig

if TYPE_CHECKING:  # pragma: no cover
    from chromadb.api import ClientAPI

__all__ = ["PROBE_TIMEOUT_S", "ChromaConnection"]

log = logging.getLogger(__name__)

T = TypeVar("T")

PROBE_TIMEOUT_S = 5.0  # health checks and the first connection must not hang startup


class ChromaConnection:
    """One chromadb client (embedded ``PersistentClient`` or ``HttpClient``), picked by the config's type.

    ``db_path`` is asked for lazily (the provider learns its state dir after
    construction); ``on_close`` runs under the client lock when the client
    goes, so caches of its objects go with it.
    """

    def __init__(
        self, config: ChromaConfig, db_path: Callable[[], Path], on_close: Callable[[], None] | None = None
    ) -> None:
        self.config = config
        self._db_path = db_path
        self._on_close = on_close
        self._client: ClientAPI | None = None
        self._client_lock = threading.Lock()  # guards creating/closing the client
        # the embedded client shares one SQLite database per path: serialise every call
        self._op_lock: threading.RLock | None = threading.RLock() if self.is_inline else None

    @property
    def is_inline(self) -> bool:
        return isinstance(self.config, ChromaInlineConfig)

    @property
    def location(self) -> str:
        """Human-readable: the server URL or the database path."""
        if isinstance(self.config, ChromaRemoteConfig):
            return self.config.url
        try:
            return str(self._db_path())
        except ConfigError:
            return "(no db_path)"

    def unavailable(self, detail: str) -> ServiceUnavailableError:
        """The 503 for a backend that cannot be reached or opened, naming where and the fix."""
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

    def not_found(self, store_id: str | None, detail: str = "") -> NotFoundError:
        """The 404 for a store without a collection, naming both and the backend."""
        name = collection_name(store_id) if store_id else "?"
        return NotFoundError(
            f"vector store '{store_id}' not found in Chroma at {self.location} (collection '{name}')",
            code="vector_store_not_found",
        )

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
                raise self.unavailable(
                    f"cannot load the CA bundle tls_verify={self.config.tls_verify!r}: {e}"
                ) from None
        try:
            resp = httpx.get(url, headers=self.config.request_headers(), timeout=timeout, verify=verify)
        except httpx.TimeoutException:
            raise self.unavailable(f"no answer within {timeout:g}s") from None
        except httpx.HTTPError as e:
            raise self.unavailable(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
        if resp.status_code in (401, 403):
            raise ServiceUnavailableError(
                f"Chroma server at {self.config.url} rejected our credentials (HTTP {resp.status_code}); "
                "check the provider's auth_token / headers.",
                code="vector_io_unavailable",
            )
        if resp.status_code >= 400:
            raise self.unavailable(f"GET /api/v2/heartbeat answered HTTP {resp.status_code}")

    def client(self) -> ClientAPI:
        """The client, opened on first use (a 503 naming the fix when it cannot be)."""
        client = self._client
        if client is not None:
            return client
        with self._client_lock:
            if self._client is not None:
                return self._client
            self._client = self._open()
            return self._client

    def _open(self) -> ClientAPI:
        try:
            import chromadb
        except ImportError as e:
            raise ServiceUnavailableError(
                f"the chromadb package is not importable ({e}); install it: pip install chromadb"
            ) from None
        config = self.config
        if isinstance(config, ChromaInlineConfig):
            path = self._db_path()
            try:
                path.mkdir(parents=True, exist_ok=True)
                return chromadb.PersistentClient(path=str(path), settings=self._settings())
            except Exception as e:  # noqa: BLE001 - any failure to open is "unavailable"
                raise self.unavailable(f"{type(e).__name__}: {e}") from None
        self._probe(min(config.timeout_s, PROBE_TIMEOUT_S))
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
            raise self.unavailable(
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
            session.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, PROBE_TIMEOUT_S))
        else:  # pragma: no cover - a chromadb layout we do not know
            log.warning("chromadb client has no httpx session to bound; requests will use chromadb's defaults")

    def close(self) -> None:
        """Close the client and its HTTP sessions; the next call opens a new one."""
        with self._client_lock:
            client, self._client = self._client, None
            if self._on_close is not None:
                self._on_close()
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

    def heartbeat(self) -> None:
        """Reach the backend now (probing a server first, with a short timeout); raises like any call."""
        if isinstance(self.config, ChromaRemoteConfig):
            self._probe(min(self.config.timeout_s, PROBE_TIMEOUT_S))
        self.call("heartbeat", None, lambda client: client.heartbeat())

    def call(self, op: str, store_id: str | None, fn: Callable[[ClientAPI], T]) -> T:
        """Run ``fn(client)`` (from a worker thread) and turn chromadb's errors into vistack's."""
        import chromadb.errors as ce
        import httpx

        try:
            client = self.client()
            if self._op_lock is None:
                return fn(client)
            with self._op_lock:
                return fn(client)
        except VistackError:
            raise
        except ce.NotFoundError as e:
            raise self.not_found(store_id, str(e)) from None
        except (httpx.TimeoutException, httpx.TransportError, ConnectionError) as e:
            raise self.unavailable(
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
