"""Who may do what to which object: the one access check every service calls at object lookup.

A :class:`Principal` (id, tenant, roles, attributes) is set per request by
authentication (``ANONYMOUS`` when auth is off) and by background work
(``SYSTEM``, or the owner of the job being resumed). Every stored object
records its owner's id and tenant. ``allows(principal, action, resource)``:

1. the distribution's ``access_policy`` rules, in order; the first whose
   scope and condition match decides (permit or forbid);
2. otherwise the default: admins may do anything; others may act on their
   own tenant's objects; objects of the ``*`` tenant (models and shields the
   distribution declares) are readable by everyone and changed by admins only.

Services turn a denied read/update/delete into the same 404 an unknown id
gets, so a caller cannot learn that another tenant's object exists.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vistack.api.errors import PermissionDeniedError, VistackError

DEFAULT_TENANT = "default"
SHARED_TENANT = "*"
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Principal:
    id: str
    tenant: str = DEFAULT_TENANT
    roles: tuple[str, ...] = ()
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def attribute(self, name: str) -> tuple[str, ...]:
        """Values of ``roles``, ``tenant`` or a mapped claim, for policy conditions."""
        if name == "roles":
            return self.roles
        if name == "tenant":
            return (self.tenant,)
        return self.attributes.get(name, ())

    def __str__(self) -> str:
        return self.id


ANONYMOUS = Principal("anonymous")
"""Every caller when authentication is off: one tenant, the behaviour of a single-user server."""

SYSTEM = Principal("system", tenant=SHARED_TENANT, roles=(ADMIN_ROLE,))
"""Background work that acts for no particular caller (startup recovery, maintenance)."""


def owner_principal(owner: str, tenant: str) -> Principal:
    """The principal a stored object belongs to (a resumed job acts as its owner)."""
    return Principal(owner, tenant)


class Action(StrEnum):
    create = "create"
    read = "read"
    update = "update"
    delete = "delete"


@dataclass(frozen=True)
class Resource:
    """A stored object as the access check sees it: ``type::id`` plus its owner and tenant."""

    type: str
    id: str
    owner: str
    tenant: str

    @property
    def qualified(self) -> str:
        return f"{self.type}::{self.id}"


# ----- policy ---------------------------------------------------------------------------------------------

_CONDITION = re.compile(
    r"^user (?:(?P<neg_is>is not|is) owner|(?P<neg_in>in|not in) owner tenant"
    r"|with (?P<value>\S+) (?P<neg_with>in|not in) (?P<attr>\S+))$"
)


class RuleScope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: str | None = Field(default=None, description="a principal id; absent = everyone")
    actions: list[Action] = Field(min_length=1)
    resource: str | None = Field(
        default=None, description="type::id with * wildcards (vector_store::*), or regex:<pattern>; absent = all")

    @field_validator("actions", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def matches(self, principal: Principal, action: Action, resource: Resource) -> bool:
        if self.principal is not None and self.principal != principal.id:
            return False
        if action not in self.actions:
            return False
        if self.resource is None:
            return True
        if self.resource.startswith("regex:"):
            return re.fullmatch(self.resource[6:], resource.qualified) is not None
        return fnmatch.fnmatchcase(resource.qualified, self.resource)


class AccessRule(BaseModel):
    """One ``access_policy`` rule (Llama Stack's format): ``permit`` or ``forbid`` a scope, optionally ``when`` or
    ``unless`` conditions hold. Conditions: ``user is owner``, ``user is not owner``, ``user in owner tenant``,
    ``user not in owner tenant``, ``user with <value> in <attribute>``, ``user with <value> not in <attribute>``
    (attributes: ``roles``, ``tenant`` and the claims mapped by JWT auth)."""

    model_config = ConfigDict(extra="forbid")

    permit: RuleScope | None = None
    forbid: RuleScope | None = None
    when: str | list[str] | None = None
    unless: str | list[str] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> AccessRule:
        if (self.permit is None) == (self.forbid is None):
            raise ValueError("a rule has exactly one of permit or forbid")
        if self.when is not None and self.unless is not None:
            raise ValueError("a rule has at most one of when or unless")
        for condition in self._conditions():
            if not _CONDITION.match(condition.strip()):
                raise ValueError(f"unknown condition {condition!r}; see the access_policy documentation")
        return self

    def _conditions(self) -> list[str]:
        raw = self.when if self.when is not None else self.unless
        return [] if raw is None else [raw] if isinstance(raw, str) else list(raw)

    def decision(self, principal: Principal, action: Action, resource: Resource) -> Literal["permit", "forbid"] | None:
        scope = self.permit or self.forbid
        assert scope is not None
        if not scope.matches(principal, action, resource):
            return None
        holds = all(_holds(c.strip(), principal, resource) for c in self._conditions())
        if (self.when is not None and not holds) or (self.unless is not None and holds):
            return None
        return "permit" if self.permit is not None else "forbid"


def _holds(condition: str, principal: Principal, resource: Resource) -> bool:
    m = _CONDITION.match(condition)
    assert m is not None  # validated at load
    if m.group("neg_is"):
        return (principal.id == resource.owner) == (m.group("neg_is") == "is")
    if m.group("neg_in"):
        return (principal.tenant == resource.tenant) == (m.group("neg_in") == "in")
    inside = m.group("value") in principal.attribute(m.group("attr"))
    return inside == (m.group("neg_with") == "in")


def default_allows(principal: Principal, action: Action, resource: Resource) -> bool:
    if principal.is_admin:
        return True
    if resource.tenant == SHARED_TENANT:
        return action == Action.read
    return resource.tenant == principal.tenant


class AccessPolicy:
    def __init__(self, rules: list[AccessRule] | None = None) -> None:
        self.rules = list(rules or [])

    def allows(self, principal: Principal, action: Action, resource: Resource) -> bool:
        for rule in self.rules:
            decision = rule.decision(principal, action, resource)
            if decision is not None:
                return decision == "permit"
        return default_allows(principal, action, resource)


_policy = AccessPolicy()


def set_policy(policy: AccessPolicy) -> None:
    """Installed by the stack at build time (one policy per process, like the routes it protects)."""
    global _policy
    _policy = policy


def allows(principal: Principal | str, action: Action, resource: Resource) -> bool:
    """``principal`` may be a plain id (internal callers and tests): a principal of the default tenant."""
    if isinstance(principal, str):
        principal = Principal(principal)
    return _policy.allows(principal, action, resource)


def has_rules() -> bool:
    """Whether an ``access_policy`` is installed (listing can then not be narrowed to a tenant in SQL)."""
    return bool(_policy.rules)


def require(principal: Principal | str, action: Action, resource: Resource, missing: VistackError) -> None:
    """Raise ``missing`` (the caller's 404 for an unknown id) when ``principal`` may not act on ``resource``.

    Reads, updates and deletes of a forbidden object look exactly like a missing one; only ``create``
    (which reveals nothing) answers 403.
    """
    if allows(principal, action, resource):
        return
    if action == Action.create:
        raise PermissionDeniedError(f"{principal} may not create {resource.type} objects")
    raise missing


def check_create(principal: Principal, resource_type: str) -> None:
    """``create`` of a new ``resource_type`` object in the principal's own tenant."""
    require(principal, Action.create, Resource(resource_type, "*", principal.id, principal.tenant),
            PermissionDeniedError(""))
