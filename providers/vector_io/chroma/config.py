"""The two config blocks of the Chroma provider: embedded (inline) and server (remote).

One adapter serves both; the config's type picks the client. The remote
config validates its URL up front, so a typo is a startup error naming the
key rather than a connection failure on the first request.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["ChromaConfig", "ChromaInlineConfig", "ChromaRemoteConfig"]


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


ChromaConfig = ChromaInlineConfig | ChromaRemoteConfig
