"""The running stack: providers and the typed services built on them, from one distribution.

``build()`` orders the APIs by what they depend on (a topological sort over
the providers' ``api_dependencies`` and the core services' needs), creates
each API's providers, then the object other APIs receive for it: the
inference *router* (never a raw inference provider), the vector-stores
service, the files provider, the conversations service. A provider that
depends on an API gets that object in its ``deps``, as Llama Stack injects
its routers. ``start()`` opens storage and initializes everything in the
same order; ``stop()`` goes in reverse. The server and the in-process CLI
both use it.
"""

from __future__ import annotations

import graphlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vistack import access
from vistack.api import Api, ConfigError, Provider
from vistack.api.protocols import FilesProvider, ProviderContext, VectorIOProvider
from vistack.chat_store import ChatCompletionStore
from vistack.config import ProviderEntry, StackConfig
from vistack.inference import InferenceRouter
from vistack.model_catalog import ModelCatalog
from vistack.registry import ProviderRegistry, ProviderSpec, build_config
from vistack.storage import MetadataStore

if TYPE_CHECKING:  # services import their heavy modules only when a distribution uses them
    from vistack.agents.conversations import ConversationsService
    from vistack.agents.responses import ResponsesProvider
    from vistack.rag.vector_stores import VectorStoreService
    from vistack.safety.service import SafetyService

log = logging.getLogger(__name__)

# What each core service needs besides its own API's providers.
SERVICE_DEPENDENCIES: dict[Api, tuple[Api, ...]] = {
    Api.vector_io: (Api.inference, Api.files),
}
# APIs that exist in every stack: they only need storage.
CORE_APIS: tuple[Api, ...] = (Api.conversations,)


@dataclass
class ProviderHandle:
    api: Api
    entry: ProviderEntry
    spec: ProviderSpec
    instance: Provider


