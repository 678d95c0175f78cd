"""One adapter for every OpenAI-compatible engine: vLLM, Ollama, OpenAI, SGLang, TGI, NIM.

These engines already speak our wire format, so the adapter is a thin
pass-through over the official ``openai`` client: requests go out as
``model_dump(exclude_none=True)`` (engine-specific knobs such as vLLM's
``top_k`` or ``guided_json`` ride along as ``extra_body``), answers come back
validated into vistack's models, and every failure becomes a named vistack
error that says which engine URL was involved and what to do about it.
Engines differ only in their config class (default URL, provider-data key).
"""

from __future__ import annotations

import inspect
import logging
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import openai
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from vistack.api import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    HealthResponse,
    HealthStatus,
    InferenceProvider,
    Model,
    ModelType,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    VistackError,
)
from vistack.api.inference import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from vistack.context import PROVIDER_DATA_HEADER, provider_data

log = logging.getLogger(__name__)

_NO_KEY = "no-key-required"  # the SDK insists on a key; keyless engines ignore it
_CLIENT_CACHE_SIZE = 32
_PROBE_TIMEOUT_S = 10.0  # discovery, registration and health must not hang startup

T = TypeVar("T", bound=BaseModel)


# ----- configs ---------------------------------------------------------------------------------


class OpenAICompatConfig(BaseModel):
    """Settings shared by every OpenAI-compatible engine; subclasses set defaults and names."""

    model_config = ConfigDict(extra="forbid")

    engine_name: ClassVar[str] = "OpenAI-compatible engine"
    url_env: ClassVar[str] = "OPENAI_BASE_URL"
    provider_data_api_key: ClassVar[str] = "openai_api_key"
    provider_data_api_key_aliases: ClassVar[tuple[str, ...]] = ()  # Llama Stack's older names

    # ``base_url`` / ``api_token`` are Llama Stack's names: its run.yaml blocks load unchanged
    url: str = Field(
        validation_alias=AliasChoices("url", "base_url"),
        description="Base URL of the engine's OpenAI API, e.g. http://host:8000/v1",
    )
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("api_key", "api_token"),
        description="Bearer key; per request, provider data wins",
    )
    timeout: float = Field(default=300.0, gt=0, description="Seconds per engine request")
    max_retries: int = Field(default=2, ge=0, description="SDK retries on connection errors, 408/409/429/5xx")
    tls_verify: bool | str = Field(default=True, description="Verify TLS, or a CA bundle path")
    refresh_models: bool = Field(default=False, description="Discover the engine's models via GET /models")
    allowed_models: list[str] | None = Field(default=None, description="Engine model ids this provider may serve")
    extra_headers: dict[str, str] = Field(default_factory=dict, description="Sent with every engine request")

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v:
            raise ValueError(f"url is required: set it in the distribution file or via {cls.url_env}")
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"url must look like http://host:port/v1, got {v!r}")
        return cls._normalise_path(v, parts.path)

    @classmethod
    def _normalise_path(cls, url: str, path: str) -> str:
        return url


class VLLMInferenceConfig(OpenAICompatConfig):
    """vLLM's ``vllm serve`` API; a bare ``http://host:8000`` gets ``/v1`` appended."""

    engine_name: ClassVar[str] = "vLLM"
    url_env: ClassVar[str] = "VLLM_URL"
    provider_data_api_key: ClassVar[str] = "vllm_api_key"
    provider_data_api_key_aliases: ClassVar[tuple[str, ...]] = ("vllm_api_token",)

    @classmethod
    def _normalise_path(cls, url: str, path: str) -> str:
        return url + "/v1" if path in ("", "/") else url


class OllamaInferenceConfig(OpenAICompatConfig):
    """Ollama's OpenAI endpoint; Ollama's usual base URL (no ``/v1``) is accepted too."""

    engine_name: ClassVar[str] = "Ollama"
    url_env: ClassVar[str] = "OLLAMA_URL"
    provider_data_api_key: ClassVar[str] = "ollama_api_key"

    url: str = Field(default="http://localhost:11434/v1", validation_alias=AliasChoices("url", "base_url"))

    @classmethod
    def _normalise_path(cls, url: str, path: str) -> str:
        return url if path.endswith("/v1") else url + "/v1"


class OpenAIInferenceConfig(OpenAICompatConfig):
    """OpenAI itself, or any engine with an OpenAI-compatible API (SGLang, TGI, NIM, llama.cpp)."""

    url: str = Field(default="https://api.openai.com/v1", validation_alias=AliasChoices("url", "base_url"))


