"""Runs inside .venv-llama-stack against a real ``llama stack run`` serving vistack's external providers.

argv: base URL, a PDF to ingest, a question whose answer is in it, the embedding model's id.
Drives the server with the official llama-stack-client 0.7.5 (and plain HTTP for the file processor,
which that client has no method for) and prints one JSON object of observations; the pytest side
asserts on it. Nothing here depends on what the random model says.
"""

import base64
import io
import json
import sys
import time

import httpx
from llama_stack_client import BadRequestError, LlamaStackClient
from PIL import Image

base_url, pdf_path, query, _embedding_model = sys.argv[1:5]
client = LlamaStackClient(base_url=base_url, max_retries=0, timeout=300)
VISION = "vistack-transformers/Llama-3.2-11B-Vision-Instruct"
GUARD = "vistack-transformers/Llama-Guard-3-11B-Vision"
out: dict = {}


def image_url(color: str) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


out["providers"] = sorted([p.api, p.provider_id] for p in client.providers.list())
out["models"] = sorted(m.id for m in client.models.list())

# ----- chat: text, image, stream -----------------------------------------------------------------------
out["chat"] = {}
messages = {
    "text": [{"role": "user", "content": "Say hello."}],
    "image": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url("navy")}},
                                           {"type": "text", "text": "What is on this page?"}]}],
}
for kind, msgs in messages.items():
    r = client.chat.completions.create(model=VISION, messages=msgs, max_tokens=3, temperature=0)
    out["chat"][kind] = {"model": r.model, "role": r.choices[0].message.role,
                         "finish_reason": r.choices[0].finish_reason,
                         "completion_tokens": r.usage.completion_tokens, "prompt_tokens": r.usage.prompt_tokens}

chunks, finish, model = 0, None, None
for chunk in client.chat.completions.create(model=VISION, messages=messages["image"], max_tokens=4, temperature=0,
                                            stream=True):
    chunks += 1
    model = chunk.model
    if chunk.choices and chunk.choices[0].finish_reason:
        finish = chunk.choices[0].finish_reason
out["stream"] = {"chunks": chunks, "finish_reason": finish, "model": model}

c = client.completions.create(model=VISION, prompt="The report says", max_tokens=2, temperature=0)
out["completion"] = {"model": c.model, "finish_reason": c.choices[0].finish_reason}

two_images = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url("red")}},
                                           {"type": "image_url", "image_url": {"url": image_url("blue")}},
                                           {"type": "text", "text": "Compare."}]}]
# Llama Stack answers an error it has no handler class for (vistack's, like its own providers' ValueError) from
# Starlette's last-resort handler, which closes the connection afterwards: ask on a connection of its own.
with LlamaStackClient(base_url=base_url, max_retries=0, timeout=300) as once:
    try:
        once.chat.completions.create(model=VISION, messages=two_images, max_tokens=2)
        out["bad_request"] = None
    except BadRequestError as e:
        out["bad_request"] = e.status_code

# ----- safety --------------------------------------------------------------------------------------------
out["shield"] = {}
for kind, msgs in messages.items():
    r = client.safety.run_shield(shield_id="llama-guard-vision", messages=msgs)
    out["shield"][kind] = None if r.violation is None else {
        "violation_level": r.violation.violation_level, "user_message": r.violation.user_message}
m = client.moderations.create(input=["first", "second"], model=GUARD)
out["moderation"] = {"model": m.model, "results": len(m.results),
                     "flagged_is_bool": all(isinstance(x.flagged, bool) for x in m.results)}

# ----- the file processor (no client method in 0.7.5: plain multipart) ----------------------------------
with open(pdf_path, "rb") as fh:
    pdf = fh.read()
r = httpx.post(f"{base_url}/v1alpha/file-processors/process", timeout=300,
               files={"file": ("report.pdf", pdf, "application/pdf")},
               data={"chunking_strategy": json.dumps({"type": "auto"})})
r.raise_for_status()
body = r.json()
meta = body["metadata"]
images = meta["page_image_file_ids"]
words = {w.lower().strip("?.,") for w in query.split() if len(w) > 4}
best = max(body["chunks"], key=lambda c: len(words & {w.lower().strip("?.,:") for w in c["content"].split()}))
out["processed"] = {
    "processor": meta["processor"], "page_count": meta["page_count"],
    "pages": sorted({c["metadata"]["page"] for c in body["chunks"]}),
    "chunk_types": sorted({c["metadata"]["chunk_type"] for c in body["chunks"]}),
    "page_images": len(images),
    "page_images_stored": all(client.files.retrieve(i).filename.endswith(".png") for i in images),
    "fact_page": best["metadata"]["page"],
}

# ----- a vector store ingesting through the file processor -----------------------------------------------
uploaded = client.files.create(file=("report.pdf", pdf, "application/pdf"), purpose="assistants")
store = client.vector_stores.create(name="reports")
attached = client.vector_stores.files.create(vector_store_id=store.id, file_id=uploaded.id)
deadline = time.monotonic() + 240
status = attached.status
while status == "in_progress" and time.monotonic() < deadline:
    time.sleep(1)
    status = client.vector_stores.files.retrieve(vector_store_id=store.id, file_id=uploaded.id).status
results = client.vector_stores.search(vector_store_id=store.id, query=query, max_num_results=5)
hits = [{"file_id": h.file_id, "attributes": h.attributes, "page": (h.attributes or {}).get("page")}
        for h in results.data]
out["vector_store"] = {"status": status, "file_id": uploaded.id, "hits": hits, "top_hit": hits[0] if hits else None}
print(json.dumps(out, default=str))
