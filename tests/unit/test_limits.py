"""The token-bucket rate limiter and the access policy's rules (no server needed)."""

from __future__ import annotations

import pytest

from vistack.access import AccessPolicy, AccessRule, Action, Principal, Resource
from vistack.api import TooManyRequestsError
from vistack.server.limits import RateLimiter


def test_bucket_refills_and_says_when():
    limiter = RateLimiter(requests_per_minute=60, burst=2)
    limiter.check("a", now=0.0)
    limiter.check("a", now=0.0)
    with pytest.raises(TooManyRequestsError) as e:
        limiter.check("a", now=0.5)
    assert e.value.headers() == {"Retry-After": "1"} and e.value.status_code == 429
    limiter.check("a", now=1.6)  # one token back after a second
    limiter.check("b", now=1.6)  # per principal
    assert not RateLimiter(None).active


def test_per_principal_override():
    limiter = RateLimiter(requests_per_minute=None, per_principal={"slow": 1})
    limiter.check("slow", now=0.0)
    with pytest.raises(TooManyRequestsError):
        limiter.check("slow", now=1.0)
    for _ in range(100):
        limiter.check("fast", now=1.0)


STORE = Resource("vector_store", "vs_1", "alice", "acme")


def test_default_policy_is_tenant_isolation():
    policy = AccessPolicy()
    assert policy.allows(Principal("carol", "acme"), Action.delete, STORE)
    assert not policy.allows(Principal("bob", "globex"), Action.read, STORE)
    assert policy.allows(Principal("root", "ops", ("admin",)), Action.delete, STORE)
    shared = Resource("model", "llama", "llama_stack", "*")
    assert policy.allows(Principal("bob", "globex"), Action.read, shared)
    assert not policy.allows(Principal("bob", "globex"), Action.delete, shared)


def test_rules_decide_before_the_default():
    rules = [
        AccessRule.model_validate({"forbid": {"actions": ["delete"], "resource": "vector_store::*"},
                                   "unless": "user is owner"}),
        AccessRule.model_validate({"permit": {"actions": ["read"], "resource": "vector_store::vs_1"},
                                   "when": "user with auditor in roles"}),
    ]
    policy = AccessPolicy(rules)
    assert not policy.allows(Principal("carol", "acme"), Action.delete, STORE), "same tenant, not the owner"
    assert policy.allows(Principal("alice", "acme"), Action.delete, STORE)
    assert policy.allows(Principal("audit", "globex", ("auditor",)), Action.read, STORE)
    assert not policy.allows(Principal("bob", "globex"), Action.read, STORE)
    with pytest.raises(ValueError, match="unknown condition"):
        AccessRule.model_validate({"permit": {"actions": ["read"]}, "when": "user likes cake"})
    with pytest.raises(ValueError, match="exactly one"):
        AccessRule.model_validate({"permit": {"actions": ["read"]}, "forbid": {"actions": ["read"]}})