# ----- provider --------------------------------------------------------------------------------


class OpenAICompatInferenceProvider(InferenceProvider):
    """Pass-through inference against a remote OpenAI-compatible engine."""

    config: OpenAICompatConfig

    def __init__(self, config: OpenAICompatConfig, deps: dict | None = None) -> None:
        super().__init__(config, deps)
        self._http: Any = None  # the SDK's httpx client, shared by every per-key AsyncOpenAI
        self._clients: OrderedDict[str, openai.AsyncOpenAI] = OrderedDict()

    # --- clients

    @property
    def _engine(self) -> str:
        return f"{self.config.engine_name} at {self.config.url}"

    def _verify(self) -> ssl.SSLContext | bool:
        v = self.config.tls_verify
        return ssl.create_default_context(cafile=v) if isinstance(v, str) else v

    def _client(self) -> openai.AsyncOpenAI:
        """The client for this request: the caller's provider-data key, else the configured one."""
        data = provider_data()
        key_name = next(
            (k for k in (self.config.provider_data_api_key, *self.config.provider_data_api_key_aliases) if k in data),
            self.config.provider_data_api_key,
        )
        key = data.get(key_name)
        if key is not None and (not isinstance(key, str) or not key):
            raise BadRequestError(f"{PROVIDER_DATA_HEADER} key '{key_name}' must be a non-empty string")
        if key is None:
            key = self.config.api_key.get_secret_value() if self.config.api_key else ""
        key = key or _NO_KEY
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        if self._http is None:
            try:
                self._http = openai.DefaultAsyncHttpxClient(verify=self._verify())
            except OSError as e:
                raise ServiceUnavailableError(f"cannot load tls_verify CA bundle for {self._engine}: {e}") from e
        client = openai.AsyncOpenAI(
            api_key=key,
            base_url=self.config.url,
            timeout=self.config.timeout,
            max_retries=self.config.max_retries,
            default_headers=self.config.extra_headers or None,
            http_client=self._http,
        )
        self._clients[key] = client
        if len(self._clients) > _CLIENT_CACHE_SIZE:  # clients share self._http: dropping one frees nothing to close
            self._clients.popitem(last=False)
        return client

    def _probe_client(self) -> openai.AsyncOpenAI:
        return self._client().with_options(timeout=min(self.config.timeout, _PROBE_TIMEOUT_S), max_retries=0)

    async def shutdown(self) -> None:
        self._clients.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- models

    async def _engine_model_ids(self) -> list[str]:
        try:
            return [m.id async for m in self._probe_client().models.list()]
        except openai.OpenAIError as e:
            raise self._map_error(e) from e

    def _check_allowed(self, model_id: str) -> None:
        allowed = self.config.allowed_models
        if allowed is not None and model_id not in allowed:
            raise NotFoundError(
                f"model '{model_id}' is not in allowed_models of provider '{self.provider_id}' "
                f"(allowed: {', '.join(allowed) or 'none'})",
                code="model_not_found",
                param="model",
            )

    async def list_models(self) -> list[Model] | None:
        if not self.config.refresh_models:
            return None
        allowed = self.config.allowed_models
        return [
            Model(
                identifier=f"{self.provider_id}/{mid}",
                provider_resource_id=mid,
                provider_id=self.provider_id,
                model_type=ModelType.llm,
            )
            for mid in await self._engine_model_ids()
            if allowed is None or mid in allowed
        ]

    async def register_model(self, model: Model) -> Model:
        """Reject a model the engine plainly does not serve; if it cannot tell us, defer to runtime."""
        self._check_allowed(model.provider_resource_id)
        try:
            served = await self._engine_model_ids()
        except (ServiceUnavailableError, AuthenticationError, PermissionDeniedError, NotFoundError) as e:
            log.warning("not validating model %s against %s: %s", model.provider_resource_id, self._engine, e)
            return model
        if model.provider_resource_id not in served:
            raise NotFoundError(
                f"{self._engine} does not serve model '{model.provider_resource_id}'; "
                f"it serves: {', '.join(served) or 'nothing'}. Set provider_model_id to one of these.",
                code="model_not_found",
                param="provider_model_id",
            )
        return model

    async def health(self) -> HealthResponse:
        try:
            await self._engine_model_ids()
        except VistackError as e:
            return HealthResponse(status=HealthStatus.ERROR, message=e.message)
        return HealthResponse(status=HealthStatus.OK)

    # --- inference

    async def chat_completion(
        self, request: ChatCompletionRequest
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        client = self._client()
        return await self._call(client.chat.completions.create, request, ChatCompletion, ChatCompletionChunk)

    async def completion(self, request: CompletionRequest) -> Completion | AsyncIterator[Completion]:
        client = self._client()
        return await self._call(client.completions.create, request, Completion, Completion)

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        client = self._client()
        # float always: the server encodes base64 itself, and the SDK would otherwise ask for base64
        params = request.model_copy(update={"encoding_format": "float"})
        result = await self._call(client.embeddings.create, params, EmbeddingsResponse, EmbeddingsResponse)
        assert isinstance(result, EmbeddingsResponse)
        return result

    async def _call(
        self, create: Callable[..., Any], request: BaseModel, result_type: type[T], chunk_type: type[BaseModel]
    ) -> Any:
        body = request.model_dump(exclude_none=True)
        self._check_allowed(body["model"])
        known = _param_names(create)
        kwargs = {k: v for k, v in body.items() if k in known}
        extra = {k: v for k, v in body.items() if k not in known}
        if extra:
            kwargs["extra_body"] = extra
        try:
            response = await create(**kwargs)
        except openai.OpenAIError as e:
            raise self._map_error(e) from e
        if body.get("stream"):
            return self._relay(response, chunk_type)
        return self._validate(response, result_type)

    async def _relay(self, stream: Any, chunk_type: type[T]) -> AsyncIterator[T]:
        """Engine chunks as ours; errors mid-stream become vistack errors; the engine stream is always closed."""
        try:
            async for chunk in stream:
                yield self._validate(chunk, chunk_type)
        except openai.OpenAIError as e:
            raise self._map_error(e) from e
        finally:
            await stream.close()

    def _validate(self, obj: Any, model_type: type[T]) -> T:
        data = obj.model_dump(exclude_unset=True) if isinstance(obj, BaseModel) else obj  # exclude_unset keeps extras
        try:
            return model_type.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "top level"
            raise ServiceUnavailableError(
                f"{self._engine} returned a response vistack cannot read as {model_type.__name__} "
                f"({e.error_count()} problem(s); first at {where}: {first['msg']}); is the url an OpenAI-compatible API?"
            ) from e

    # --- errors

    def _map_error(self, e: openai.OpenAIError) -> VistackError:
        """An SDK error as the vistack error a client should see, naming the engine and the fix."""
        cfg = self.config
        if isinstance(e, openai.APITimeoutError):
            return ServiceUnavailableError(
                f"{self._engine} did not answer within {cfg.timeout:g}s; is it overloaded? raise 'timeout' in the config"
            )
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e
            return ServiceUnavailableError(
                f"cannot reach {cfg.engine_name} at {cfg.url}: {cause}; is the engine running? "
                f"set {cfg.url_env} (or the provider's 'url') to its OpenAI API base URL"
            )
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            detail = f"{self._engine} answered {status}: {_engine_message(e)}"
            key_hint = (
                f"; set 'api_key' in the provider config or send {PROVIDER_DATA_HEADER}: "
                f'{{"{cfg.provider_data_api_key}": "<key>"}}'
            )
            if status == 401:
                return AuthenticationError(detail + key_hint)
            if status == 403:
                return PermissionDeniedError(detail + key_hint)
            mapped: dict[int, type[VistackError]] = {
                400: BadRequestError,
                404: NotFoundError,
                409: ConflictError,
                413: PayloadTooLargeError,
                422: UnprocessableEntityError,
            }
            if status in mapped:
                return mapped[status](detail)
            if status == 429:
                return ServiceUnavailableError(detail + " (rate limited; retry later)")
            if status >= 500:
                return ServiceUnavailableError(detail)
            return BadRequestError(detail)
        return ServiceUnavailableError(f"{self._engine} failed: {e}")


def _engine_message(e: openai.APIStatusError) -> str:
    """The human part of an engine's error body, whichever of the common shapes it uses."""
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if err.get(key):
                    return str(err[key])
        elif err:
            return str(err)
    text = e.response.text.strip() if e.response is not None else ""
    return text[:500] or e.message


_PARAMS: dict[Any, frozenset[str]] = {}


def _param_names(create: Callable[..., Any]) -> frozenset[str]:
    """Keyword names the SDK method declares; everything else goes out as ``extra_body``."""
    key = getattr(create, "__func__", create)
    if key not in _PARAMS:
        params = inspect.signature(create).parameters
        _PARAMS[key] = frozenset(
            n for n in params if n not in ("extra_body", "extra_headers", "extra_query", "timeout")
        )
    return _PARAMS[key]
