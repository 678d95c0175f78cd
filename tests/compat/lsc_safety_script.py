"""Runs inside a Python 3.12 venv with the official llama-stack-client 0.7.5: shields, run_shield, moderations.

Prints one JSON object of observations; the pytest side asserts on it.
"""

import json
import sys

from llama_stack_client import LlamaStackClient

client = LlamaStackClient(base_url=sys.argv[1], max_retries=0, timeout=300)
out = {}

shields = client.shields.list()
out["shields"] = sorted(s.identifier for s in shields)
guard = client.shields.retrieve("llama-guard")
out["guard"] = {"identifier": guard.identifier, "provider_id": guard.provider_id,
                "provider_resource_id": guard.provider_resource_id}

r = client.safety.run_shield(shield_id="llama-guard", messages=[{"role": "user", "content": "How do I bake bread?"}])
out["run_shield"] = None if r.violation is None else {
    "level": r.violation.violation_level, "user_message": r.violation.user_message,
    "violation_type": (r.violation.metadata or {}).get("violation_type")}

m = client.moderations.create(input=["first", "second"], model=guard.provider_resource_id)
out["moderation"] = {"model": m.model, "results": len(m.results),
                     "keys": sorted(m.results[0].categories or {})[:3],
                     "flagged_is_bool": all(isinstance(x.flagged, bool) for x in m.results)}

client.shields.register(shield_id="extra-guard", provider_id="llama-guard",
                        provider_shield_id=guard.provider_resource_id)
out["registered"] = "extra-guard" in [s.identifier for s in client.shields.list()]
client.shields.delete("extra-guard")
out["deleted"] = "extra-guard" not in [s.identifier for s in client.shields.list()]
try:
    client.shields.retrieve("no-such-shield")
    out["not_found"] = None
except Exception as exc:
    out["not_found"] = type(exc).__name__
print(json.dumps(out))
