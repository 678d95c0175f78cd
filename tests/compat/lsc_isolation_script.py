"""Runs inside a Python 3.12 venv with the official llama-stack-client 0.7.5: tenant isolation with API keys.

argv: base_url, alice's key, bob's key. Prints one JSON object of observations.
"""

import json
import sys

from llama_stack_client import LlamaStackClient

base_url, alice_key, bob_key = sys.argv[1:4]
alice = LlamaStackClient(base_url=base_url, api_key=alice_key, max_retries=0, timeout=120)
bob = LlamaStackClient(base_url=base_url, api_key=bob_key, max_retries=0, timeout=120)
anonymous = LlamaStackClient(base_url=base_url, max_retries=0, timeout=120)
out = {}

store = alice.vector_stores.create(name="alice-only")
file = alice.files.create(file=("note.txt", b"alice's private note about revenue", "text/plain"), purpose="assistants")
conversation = alice.conversations.create()
out["alice_sees"] = {"store": store.id in [s.id for s in alice.vector_stores.list()],
                     "file": file.id in [f.id for f in alice.files.list()]}
out["bob_lists"] = {"stores": [s.id for s in bob.vector_stores.list()], "files": [f.id for f in bob.files.list()]}


def error_of(call):
    try:
        call()
        return None
    except Exception as exc:
        return [type(exc).__name__, getattr(exc, "status_code", None)]


out["bob_errors"] = {
    "store": error_of(lambda: bob.vector_stores.retrieve(store.id)),
    "file": error_of(lambda: bob.files.retrieve(file.id)),
    "file_delete": error_of(lambda: bob.files.delete(file.id)),
    "conversation": error_of(lambda: bob.conversations.retrieve(conversation.id)),
    "search": error_of(lambda: bob.vector_stores.search(vector_store_id=store.id, query="revenue")),
}
out["anonymous"] = error_of(lambda: anonymous.models.list())
out["health"] = anonymous.inspect.health().status
print(json.dumps(out))