class Stack:
    def __init__(self, config: StackConfig, registry: ProviderRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or ProviderRegistry()
        self.providers: dict[str, ProviderHandle] = {}
        self.order: list[Api] = []
        self.store = MetadataStore(config.storage.metadata_path)
        self.models: ModelCatalog | None = None
        self.inference: InferenceRouter | None = None
        self.files: FilesProvider | None = None
        self.vector_stores: VectorStoreService | None = None
        self.conversations: ConversationsService | None = None
        self.safety: SafetyService | None = None
        self.chat_completions: ChatCompletionStore | None = None
        self._services: dict[Api, Any] = {}

    # ----- build ---------------------------------------------------------------------------------

    def build(self) -> None:
        """Validate, order and instantiate every provider and service (no I/O beyond light imports)."""
        if self.order:
            return
        where = self.config.source or "<distribution>"
        auth = self.config.server.auth
        access.set_policy(access.AccessPolicy(auth.access_policy if auth is not None else []))
        by_api: dict[Api, list[tuple[ProviderEntry, ProviderSpec]]] = {}
        for api, entry in self.config.provider_entries():
            by_api.setdefault(api, []).append((entry, self._spec(api, entry, where)))
        present = set(by_api) | set(CORE_APIS)
        if self.config.shields and Api.safety not in by_api:
            raise ConfigError(f"{where}: shields are declared but there is no safety provider; add one under "
                              "providers.safety (e.g. provider_type: inline::llama-guard)")
        graph: dict[Api, set[Api]] = {api: set() for api in present}
        for api, entries in by_api.items():
            for entry, spec in entries:
                for dep in spec.api_dependencies:
                    if dep not in present:
                        raise ConfigError(
                            f"{where}: provider '{entry.provider_id}' ({spec.provider_type}) needs the "
                            f"'{dep.value}' API; add a provider for it under providers.{dep.value}"
                        )
                graph[api] |= {d for d in (*spec.api_dependencies, *spec.optional_api_dependencies) if d in present}
            graph[api] |= {d for d in SERVICE_DEPENDENCIES.get(api, ()) if d in present}
        graph = {api: deps - {api} for api, deps in graph.items()}
        try:
            self.order = list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as e:
            cycle = " -> ".join(a.value for a in e.args[1])
            raise ConfigError(f"{where}: the providers' API dependencies form a cycle: {cycle}") from None
        for api in self.order:
            for entry, spec in by_api.get(api, []):
                config = build_config(spec, entry.config, f"{where}: providers.{api.value}[{entry.provider_id}].config")
                deps = {d: self._services[d] for d in (*spec.api_dependencies, *spec.optional_api_dependencies)
                        if self._services.get(d) is not None}
                instance = spec.load_provider_class()(config, deps)
                instance.provider_id = entry.provider_id
                self.providers[entry.provider_id] = ProviderHandle(api, entry, spec, instance)
            self._services[api] = self._service_for(api, where)

    def _spec(self, api: Api, entry: ProviderEntry, where: str) -> ProviderSpec:
        if not entry.module:
            return self.registry.get(api, entry.provider_type)
        spec = self.registry.load_external(entry.module)
        if spec.api != api or spec.provider_type != entry.provider_type:
            raise ConfigError(
                f"{where}: providers.{api.value}: module '{entry.module}' provides "
                f"{spec.api.value}/{spec.provider_type}, not {api.value}/{entry.provider_type}"
            )
        return spec

    def _service_for(self, api: Api, where: str) -> Any:
        """The object other APIs (and the routes) use for ``api``."""
        providers = self.by_api(api)
        if api == Api.inference:
            self.models = ModelCatalog(self.store, providers)  # type: ignore[arg-type]
            self.inference = InferenceRouter(self.models)
            self.chat_completions = ChatCompletionStore(self.store, self.config.inference_store.enabled)
            return self.inference
        if api == Api.files:
            if len(providers) > 1:
                raise ConfigError(f"{where}: providers.files: configure one files provider, got {len(providers)}")
            self.files = next(iter(providers.values()))  # type: ignore[assignment]
            return self.files
        if api == Api.vector_io:
            return self._vector_store_service(providers, where)  # type: ignore[arg-type]
        if api == Api.conversations:
            from vistack.agents.conversations import ConversationsService

            self.conversations = ConversationsService(self.store)
            return self.conversations
        if api == Api.safety:
            from vistack.safety.service import SafetyService
            from vistack.safety.shields import ShieldCatalog

            self.safety = SafetyService(ShieldCatalog(self.store, providers),  # type: ignore[arg-type]
                                        self.config.safety.guardrails)
            return self.safety
        # An API served by exactly one provider (responses, safety, ...) is that provider.
        return next(iter(providers.values()), None)

    def _vector_store_service(self, providers: dict[str, VectorIOProvider], where: str) -> Any:
        if self.files is None or self.inference is None:
            missing = "a files provider" if self.files is None else "an inference provider with an embedding model"
            raise ConfigError(f"{where}: vector stores (providers.vector_io) need {missing}")
        from vistack.rag.records import Records
        from vistack.rag.vector_stores import VectorStoreService

        self.vector_stores = VectorStoreService(
            records=Records(self.store),
            files=self.files,
            vector_io=providers,
            inference=self.inference,
            settings=self.config.vector_stores,
            state_dir=self.config.storage.state_dir,
        )
        return self.vector_stores

    # ----- lookup --------------------------------------------------------------------------------

    def by_api(self, api: Api) -> dict[str, Provider]:
        return {pid: h.instance for pid, h in self.providers.items() if h.api == api}

    def service(self, api: Api) -> Any | None:
        """What the stack built for ``api`` (``None`` when the distribution has no such API)."""
        return self._services.get(api)

    @property
    def responses(self) -> ResponsesProvider | None:
        return self._services.get(Api.responses)  # type: ignore[return-value]

    # ----- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self.build()
        self.config.storage.state_dir.mkdir(parents=True, exist_ok=True)
        context = ProviderContext(state_dir=self.config.storage.state_dir, store=self.store)
        for api in self.order:
            for handle in [h for h in self.providers.values() if h.api == api]:
                handle.instance.context = context
                await handle.instance.initialize()
            if api == Api.inference and self.models is not None:
                await self.models.load(self.config.models)
            elif api == Api.vector_io and self.vector_stores is not None:
                await self.vector_stores.start()
            elif api == Api.safety and self.safety is not None:
                await self.safety.shields.load(self.config.shields, self.config.safety.default_shield_id)
        log.info("stack '%s' started with providers: %s", self.config.distro_name, ", ".join(self.providers))

    async def stop(self) -> None:
        for api in reversed(self.order):
            if api == Api.vector_io and self.vector_stores is not None:
                await self.vector_stores.stop()
            elif api == Api.inference and self.models is not None:
                await self.models.close()
            for handle in reversed([h for h in self.providers.values() if h.api == api]):
                try:
                    await handle.instance.shutdown()
                except Exception as e:  # shutting down must go on for the others
                    log.warning("provider %s failed to shut down cleanly: %s", handle.entry.provider_id, e)
        self.store.close()

