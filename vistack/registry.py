"""Provider specs and how they become instances.

Every provider is one declarative :class:`ProviderSpec` (API, type, module,
classes, pip packages, API dependencies), as in Llama Stack's
``providers/registry``. Modules are imported only when a distribution uses
them, so torch, transformers and chromadb never load at server import time.
External providers name a dotted module in the YAML (``module:``) that
exposes ``get_provider_spec()``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from vistack.api import Api, ConfigError, Provider


@dataclass(frozen=True)
class ProviderSpec:
    api: Api
    provider_type: str
    module: str
    provider_class: str
    config_class: str
    pip_packages: tuple[str, ...] = ()
    api_dependencies: tuple[Api, ...] = ()
    optional_api_dependencies: tuple[Api, ...] = ()
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def load_config_class(self) -> type[BaseModel]:
        return getattr(self._module(), self.config_class)

    def load_provider_class(self) -> type[Provider]:
        return getattr(self._module(), self.provider_class)

    def _module(self):
        try:
            return importlib.import_module(self.module)
        except ImportError as e:
            pkgs = " ".join(self.pip_packages) or "its dependencies"
            raise ConfigError(
                f"provider type '{self.provider_type}' needs module '{self.module}', which failed to import ({e}). "
                f"Install: pip install {pkgs}"
            ) from e


_INFERENCE = "vistack.providers.inference"

_OPENAI_COMPAT_TYPES = {
    "remote::vllm": ("VLLMInferenceConfig", "vLLM's OpenAI-compatible server"),
    "remote::ollama": ("OllamaInferenceConfig", "Ollama's OpenAI-compatible endpoint (/v1)"),
    "remote::openai": ("OpenAIInferenceConfig", "any OpenAI-compatible engine (OpenAI, SGLang, TGI, NIM, llama.cpp)"),
    "remote::sglang": ("OpenAIInferenceConfig", "SGLang's OpenAI-compatible server"),
    "remote::tgi": ("OpenAIInferenceConfig", "Hugging Face TGI's OpenAI-compatible Messages API"),
}

BUILTIN_SPECS: list[ProviderSpec] = [
    ProviderSpec(
        api=Api.inference,
        provider_type="inline::transformers",
        module=f"{_INFERENCE}.transformers",
        provider_class="TransformersInferenceProvider",
        config_class="TransformersInferenceConfig",
        pip_packages=("torch", "transformers", "accelerate", "pillow"),
        description="Local Llama 3.2 Vision (Mllama) or any Hugging Face causal LM through transformers.",
    ),
    ProviderSpec(
        api=Api.inference,
        provider_type="inline::sentence-transformers",
        module=f"{_INFERENCE}.sentence_transformers",
        provider_class="SentenceTransformersInferenceProvider",
        config_class="SentenceTransformersInferenceConfig",
        pip_packages=("sentence-transformers", "onnxruntime", "onnx"),
        description="Local embedding models through sentence-transformers (offline weights).",
    ),
    *[
        ProviderSpec(
            api=Api.inference,
            provider_type=ptype,
            module=f"{_INFERENCE}.openai_compat",
            provider_class="OpenAICompatInferenceProvider",
            config_class=config_class,
            pip_packages=("openai",),
            description=desc,
        )
        for ptype, (config_class, desc) in _OPENAI_COMPAT_TYPES.items()
    ],
    ProviderSpec(
        api=Api.vector_io,
        provider_type="inline::chromadb",
        module="vistack.providers.vector_io.chroma",
        provider_class="ChromaVectorIOProvider",
        config_class="ChromaInlineConfig",
        pip_packages=("chromadb",),
        description="Embedded Chroma (PersistentClient) under the state dir.",
    ),
    ProviderSpec(
        api=Api.vector_io,
        provider_type="remote::chromadb",
        module="vistack.providers.vector_io.chroma",
        provider_class="ChromaVectorIOProvider",
        config_class="ChromaRemoteConfig",
        pip_packages=("chromadb",),
        description="A Chroma server (HttpClient), e.g. `chroma run --path DIR`.",
    ),
    ProviderSpec(
        api=Api.responses,
        provider_type="inline::builtin",
        module="vistack.agents.responses",
        provider_class="ResponsesProvider",
        config_class="ResponsesConfig",
        pip_packages=("mcp",),
        api_dependencies=(Api.inference, Api.conversations),
        optional_api_dependencies=(Api.vector_io, Api.files, Api.safety),
        description="Responses API agent: file_search over page images (visual RAG), function and MCP tools.",
    ),
    ProviderSpec(
        api=Api.safety,
        provider_type="inline::llama-guard",
        module="vistack.providers.safety.llama_guard",
        provider_class="LlamaGuardSafetyProvider",
        config_class="LlamaGuardConfig",
        api_dependencies=(Api.inference,),
        description="Llama Guard 3 (11B Vision, 1B, 8B) shields run through the inference router: text and images.",
    ),
    ProviderSpec(
        api=Api.safety,
        provider_type="inline::prompt-guard",
        module="vistack.providers.safety.prompt_guard",
        provider_class="PromptGuardSafetyProvider",
        config_class="PromptGuardConfig",
        pip_packages=("torch", "transformers"),
        description="Llama Prompt Guard (2) classifier: prompt injection and jailbreak scores for input and "
        "retrieved content.",
    ),
    ProviderSpec(
        api=Api.safety,
        provider_type="inline::code-scanner",
        module="vistack.providers.safety.code_scanner",
        provider_class="CodeScannerSafetyProvider",
        config_class="CodeScannerConfig",
        pip_packages=("codeshield",),
        description="Meta's CodeShield scanner for insecure code in model output.",
    ),
    ProviderSpec(
        api=Api.files,
        provider_type="inline::localfs",
        module="vistack.providers.files.localfs",
        provider_class="LocalFSFilesProvider",
        config_class="LocalFSFilesConfig",
        description="Files on the local disk under the state dir, metadata in SQLite.",
    ),
]


class ProviderRegistry:
    """Known specs by (api, provider_type), built-ins plus external ones."""

    def __init__(self, specs: list[ProviderSpec] | None = None) -> None:
        self._specs: dict[tuple[Api, str], ProviderSpec] = {}
        for spec in specs if specs is not None else BUILTIN_SPECS:
            self.add(spec)

    def add(self, spec: ProviderSpec) -> None:
        self._specs[(spec.api, spec.provider_type)] = spec

    def get(self, api: Api, provider_type: str) -> ProviderSpec:
        try:
            return self._specs[(api, provider_type)]
        except KeyError:
            known = ", ".join(sorted(t for (a, t) in self._specs if a == api)) or "none"
            raise ConfigError(
                f"unknown provider_type '{provider_type}' for api '{api.value}'. Known: {known}. "
                "For an external provider, add 'module: your.package' to the provider entry."
            ) from None

    def specs(self) -> list[ProviderSpec]:
        return list(self._specs.values())

    def load_external(self, module: str) -> ProviderSpec:
        """Import ``module`` and register the spec from its ``get_provider_spec()``."""
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(f"external provider module '{module}' cannot be imported: {e}") from e
        getter = getattr(mod, "get_provider_spec", None)
        if getter is None:
            raise ConfigError(f"external provider module '{module}' has no get_provider_spec() function")
        spec = getter()
        if not isinstance(spec, ProviderSpec):
            raise ConfigError(f"{module}.get_provider_spec() must return vistack.registry.ProviderSpec")
        self.add(spec)
        return spec


def build_config(spec: ProviderSpec, raw: dict[str, Any], where: str) -> BaseModel:
    """Validate a provider's ``config`` block; errors name ``where`` and each bad key."""
    cls = spec.load_config_class()
    try:
        return cls.model_validate(raw or {})
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, where)) from None


def format_validation_error(e: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid configuration"]
    for err in e.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  {where}.{path}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def redact(value: Any) -> Any:
    """Config as JSON for ``/v1/providers``, secrets shown as ``********``."""
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else None
    if isinstance(value, BaseModel):
        return {k: redact(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {
            k: ("********" if _looks_secret(k) and v else redact(v)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (str, int, float, bool)):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _looks_secret(key: str) -> bool:
    k = key.lower()
    return any(s in k for s in ("api_key", "apikey", "token", "password", "secret", "authorization"))
