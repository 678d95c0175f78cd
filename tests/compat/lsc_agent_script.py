"""Responses + Conversations through the official llama-stack-client (run in its 3.12+ venv).

argv: base_url, path of a PDF, query. Prints one JSON object of observations.
"""

import json
import sys
import time
from pathlib import Path

from llama_stack_client import LlamaStackClient, NotFoundError

base_url, pdf_path, query = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
client = LlamaStackClient(base_url=base_url, max_retries=0, timeout=120)
out = {}

uploaded = client.files.create(file=(pdf_path.name, pdf_path.read_bytes(), "application/pdf"), purpose="assistants")
store = client.vector_stores.create(name="agent-compat", file_ids=[uploaded.id])
deadline = time.monotonic() + 120
while client.vector_stores.files.retrieve(file_id=uploaded.id, vector_store_id=store.id).status == "in_progress":
    if time.monotonic() > deadline:
        raise SystemExit("ingestion did not finish")
    time.sleep(0.3)

tools = [{"type": "file_search", "vector_store_ids": [store.id]}]
r = client.responses.create(model="tiny-mllama", input=query, tools=tools, include=["file_search_call.results"],
                            max_output_tokens=16)
out["status"] = r.status
out["output_types"] = [o.type for o in r.output]
out["top_page"] = int(r.output[0].results[0].attributes["page"])
annotation = r.output[-1].content[0].annotations[0]
out["citation"] = {"type": annotation.type, "file_id": annotation.file_id,
                   "page": (annotation.model_extra or {}).get("page", getattr(annotation, "page", None))}
out["file_id"] = uploaded.id

events = [e.type for e in client.responses.create(model="tiny-mllama", input=query, tools=tools, stream=True,
                                                    max_output_tokens=16)]
out["stream_first_last"] = [events[0], events[-1]]
out["stream_has_search"] = "response.file_search_call.completed" in events

conv = client.conversations.create(metadata={"topic": "compat"})
client.responses.create(model="tiny-mllama", input="hello", conversation=conv.id, max_output_tokens=16)
items = client.conversations.items.list(conversation_id=conv.id, order="asc")
out["conversation_roles"] = [i.role for i in items.data]
follow = client.responses.create(model="tiny-mllama", input="and then?", previous_response_id=r.id,
                                 max_output_tokens=16)
out["previous"] = follow.previous_response_id == r.id
out["retrieved"] = client.responses.retrieve(r.id).id == r.id
out["listed"] = r.id in [x.id for x in client.responses.list(limit=50).data]
out["input_items"] = [i.type for i in client.responses.input_items.list(response_id=r.id).data]
client.responses.delete(r.id)
try:
    client.responses.retrieve(r.id)
    out["deleted"] = False
except NotFoundError:
    out["deleted"] = True
out["conversation_deleted"] = client.conversations.delete(conv.id).deleted
print(json.dumps(out))
