"""Files and vector stores through the official llama-stack-client (run in its 3.12 venv).

argv: base_url, path of a PDF, query. Prints one JSON object of observations.
"""

import json
import sys
import time
from pathlib import Path

from llama_stack_client import LlamaStackClient

base_url, pdf_path, query = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
client = LlamaStackClient(base_url=base_url, max_retries=0, timeout=120)
out = {}

uploaded = client.files.create(file=(pdf_path.name, pdf_path.read_bytes(), "application/pdf"), purpose="assistants")
out["file"] = {"id": uploaded.id, "bytes": uploaded.bytes, "filename": uploaded.filename}
out["files_listed"] = uploaded.id in [f.id for f in client.files.list()]

store = client.vector_stores.create(name="compat")
attached = client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id,
                                             attributes={"department": "finance"})
out["attached_status"] = attached.status
deadline = time.monotonic() + 120
status = attached.status
while status == "in_progress" and time.monotonic() < deadline:
    time.sleep(0.3)
    status = client.vector_stores.files.retrieve(file_id=uploaded.id, vector_store_id=store.id).status
out["final_status"] = status
out["file_counts"] = client.vector_stores.retrieve(store.id).file_counts.completed

results = client.vector_stores.search(vector_store_id=store.id, query=query, search_mode="hybrid", max_num_results=3,
                                      filters={"type": "eq", "key": "department", "value": "finance"})
out["hits"] = [{"file_id": h.file_id, "page": h.attributes["page"], "text": h.content[0].text[:80]}
               for h in results.data]
out["deleted"] = client.vector_stores.delete(store.id).deleted
print(json.dumps(out))
