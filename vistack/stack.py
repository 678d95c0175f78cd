"""The running stack: provider instances, model catalog and metadata store
built from one distribution. The server and the in-process CLI both use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from vistack.api import Api, ConfigError, Provider
from vistack.api.protocols import InferenceProvider, ProviderContext
from vistack.config import ProviderEntry, StackConfig
from vistack.model_catalog import ModelCatalog
from vistack.registry import ProviderRegistry, ProviderSpec, build_config
from vistack.storage import MetadataStore

log = logging.getLogger(__name__)


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
        self.store: MetadataStore | None = None
        self.models: ModelCatalog | None = None
        self.vector_stores = None  # VectorStoreService when files + vector_io are configured

    def build(self) -> None:
        """Validate and instantiate every provider (no I/O beyond imports of light modules)."""
        if self.providers:
            return
        where = self.config.source or "<distribution>"
        pending: list[tuple[Api, ProviderEntry, ProviderSpec]] = []
        for api, entry in self.config.provider_entries():
            if entry.module:
                spec = self.registry.load_external(entry.module)
                if spec.api != api or spec.provider_type != entry.provider_type:
                    raise ConfigError(
                        f"{where}: providers.{api.value}: module '{entry.module}' provides "
                        f"{spec.api.value}/{spec.provider_type}, not {api.value}/{entry.provider_type}"
                    )
            else:
                spec = self.registry.get(api, entry.provider_type)
            pending.append((api, entry, spec))
        # APIs a provider depends on are built first.
        order = sorted(pending, key=lambda t: len(t[2].api_dependencies))
        for api, entry, spec in order:
            config = build_config(spec, entry.config, f"{where}: providers.{api.value}[{entry.provider_id}].config")
            deps = self._deps_for(spec, where, entry)
            instance = spec.load_provider_class()(config, deps)
            instance.provider_id = entry.provider_id
            self.providers[entry.provider_id] = ProviderHandle(api, entry, spec, instance)

    def _deps_for(self, spec: ProviderSpec, where: str, entry: ProviderEntry) -> dict[Api, Any]:
        deps: dict[Api, Any] = {}
        for dep in (*spec.api_dependencies, *spec.optional_api_dependencies):
            found = [h.instance for h in self.providers.values() if h.api == dep]
            if not found and dep in spec.api_dependencies:
                raise ConfigError(f"{where}: provider '{entry.provider_id}' needs a provider for API '{dep.value}'")
            if found:
                deps[dep] = found[0]
        return deps

    def by_api(self, api: Api) -> dict[str, Provider]:
        return {pid: h.instance for pid, h in self.providers.items() if h.api == api}

    async def start(self) -> None:
        if not self.providers:
            self.build()
        self.config.storage.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = MetadataStore(self.config.storage.metadata_path)
        for handle in self.providers.values():
            handle.instance.context = ProviderContext(state_dir=self.config.storage.state_dir, store=self.store)
            await handle.instance.initialize()
        inference: dict[str, InferenceProvider] = self.by_api(Api.inference)  # type: ignore[assignment]
        self.models = ModelCatalog(self.store, inference)
        await self.models.load(self.config.models)
        await self._start_vector_stores()
        log.info("stack '%s' started with providers: %s", self.config.distro_name, ", ".join(self.providers))

    async def _start_vector_stores(self) -> None:
        files = self.by_api(Api.files)
        vector_io = self.by_api(Api.vector_io)
        if not files or not vector_io:
            return
        from vistack.rag.records import Records
        from vistack.rag.vector_stores import VectorStoreService

        assert self.store is not None and self.models is not None
        self.vector_stores = VectorStoreService(
            records=Records(self.store),
            files=next(iter(files.values())),  # type: ignore[arg-type]
            vector_io=vector_io,  # type: ignore[arg-type]
            models=self.models,
            settings=self.config.vector_stores,
            state_dir=self.config.storage.state_dir,
        )
        await self.vector_stores.start()

    async def stop(self) -> None:
        if self.vector_stores is not None:
            await self.vector_stores.stop()
        if self.models is not None:
            await self.models.close()
        for handle in reversed(list(self.providers.values())):
            try:
                await handle.instance.shutdown()
            except Exception as e:  # shutting down must go on for the others
                log.warning("provider %s failed to shut down cleanly: %s", handle.entry.provider_id, e)
        if self.store is not None:
            self.store.close()
