"""Distribution YAML: loading, env substitution and validation.

The format follows Llama Stack's ``run.yaml`` (``version``, ``distro_name``,
``apis``, ``providers`` per API, ``models``, ``shields``, ``storage``,
``server``). Every error names the file, the key path and what was expected,
because a distribution is usually edited by hand on a server with no IDE.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from vistack.access import AccessRule
from vistack.api import Api, ConfigError, ModelType
from vistack.api.vector_stores import SearchMode
from vistack.envsubst import substitute

DEFAULT_DISTRIBUTION = "local"
DEFAULT_PORT = 8321


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ProviderEntry(_Strict):
    provider_id: str = Field(min_length=1)
    provider_type: str = Field(pattern=r"^(inline|remote)::[A-Za-z0-9_.\-]+$")
    config: dict[str, Any] = Field(default_factory=dict)
    module: str | None = Field(default=None, description="dotted module of an external provider")

    @field_validator("config", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class ModelEntry(_Strict):
    model_id: str = Field(min_length=1)
    provider_id: str = Field(min_length=1)
    provider_model_id: str | None = None
    model_type: ModelType = ModelType.llm
    metadata: dict[str, Any] = Field(default_factory=dict)


class ShieldEntry(_Strict):
    shield_id: str = Field(min_length=1)
    provider_id: str | None = None
    provider_shield_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class ContextualRetrievalParams(_Strict):
    """Contextual chunking defaults (Llama Stack 0.7's ``vector_stores.contextual_retrieval_params``).

    Used by ``chunking_strategy: {"type": "contextual", ...}`` for what the request leaves out.
    """

    model: str | None = Field(
        default=None,
        description="LLM that writes chunk contexts when the strategy names no model_id: a model id "
        "(provider_id/model or a short name), or Llama Stack's {provider_id, model_id}; unset: such requests get 400",
    )
    default_timeout_seconds: int = Field(default=120, ge=10, description="per context call")
    default_max_concurrency: int = Field(default=3, ge=1, description="context calls at once, per file")
    max_concurrency_limit: int = Field(
        default=16, ge=1, description="the most context calls at once per file that a request's max_concurrency "
        "may ask for (more is lowered to this): the inference engine is shared",
    )
    max_document_tokens: int = Field(
        default=100_000, ge=1000,
        description="the most of a document put in a context prompt; a longer document (or one longer than the "
        "model's context_length) is cut to its first pages plus the pages around the chunk (vistack.rag.contextual)",
    )

    @field_validator("model", mode="before")
    @classmethod
    def _qualified(cls, v: Any) -> Any:
        """Llama Stack writes ``model: {provider_id: vllm, model_id: llama}``; an empty env value means none."""
        if isinstance(v, dict) and set(v) <= {"provider_id", "model_id"} and v.get("model_id"):
            provider, model = v.get("provider_id"), str(v["model_id"])
            return f"{provider}/{model}" if provider and not model.startswith(f"{provider}/") else model
        return v or None


class VectorStoresDefaults(_Strict):
    """Defaults for vector stores and the ingestion pipeline."""

    default_provider_id: str | None = None
    default_embedding_model: str | None = None
    reranker_model: str | None = Field(default=None, description="local dir of a cross-encoder; enables reranking")
    default_search_mode: SearchMode = Field(
        default="hybrid",
        description="search_mode of a search that names none (vector store search, /v1/vector-io/query, the "
        "agents' file_search): hybrid measured best on both question sets (benchmarks/README.md)",
    )
    page_image_dpi: int = Field(default=110, ge=36, le=600)
    max_pages: int = Field(default=2000, ge=1)
    max_page_pixels: int = Field(default=12_000_000, ge=10_000)
    max_image_pixels: int = Field(default=50_000_000, ge=10_000)
    max_page_content_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024 * 1024,
        description="a PDF page whose content streams and forms expand beyond this fails the file (decompression "
        "and form-recursion bombs would otherwise hold the PDF reader for minutes)")
    ocr: bool = True
    ocr_language: str = "eng"
    embedding_batch_size: int = Field(default=32, ge=1, le=2048)
    ingestion_workers: int = Field(default=1, ge=1, le=16)
    max_retries: int = Field(default=3, ge=0, le=20)
    contextual_retrieval_params: ContextualRetrievalParams = Field(default_factory=ContextualRetrievalParams)
    attach_wait_s: float = Field(
        default=5.0, ge=0, le=600,
        description="attaching a file (and creating a store or batch with file_ids) waits up to this long for "
        "ingestion and returns the final status when it finished in time, else in_progress; 0 returns at once")


class GuardrailDefaults(_Strict):
    """Shields every Responses call runs, whatever the request says (a request's ``guardrails`` add to them)."""

    input: list[str] = Field(default_factory=list, description="shields on the user's turn, before inference")
    output: list[str] = Field(default_factory=list, description="shields on the answer, before the client sees it")
    retrieved: list[str] = Field(
        default_factory=list,
        description="shields on each retrieved page (its chunks' text, OCR included) before the model sees it; "
        "a flagged page is dropped from the answer's sources",
    )
    screen_page_images: bool = Field(
        False, description="also send each retrieved page's image to the retrieved shields (a vision guard judges it)"
    )
    stream_window_chars: int = Field(
        0,
        ge=0,
        description="streamed answers with output shields: 0 = hold the whole answer and check it once at the end "
        "(no text before the check); N = check every N new characters and release what passed (earlier first "
        "tokens, one guard call per window)",
    )

    @field_validator("input", "output", "retrieved", mode="before")
    @classmethod
    def _comma_separated(cls, v: Any) -> Any:
        """``VISTACK_INPUT_SHIELDS=llama-guard,prompt-guard`` in a packaged distribution; empty means none."""
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return [] if v is None else v


class InferenceStoreSettings(_Strict):
    enabled: bool = Field(True, description="keep chat completions with their input messages (GET /v1/chat/"
                                            "completions); a request's store: false skips one")


class SafetySettings(_Strict):
    default_shield_id: str | None = Field(
        None, description="shield /v1/moderations uses when the request names no model; default: the first shield"
    )
    guardrails: GuardrailDefaults = Field(default_factory=GuardrailDefaults)


class StorageConfig(_Strict):
    state_dir: Path
    metadata_db: str = "metadata.sqlite3"
    files_dir: str = "files"

    @field_validator("state_dir", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        return Path(os.path.expanduser(str(v))) if v is not None else v

    @property
    def metadata_path(self) -> Path:
        return self.state_dir / self.metadata_db

    @property
    def files_path(self) -> Path:
        return self.state_dir / self.files_dir


class ApiKeyEntry(_Strict):
    """One API key and the principal it authenticates. Give the key itself (usually ``${env.NAME}``; only its
    SHA-256 is kept in memory) or its ``key_sha256`` (hex), so the distribution file need hold no secret."""

    key: SecretStr | None = None
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    principal: str = Field(min_length=1)
    tenant: str = Field(default="default", min_length=1)
    roles: list[str] = Field(default_factory=list)
    requests_per_minute: int | None = Field(default=None, ge=1, description="this key's rate limit (overrides "
                                                                              "server.limits.requests_per_minute)")

    @model_validator(mode="after")
    def _one_key(self) -> ApiKeyEntry:
        if (self.key is None or not self.key.get_secret_value()) == (self.key_sha256 is None):
            raise ValueError(f"api key of '{self.principal}': give exactly one of key or key_sha256")
        if self.tenant == "*":
            raise ValueError("tenant '*' is reserved for objects the distribution shares with everyone")
        return self


class JwtAuthConfig(_Strict):
    """OAuth2 / OIDC bearer tokens (JWTs), verified with the issuer's JWKS or a shared secret."""

    jwks_url: str | None = Field(default=None, description="the issuer's JWKS document (keys are cached)")
    secret: SecretStr | None = Field(default=None, description="shared secret for HS256/384/512 tokens")
    algorithms: list[str] | None = Field(default=None, description="default: RS256 and ES256 with jwks_url, "
                                                                     "HS256 with secret")
    issuer: str | None = None
    audience: str | list[str] | None = None
    leeway_s: float = Field(default=30.0, ge=0, le=600, description="allowed clock skew for exp / nbf / iat")
    jwks_cache_s: int = Field(default=300, ge=1, description="how long fetched signing keys are reused")
    principal_claim: str = "sub"
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    default_tenant: str = Field(default="default", description="tenant of a token without the tenant claim")
    claims_mapping: dict[str, str] = Field(
        default_factory=dict, description="further claims copied to principal attributes (claim: attribute), for "
        "access_policy conditions such as 'user with finance in teams'")

    @model_validator(mode="after")
    def _one_source(self) -> JwtAuthConfig:
        if (self.jwks_url is None) == (self.secret is None):
            raise ValueError("jwt: give exactly one of jwks_url or secret")
        return self


class AuthConfig(_Strict):
    """Who may call the server (``server.auth``). Absent: no authentication, every caller is one anonymous
    principal of the default tenant."""

    api_keys: list[ApiKeyEntry] = Field(default_factory=list)
    jwt: JwtAuthConfig | None = None
    access_policy: list[AccessRule] = Field(
        default_factory=list, description="permit/forbid rules checked before the default tenant isolation")
    open_paths: list[str] = Field(
        default_factory=lambda: ["/v1/health", "/v1/version"],
        description="paths served without credentials (exact, or a prefix ending in *)")

    @model_validator(mode="after")
    def _some_method(self) -> AuthConfig:
        if not self.api_keys and self.jwt is None:
            raise ValueError("server.auth needs api_keys or jwt (remove server.auth to run without authentication)")
        return self


class LimitsConfig(_Strict):
    """Protection against floods: per-caller rate limits and a deadline for a response to start."""

    requests_per_minute: int | None = Field(
        default=None, ge=1, description="per principal (API key / token subject / anonymous); absent: unlimited")
    burst: int | None = Field(default=None, ge=1, description="requests a quiet caller may send at once; "
                                                              "default: requests_per_minute")
    request_timeout_s: float = Field(
        default=900.0, gt=0, description="a request whose response has not started by then is cancelled with 504; "
        "a started stream runs on (its length is bounded by max_tokens)")


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    max_request_bytes: int = Field(default=100 * 1024 * 1024, ge=1024, description="cap for JSON bodies")
    max_upload_bytes: int = Field(default=513 * 1024 * 1024, ge=1024, description="cap for multipart uploads")
    auth: AuthConfig | None = None
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    keep_alive_s: float = Field(
        default=75.0, gt=0, description="idle keep-alive connections are closed after this; longer than clients' "
        "pool idle times, so a client rarely sends on a connection the server is closing (uvicorn's 5 s default "
        "made busy clients see connection resets)")
    cors_origins: list[str] = Field(default_factory=list)
    ui: bool = Field(default=True, description="serve the web app for analysts at /ui (static files; it calls /v1 "
                     "like any client, with the caller's own key)")


class StackConfig(_Strict):
    version: int | str = 2
    distro_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    apis: list[Api]
    providers: dict[Api, list[ProviderEntry]] = Field(default_factory=dict)
    models: list[ModelEntry] = Field(default_factory=list)
    shields: list[ShieldEntry] = Field(default_factory=list)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    inference_store: InferenceStoreSettings = Field(default_factory=InferenceStoreSettings)
    vector_stores: VectorStoresDefaults = Field(default_factory=VectorStoresDefaults)
    storage: StorageConfig
    server: ServerConfig = Field(default_factory=ServerConfig)
    source: str | None = Field(default=None, exclude=True, description="file this config came from")

    @model_validator(mode="after")
    def _check_references(self) -> StackConfig:
        seen: dict[str, Api] = {}
        for api, entries in self.providers.items():
            if api not in self.apis:
                raise ValueError(f"providers.{api.value}: API '{api.value}' has providers but is not listed in 'apis'")
            for i, p in enumerate(entries):
                if p.provider_id in seen:
                    raise ValueError(
                        f"providers.{api.value}[{i}].provider_id: duplicate provider_id '{p.provider_id}' "
                        f"(already used under {seen[p.provider_id].value})"
                    )
                seen[p.provider_id] = api
        for i, m in enumerate(self.models):
            if m.provider_id not in seen:
                raise ValueError(
                    f"models[{i}].provider_id: unknown provider_id '{m.provider_id}'; "
                    f"expected one of: {', '.join(sorted(seen)) or 'none'}"
                )
        shield_ids = {sh.shield_id for sh in self.shields}
        safety_ids = sorted(p.provider_id for p in self.providers.get(Api.safety, []))
        for i, sh in enumerate(self.shields):
            if sh.provider_id is None and len(safety_ids) > 1:
                raise ValueError(f"shields[{i}].provider_id: required when several safety providers exist: "
                                 f"{', '.join(safety_ids)}")
            if sh.provider_id is not None and seen.get(sh.provider_id) not in (None, Api.safety):
                raise ValueError(f"shields[{i}].provider_id: '{sh.provider_id}' is a {seen[sh.provider_id].value} "
                                 "provider; a shield needs a provider under providers.safety")
            if sh.provider_id is not None and sh.provider_id not in seen:
                safety = sorted(p.provider_id for p in self.providers.get(Api.safety, []))
                raise ValueError(f"shields[{i}].provider_id: unknown provider_id '{sh.provider_id}'; expected one "
                                 f"of: {', '.join(safety) or 'none (add a provider under providers.safety)'}")
        guardrails = self.safety.guardrails
        named = [("safety.default_shield_id", [self.safety.default_shield_id] if self.safety.default_shield_id else []),
                 ("safety.guardrails.input", guardrails.input), ("safety.guardrails.output", guardrails.output),
                 ("safety.guardrails.retrieved", guardrails.retrieved)]
        for where, ids in named:
            for sid in ids:
                if sid not in shield_ids:
                    raise ValueError(f"{where}: unknown shield '{sid}'; expected one of: "
                                     f"{', '.join(sorted(shield_ids)) or 'none (declare it under shields)'}")
        return self

    def provider_entries(self) -> list[tuple[Api, ProviderEntry]]:
        return [(api, p) for api, entries in self.providers.items() for p in entries]


def packaged_distributions() -> dict[str, Path]:
    """Names of the YAML files shipped in ``vistack.distributions``."""
    root = resources.files("vistack.distributions")
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in root.iterdir()
        if entry.name.endswith(".yaml")
    }


def resolve_distribution(name_or_path: str | os.PathLike[str] | None) -> Path:
    """A packaged name (``local``) or a path to a YAML file."""
    ref = str(name_or_path or DEFAULT_DISTRIBUTION)
    path = Path(os.path.expanduser(ref))
    if path.suffix in (".yaml", ".yml") or os.sep in ref:
        if not path.is_file():
            raise ConfigError(f"distribution file '{path}' does not exist")
        return path
    packaged = packaged_distributions()
    if ref not in packaged:
        raise ConfigError(
            f"unknown distribution '{ref}'. Packaged: {', '.join(sorted(packaged))}; or pass a path to a YAML file"
        )
    return packaged[ref]


def load_distribution(name_or_path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> StackConfig:
    path = resolve_distribution(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    return parse_distribution(raw, where=str(path), env=env)


def parse_distribution(raw: Any, *, where: str = "<distribution>", env: dict[str, str] | None = None) -> StackConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    data = substitute(raw, env, where=where)
    data = _drop_disabled(data)
    try:
        config = StackConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, where)) from None
    config.source = where
    return config


def _drop_disabled(data: dict[str, Any]) -> dict[str, Any]:
    """Entries whose id resolved empty are disabled, as in Llama Stack.

    A provider with an empty ``provider_id`` is dropped, and so is a model or
    shield whose ``provider_id`` or own id resolved empty (they are written
    with the same ``${env.X:+...}`` switch as their provider).
    """
    providers = data.get("providers")
    if isinstance(providers, dict):
        for api, entries in providers.items():
            if isinstance(entries, list):
                providers[api] = [p for p in entries if not (isinstance(p, dict) and p.get("provider_id") is None)]
    for key, id_key in (("models", "model_id"), ("shields", "shield_id")):
        items = data.get(key)
        if isinstance(items, list):
            data[key] = [
                m
                for m in items
                if not (isinstance(m, dict) and (m.get(id_key, "") is None or ("provider_id" in m and m["provider_id"] is None)))
            ]
    return data


def _describe(e: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid distribution"]
    for err in e.errors():
        loc = _format_loc(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        got_text = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
        lines.append(f"  {loc}: {msg}{got_text}")
    return "\n".join(lines)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"
