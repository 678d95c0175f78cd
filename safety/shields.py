"""Which shields exist and which safety provider runs each (Llama Stack's shields routing table).

Two sources: the distribution's ``shields`` (fixed; changed in the file) and
shields registered through ``POST /v1/shields`` (persisted with their owner,
reloaded at startup). A shield whose provider cannot check it yet (weights
missing) stays listed; running it answers 503 naming what is missing, so a
guard never disappears or passes silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vistack.access import SHARED_TENANT, Action, Principal, Resource, allows, check_create, require
from vistack.api import BadRequestError, ConfigError, ConflictError, NotFoundError
from vistack.api.errors import not_found_message
from vistack.api.protocols import SafetyProvider
from vistack.api.safety import RegisterShieldRequest, Shield
from vistack.config import ShieldEntry
from vistack.context import current_principal
from vistack.model_catalog import SYSTEM_OWNER
from vistack.storage import MetadataStore

log = logging.getLogger(__name__)

_KIND = "shield"


@dataclass
class ShieldEntryState:
    shield: Shield
    owner: str
    source: str  # "distribution" | "api"
    tenant: str = SHARED_TENANT  # distribution shields guard everyone; registered ones belong to their tenant

    @property
    def resource(self) -> Resource:
        return Resource(_KIND, self.shield.identifier, self.owner, self.tenant)


class ShieldCatalog:
    def __init__(self, store: MetadataStore, providers: dict[str, SafetyProvider]) -> None:
        self._store = store
        self._providers = providers
        self._entries: dict[str, ShieldEntryState] = {}
        self.default_shield_id: str | None = None

    async def load(self, entries: list[ShieldEntry], default_shield_id: str | None = None) -> None:
        """Distribution shields first (in file order), then persisted API registrations."""
        for i, e in enumerate(entries):
            try:
                provider_id = self._provider_id(e.provider_id)
            except BadRequestError as err:
                raise ConfigError(f"shields[{i}] '{e.shield_id}': {err.message}") from None
            shield = Shield(
                identifier=e.shield_id,
                provider_id=provider_id,
                provider_resource_id=e.provider_shield_id or e.shield_id,
                params=dict(e.params) or None,
            )
            shield = await self._provider_register(shield, strict=False)
            self._entries[shield.identifier] = ShieldEntryState(shield, SYSTEM_OWNER, "distribution")
        for obj in await self._store.list(_KIND):
            shield = Shield.model_validate(obj.data)
            if shield.provider_id not in self._providers:
                log.warning("registered shield %s names provider %s, which is not in this distribution",
                            shield.identifier, shield.provider_id)
                continue
            if shield.identifier in self._entries:
                continue
            shield = await self._provider_register(shield, strict=False)
            self._entries[shield.identifier] = ShieldEntryState(shield, obj.owner, "api", obj.tenant)
        self.default_shield_id = default_shield_id or next(iter(self._entries), None)

    def _provider_id(self, requested: str | None) -> str:
        if requested is not None:
            if requested not in self._providers:
                raise BadRequestError(
                    f"unknown safety provider '{requested}'; expected one of: {', '.join(sorted(self._providers)) or 'none'}",
                    param="provider_id")
            return requested
        if len(self._providers) != 1:
            raise BadRequestError(
                "provider_id is required when several safety providers exist: "
                f"{', '.join(sorted(self._providers)) or 'none configured'}", param="provider_id")
        return next(iter(self._providers))

    async def _provider_register(self, shield: Shield, *, strict: bool) -> Shield:
        try:
            return await self._providers[shield.provider_id].register_shield(shield)
        except Exception as e:
            if strict:
                raise
            log.warning("safety provider %s cannot check shield %s yet: %s", shield.provider_id, shield.identifier, e)
            return shield

    # ----- queries ---------------------------------------------------------------------------------

    def list(self) -> list[Shield]:
        """The shields the caller may see."""
        return [e.shield for e in self._visible()]

    def _visible(self) -> list[ShieldEntryState]:
        principal = current_principal()
        return [e for e in self._entries.values() if allows(principal, Action.read, e.resource)]

    def get(self, shield_id: str, action: Action = Action.read) -> Shield:
        entry = self._entries.get(shield_id)
        missing = NotFoundError(not_found_message("Shield", shield_id, "shields.list"), code="shield_not_found")
        if entry is None:
            raise missing
        require(current_principal(), action, entry.resource, missing)
        return entry.shield

    def by_model(self, model: str) -> Shield:
        """The shield whose model (``provider_resource_id``) or identifier is ``model`` (moderations' ``model``)."""
        visible = self._visible()
        matches = [e.shield for e in visible if e.shield.provider_resource_id == model]
        matches = matches or [e.shield for e in visible if e.shield.identifier == model]
        if len(matches) == 1:
            return matches[0]
        choices = sorted({e.shield.provider_resource_id or e.shield.identifier for e in visible})
        if not matches:
            raise NotFoundError(f"No shield runs model '{model}': choose from {choices}", code="shield_not_found")
        raise BadRequestError(f"Several shields run model '{model}' ({', '.join(s.identifier for s in matches)}); "
                              "name one of them by its identifier", param="model")

    def provider_for(self, shield: Shield) -> SafetyProvider:
        return self._providers[shield.provider_id]

    # ----- registration ----------------------------------------------------------------------------

    async def register(self, req: RegisterShieldRequest, owner: Principal) -> Shield:
        existing = self._entries.get(req.shield_id)
        if existing is not None and existing.source == "distribution":
            raise ConflictError(f"shield '{req.shield_id}' is defined by the distribution and cannot be re-registered")
        if existing is not None and not allows(owner, Action.update, existing.resource):
            raise ConflictError(f"shield id '{req.shield_id}' is already registered; choose another shield_id")
        check_create(owner, _KIND)
        shield = Shield(
            identifier=req.shield_id,
            provider_id=self._provider_id(req.provider_id),
            provider_resource_id=req.provider_shield_id or req.shield_id,
            params=req.params,
        )
        shield = await self._provider_register(shield, strict=True)
        stored = await self._store.put(_KIND, shield.identifier, owner, shield.model_dump(mode="json"))
        self._entries[shield.identifier] = ShieldEntryState(shield, stored.owner, "api", stored.tenant)
        if self.default_shield_id is None:
            self.default_shield_id = shield.identifier
        return shield

    async def unregister(self, shield_id: str) -> None:
        shield = self.get(shield_id)
        entry = self._entries[shield.identifier]
        if entry.source == "distribution":
            raise BadRequestError(f"shield '{shield_id}' is defined by the distribution file; remove it there instead")
        self.get(shield_id, Action.delete)
        await self.provider_for(shield).unregister_shield(shield)
        await self._store.delete(_KIND, shield.identifier)
        del self._entries[shield.identifier]
        if self.default_shield_id == shield.identifier:
            self.default_shield_id = next(iter(self._entries), None)
