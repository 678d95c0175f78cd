"""Authentication: a bearer credential (an API key or a JWT) becomes the request's :class:`Principal`.

The official clients send their ``api_key`` as ``Authorization: Bearer <key>``.
A bearer value is first looked up as an API key (by its SHA-256; keys are
never kept in clear), then verified as a JWT (signature against the issuer's
JWKS or a shared secret, ``exp`` required, issuer, audience and clock skew
checked) whose claims give the principal, tenant, roles and attributes.
Failures are 401 with ``WWW-Authenticate`` and say what was wrong without
echoing the credential.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import logging
import time
from typing import Any

from vistack.access import SHARED_TENANT, Principal
from vistack.api import AuthenticationError
from vistack.config import AuthConfig, JwtAuthConfig
from vistack.server.webapp import is_public

log = logging.getLogger(__name__)

REALM = 'Bearer realm="vistack"'


class AuthFailure(AuthenticationError):
    """401 with the ``WWW-Authenticate`` challenge a client needs (RFC 6750)."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message, code=error or "unauthorized")
        self.challenge = REALM + (f', error="{error}"' if error else "")


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._keys: dict[str, Principal] = {}
        for entry in config.api_keys:
            digest = entry.key_sha256.lower() if entry.key_sha256 else key_digest(entry.key.get_secret_value())  # type: ignore[union-attr]
            self._keys[digest] = Principal(entry.principal, entry.tenant, tuple(entry.roles))
        self._jwt = _JwtVerifier(config.jwt) if config.jwt is not None else None

    def is_open(self, path: str) -> bool:
        if is_public(path):  # the web app's static files: no data in them; the app then asks for a key
            return True
        for pattern in self.config.open_paths:
            if pattern.endswith("*") and fnmatch.fnmatchcase(path, pattern):
                return True
            if path == pattern or path == pattern.rstrip("/"):
                return True
        return False

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthFailure("authentication required: send 'Authorization: Bearer <API key or token>'")
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthFailure("the Authorization header must be 'Bearer <API key or token>'", "invalid_request")
        digest = key_digest(credential)
        for known, principal in self._keys.items():  # constant time per key: no timing hint about prefixes
            if hmac.compare_digest(known, digest):
                return principal
        if self._jwt is not None and credential.count(".") == 2:
            return await self._jwt.verify(credential)
        raise AuthFailure("invalid API key or token", "invalid_token")


class _JwtVerifier:
    def __init__(self, config: JwtAuthConfig) -> None:
        import jwt

        self.config = config
        self._jwt = jwt
        if config.jwks_url:
            self.algorithms = config.algorithms or ["RS256", "ES256"]
            self._jwks = jwt.PyJWKClient(config.jwks_url, cache_keys=True, lifespan=config.jwks_cache_s, timeout=10)
            self._secret = None
        else:
            self.algorithms = config.algorithms or ["HS256"]
            self._jwks = None
            self._secret = config.secret.get_secret_value()  # type: ignore[union-attr]
        self._last_jwks_error = 0.0

    async def verify(self, token: str) -> Principal:
        jwt = self._jwt
        try:
            if self._jwks is not None:
                key: Any = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            else:
                key = self._secret
            claims = jwt.decode(
                token, key, algorithms=self.algorithms, audience=self.config.audience, issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options={"require": ["exp"], "verify_aud": self.config.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("the token has expired", "invalid_token") from None
        except jwt.PyJWKClientConnectionError as e:
            now = time.monotonic()
            if now - self._last_jwks_error > 60:
                self._last_jwks_error = now
                log.error("cannot fetch the JWKS from %s: %s", self.config.jwks_url, e)
            raise AuthFailure("the token cannot be verified now: the issuer's keys are unreachable",
                              "invalid_token") from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as e:
            raise AuthFailure(f"invalid token: {e}", "invalid_token") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        c = self.config
        subject = claims.get(c.principal_claim)
        if not isinstance(subject, str) or not subject:
            raise AuthFailure(f"invalid token: no '{c.principal_claim}' claim naming the principal", "invalid_token")
        tenant = claims.get(c.tenant_claim) or c.default_tenant
        if not isinstance(tenant, str) or tenant == SHARED_TENANT:
            raise AuthFailure(f"invalid token: claim '{c.tenant_claim}' must be a tenant name", "invalid_token")
        attributes = {attr: _values(claims.get(claim)) for claim, attr in c.claims_mapping.items()
                      if claims.get(claim) is not None}
        return Principal(subject, tenant, _values(claims.get(c.roles_claim)), attributes)


def _values(value: Any) -> tuple[str, ...]:
    """A claim as attribute values: a list, or a space-separated string (OAuth2 ``scope`` style)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return (str(value),)
