"""Which models exist and which provider serves each.

Three sources, as in Llama Stack's models routing table: models declared in
the distribution, models discovered from remote engines (cached, refreshed
in the background so listing stays fast), and models registered through the
API (persisted with their owner). Lookups accept the full identifier
(``provider_id/model``) or an unambiguous short name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from vistack.access import SHARED_TENANT, Action, Principal, Resource, allows, check_create, require
from vistack.api import BadRequestError, ConflictError, ModelNotFoundError, ModelType
from vistack.api.models import Model, RegisterModelRequest
from vistack.api.protocols import InferenceProvider
from vistack.config import ModelEntry
from vistack.context import current_principal
from vistack.storage import MetadataStore

log = logging.getLogger(__name__)

SYSTEM_OWNER = "llama_stack"
_KIND = "model"


@dataclass
class CatalogEntry:
    model: Model
    created: int
    owner: str
    source: str  # "distribution" | "provider" | "api"
    tenant: str = SHARED_TENANT  # distribution and discovered models are everyone's; registered ones their tenant's

    @property
    def resource(self) -> Resource:
        return Resource(_KIND, self.model.identifier, self.owner, self.tenant)


def qualified_id(provider_id: str, model_id: str) -> str:
    return model_id if model_id.startswith(f"{provider_id}/") else f"{provider_id}/{model_id}"


class ModelCatalog:
    def __init__(
        self,
        store: MetadataStore,
        providers: dict[str, InferenceProvider],
        refresh_interval_s: float = 60.0,
        discovery_timeout_s: float = 10.0,
    ) -> None:
        self._store = store
        self._providers = providers
        self._entries: dict[str, CatalogEntry] = {}
        self._refresh_interval_s = refresh_interval_s
        self._discovery_timeout_s = discovery_timeout_s
        self._last_refresh = 0.0
        self._refresh_task: asyncio.Task | None = None
        self._started = int(time.time())

    # --- loading ----------------------------------------------------------------------------

    async def load(self, entries: list[ModelEntry]) -> None:
        """Register distribution models, then persisted API registrations, then discover."""
        for e in entries:
            model = Model(
                identifier=qualified_id(e.provider_id, e.model_id),
                provider_resource_id=e.provider_model_id or e.model_id,
                provider_id=e.provider_id,
                model_type=e.model_type,
                metadata=dict(e.metadata),
            )
            model = await self._provider_register(model, strict=False)
            self._entries[model.identifier] = CatalogEntry(model, self._started, SYSTEM_OWNER, "distribution")
        for obj in await self._store.list(_KIND):
            model = Model.model_validate(obj.data)
            if model.provider_id not in self._providers:
                log.warning("registered model %s names provider %s, which is not in this distribution", model.identifier, model.provider_id)
                continue
            model = await self._provider_register(model, strict=False)
            self._entries[model.identifier] = CatalogEntry(model, int(obj.created_at), obj.owner, "api", obj.tenant)
        await self.refresh()

    async def _provider_register(self, model: Model, *, strict: bool) -> Model:
        provider = self._providers[model.provider_id]
        try:
            return await provider.register_model(model)
        except Exception as e:  # a model that cannot load yet stays listed; requests get 503
            if strict:
                raise
            log.warning("provider %s could not register %s yet: %s", model.provider_id, model.identifier, e)
            return model

    async def refresh(self) -> None:
        """Ask each provider that can list its models; a failing engine is logged, not fatal."""
        self._last_refresh = time.monotonic()
        for provider_id, provider in self._providers.items():
            try:
                found = await asyncio.wait_for(provider.list_models(), self._discovery_timeout_s)
            except Exception as e:
                log.warning("model discovery from provider %s failed: %s", provider_id, e)
                continue
            if found is None:
                continue
            fresh = {m.identifier for m in found}
            for ident in [i for i, e in self._entries.items() if e.source == "provider" and e.model.provider_id == provider_id]:
                if ident not in fresh:
                    del self._entries[ident]
            for m in found:
                if m.identifier not in self._entries:
                    self._entries[m.identifier] = CatalogEntry(m, int(time.time()), SYSTEM_OWNER, "provider")

    def _maybe_refresh_in_background(self) -> None:
        stale = time.monotonic() - self._last_refresh > self._refresh_interval_s
        if stale and (self._refresh_task is None or self._refresh_task.done()):
            self._refresh_task = asyncio.create_task(self.refresh())

    async def close(self) -> None:
        if self._refresh_task and not self._refresh_task.done():
            self._refresh_task.cancel()

    # --- queries ----------------------------------------------------------------------------

    def list(self) -> list[CatalogEntry]:
        """The models the caller may see, by identifier."""
        self._maybe_refresh_in_background()
        return sorted(self._visible(), key=lambda e: e.model.identifier)

    def _visible(self) -> list[CatalogEntry]:
        principal = current_principal()
        return [e for e in self._entries.values() if allows(principal, Action.read, e.resource)]

    def get(self, model_id: str) -> CatalogEntry:
        """A model the caller may use, by identifier or unambiguous short name; 404 otherwise (another tenant's
        registered model looks exactly like an unknown one)."""
        entry = self._entries.get(model_id)
        if entry is not None and allows(current_principal(), Action.read, entry.resource):
            return entry
        visible = self._visible()
        matches = [
            e
            for e in visible
            if e.model.provider_resource_id == model_id or e.model.identifier.split("/", 1)[-1] == model_id
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(sorted(e.model.identifier for e in matches))
            raise BadRequestError(f"model name '{model_id}' is ambiguous; use one of: {names}", param="model")
        raise ModelNotFoundError(model_id, [e.model.identifier for e in visible])

    def provider_for(self, entry: CatalogEntry) -> InferenceProvider:
        return self._providers[entry.model.provider_id]

    # --- registration -----------------------------------------------------------------------

    async def register(self, req: RegisterModelRequest, owner: Principal) -> Model:
        provider_id = req.provider_id
        if provider_id is None:
            if len(self._providers) != 1:
                raise BadRequestError(
                    f"provider_id is required when several inference providers exist: {', '.join(sorted(self._providers))}",
                    param="provider_id",
                )
            provider_id = next(iter(self._providers))
        if provider_id not in self._providers:
            raise BadRequestError(
                f"unknown inference provider '{provider_id}'; expected one of: {', '.join(sorted(self._providers))}",
                param="provider_id",
            )
        identifier = qualified_id(provider_id, req.model_id)
        existing = self._entries.get(identifier)
        if existing is not None and existing.source == "distribution":
            raise BadRequestError(f"model '{identifier}' is defined by the distribution and cannot be re-registered")
        if existing is not None and not allows(owner, Action.update, existing.resource):
            raise ConflictError(f"model id '{identifier}' is already registered; choose another model_id")
        check_create(owner, _KIND)
        model = Model(
            identifier=identifier,
            provider_resource_id=req.provider_model_id or req.model_id,
            provider_id=provider_id,
            model_type=req.model_type or ModelType.llm,
            metadata=req.metadata or {},
        )
        model = await self._provider_register(model, strict=bool(req.model_validation))
        stored = await self._store.put(_KIND, identifier, owner, model.model_dump(mode="json"))
        self._entries[identifier] = CatalogEntry(model, int(stored.created_at), stored.owner, "api", stored.tenant)
        return model

    async def unregister(self, model_id: str) -> None:
        entry = self.get(model_id)
        if entry.source == "distribution":
            raise BadRequestError(
                f"model '{entry.model.identifier}' is defined by the distribution file; remove it there instead"
            )
        require(current_principal(), Action.delete, entry.resource, ModelNotFoundError(model_id, []))
        await self.provider_for(entry).unregister_model(entry.model)
        await self._store.delete(_KIND, entry.model.identifier)
        del self._entries[entry.model.identifier]
