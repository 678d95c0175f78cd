"""Runs inside a Python 3.12 venv with the official llama-stack-client 0.7.5.

Prints one JSON object of observations; the pytest side asserts on it.
"""

import json
import sys

from llama_stack_client import LlamaStackClient

base_url = sys.argv[1]
client = LlamaStackClient(base_url=base_url, max_retries=0, timeout=120)
out = {}

models = client.models.list()
out["model_ids"] = [m.id for m in models]
m = client.models.retrieve("transformers/tiny-mllama")
out["retrieved"] = {"identifier": m.identifier, "provider_id": m.provider_id, "model_type": m.api_model_type}

r = client.chat.completions.create(
    model="transformers/tiny-mllama", messages=[{"role": "user", "content": "hello"}], max_tokens=3)
out["chat"] = {"role": r.choices[0].message.role, "finish_reason": r.choices[0].finish_reason,
               "completion_tokens": r.usage.completion_tokens}

# the rest of the OpenAI surface, through the official client's own types
several = client.chat.completions.create(
    model="transformers/tiny-mllama", messages=[{"role": "user", "content": "hello"}], max_tokens=4, n=2,
    logprobs=True, top_logprobs=2, temperature=0)
out["n_choices"] = [c.index for c in several.choices]
out["logprobs_tops"] = [len(e.top_logprobs) for e in several.choices[0].logprobs.content]
schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
structured = client.chat.completions.create(
    model="transformers/tiny-mllama", messages=[{"role": "user", "content": "ok?"}], max_tokens=20,
    response_format={"type": "json_schema", "json_schema": {"name": "ok", "schema": schema}})
out["structured"] = json.loads(structured.choices[0].message.content)

chunks = list(client.chat.completions.create(
    model="transformers/tiny-mllama", messages=[{"role": "user", "content": "hello"}], max_tokens=3, stream=True))
out["stream_finish"] = [c.choices[0].finish_reason for c in chunks if c.choices][-1]

e = client.embeddings.create(model="sentence-transformers/all-MiniLM-L6-v2", input=["net income"])
out["embedding_dim"] = len(e.data[0].embedding)

out["providers"] = sorted(p.provider_id for p in client.providers.list())
out["health"] = client.inspect.health().status
out["version"] = client.inspect.version().version
out["routes"] = len(client.routes.list())

try:
    client.models.retrieve("no-such-model")
    out["not_found"] = None
except Exception as exc:  # the SDK's NotFoundError
    out["not_found"] = type(exc).__name__

print(json.dumps(out))
