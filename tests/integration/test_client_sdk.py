"""The high-level SDK (``vistack.client.Vistack`` / ``AsyncVistack``) against a real server.

The tiny random Mllama says nothing meaningful, so nothing here asserts on
answer text; retrieval is real (the search runs before the model), so the
cited pages and search hits are asserted exactly.
"""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from vistack.client import (
    AsyncVistack,
    Citation,
    Done,
    IngestProgress,
    SearchDone,
    SearchStarted,
    TextDelta,
    Vistack,
    VistackAPIError,
)
from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

pytestmark = pytest.mark.slow

SETTINGS = {"max_pages": 30, "page_image_dpi": 72}
REPORT = docs.annual_report_pdf()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server(tiny_mllama_dir, tmp_path_factory):
    dist = tiny_distribution(tiny_mllama_dir, documents=True, vector_stores=SETTINGS)
    with ServerProcess(dist, tmp_path_factory.mktemp("sdk")) as proc:
        yield proc


@pytest.fixture(scope="module")
def vs(server):
    with Vistack(server.base_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def ingested(vs, tmp_path_factory):
    root = tmp_path_factory.mktemp("sdk-docs")
    (root / "reports" / "scans").mkdir(parents=True)
    (root / "reports" / REPORT.filename).write_bytes(REPORT.data)
    (root / "reports" / docs.invoice_pdf().filename).write_bytes(docs.invoice_pdf().data)
    (root / "reports" / "scans" / docs.encrypted_pdf().filename).write_bytes(docs.encrypted_pdf().data)
    (root / "notes.xyz").write_text("not a document type we ingest")
    events: list[IngestProgress] = []
    report = vs.ingest([root / "reports", root / "notes.xyz", root / "missing.pdf"], "finance",
                       progress=events.append, timeout_s=180)
    return {"report": report, "events": events, "root": root}


def test_ingest_reports_every_file(ingested):
    report, events = ingested["report"], ingested["events"]
    by_name = {f.path.rsplit("/", 1)[-1]: f for f in report.files}
    assert set(by_name) == {REPORT.filename, docs.invoice_pdf().filename, docs.encrypted_pdf().filename,
                            "notes.xyz", "missing.pdf"}
    assert by_name[REPORT.filename].status == "completed" and by_name[REPORT.filename].pages == 6
    assert by_name[REPORT.filename].file_id.startswith("file-")
    assert by_name[docs.invoice_pdf().filename].status == "completed"
    encrypted = by_name[docs.encrypted_pdf().filename]
    assert encrypted.status == "failed" and "password" in encrypted.reason.lower()
    assert by_name["notes.xyz"].status == "skipped" and "unsupported" in by_name["notes.xyz"].reason
    assert by_name["missing.pdf"].status == "skipped" and "no such file" in by_name["missing.pdf"].reason
    assert not report.ok and len(report.completed) == 2 and report.pages == 7
    assert report.store_name == "finance" and report.store_id.startswith("vs_")
    # progress: three uploads, then each file once, ending with "done" at 3 of 3
    assert [e.stage for e in events].count("uploading") == 3 and events[-1].stage == "done"
    done = [e.files_done for e in events]
    assert done == sorted(done) and events[-1].files_done == events[-1].files_total == 3
    assert {e.file.status for e in events if e.file} == {"completed", "failed"}
    assert events[-1].pages_done == events[-1].pages_total == 8  # estimated: the encrypted file counts 1


def test_ingest_into_a_store_by_id_reuses_it(vs, ingested):
    store_id = ingested["report"].store_id
    again = vs.ingest(ingested["root"] / "reports" / docs.invoice_pdf().filename, store_id, timeout_s=120,
                      attributes={"source": "re-ingest"})
    assert again.store_id == store_id and again.ok and [f.status for f in again.files] == ["completed"]


def test_ask_cites_the_page_of_the_fact_and_saves_it(vs, ingested, tmp_path):
    fact = REPORT.fact("revenue")
    answer = vs.ask(fact.query, "finance", strategy="top1", max_output_tokens=16)
    assert answer.response_id.startswith("resp_") and answer.status in ("completed", "incomplete")
    assert answer.model == vs.default_model() and "tiny-mllama" in answer.model
    assert answer.usage is not None and answer.usage.output_tokens <= 16
    assert answer.results and answer.results[0].page == fact.page
    assert answer.results[0].filename == REPORT.filename
    report_id = next(f.file_id for f in ingested["report"].files if f.path.endswith(REPORT.filename))
    assert len(answer.pages) == 1  # top1: the model saw (and the answer cites) one page
    cited = answer.citations[0]
    assert (cited.file_id, cited.filename, cited.page) == (report_id, REPORT.filename, fact.page)
    assert len(cited.bbox.split(",")) == 4 and cited.page_image_file_id.startswith("file-")
    assert cited.vector_store_id == ingested["report"].store_id and cited.source == 1
    assert 0 <= cited.index <= len(answer.text)
    assert answer.page_png(0).startswith(PNG_MAGIC)
    saved = answer.save_pages(tmp_path / "pages")
    assert [p.name for p in saved] == [f"northwind-annual-report-2025-p{fact.page}.png"]
    assert Image.open(io.BytesIO(saved[0].read_bytes())).format == "PNG"
    data = answer.to_dict()
    assert data["citations"][0]["page"] == fact.page and "_images" not in data


def test_ask_several_stores_by_name_and_id(vs, ingested):
    store_id = ingested["report"].store_id
    answer = vs.ask(docs.INVOICE_NUMBER, ["finance", store_id], strategy="text", max_output_tokens=16)
    assert answer.results[0].filename == docs.invoice_pdf().filename
    assert {c.vector_store_id for c in answer.citations} == {store_id}


def test_ask_stream_event_order(vs, ingested):
    fact = REPORT.fact("headcount")
    events = list(vs.ask_stream(fact.query, "finance", strategy="stitch", pages=2, max_output_tokens=16))
    kinds = [type(e) for e in events]
    assert kinds[0] is SearchStarted and kinds[1] is SearchDone and kinds[-1] is Done
    assert kinds.count(Done) == 1
    first_citation = kinds.index(Citation)
    assert all(k is Citation for k in kinds[first_citation:-1])  # citations follow the text they cite
    assert all(k is TextDelta for k in kinds[2:first_citation])
    assert events[0].queries == [fact.query]
    answer = events[-1].answer
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == answer.text
    assert [e.cited for e in events if isinstance(e, Citation)] == answer.citations
    assert events[1].results[0].page == fact.page and events[1].results == answer.results
    assert len(answer.pages) == 2 and answer.pages[0].page == fact.page  # stitch of the two best pages
    assert answer.page_png(answer.pages[1]).startswith(PNG_MAGIC)  # the sync client binds its page fetcher


def test_chat_keeps_history_in_a_conversation(vs, ingested):
    chat = vs.chat("finance", max_output_tokens=16)
    assert chat.id.startswith("conv_") and chat.items() == []
    first = chat.send("What was total revenue?")
    assert first.conversation_id == chat.id and first.citations
    events = list(chat.send_stream("And the headcount?"))
    assert isinstance(events[-1], Done) and events[-1].answer.conversation_id == chat.id
    items = chat.items()
    messages = [(i["role"], "".join(p.get("text", "") for p in i["content"])) for i in items if i["type"] == "message"]
    assert [m[0] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0][1] == "What was total revenue?" and messages[2][1] == "And the headcount?"
    assert messages[3][1] == events[-1].answer.text
    assert [i["type"] for i in items].count("file_search_call") == 2
    old = chat.id
    assert chat.new() != old and chat.items() == []


def test_async_client(server, ingested, tmp_path):
    fact = REPORT.fact("revenue")

    async def main():
        async with AsyncVistack(server.base_url, timeout=120) as client:
            answer = await client.ask(fact.query, "finance", max_output_tokens=16)
            saved = await answer.asave_pages(tmp_path)
            with pytest.raises(VistackAPIError, match="asave_pages"):
                answer.save_pages(tmp_path)  # sync fetch needs the sync client
            kinds = [type(e).__name__ async for e in client.ask_stream(fact.query, "finance", max_output_tokens=16)]
            chat = await client.chat("finance", max_output_tokens=16)
            await chat.send("hello")
            return answer, saved, kinds, await chat.items()

    answer, saved, kinds, items = asyncio.run(main())
    assert answer.results[0].page == fact.page and saved and all(p.read_bytes().startswith(PNG_MAGIC) for p in saved)
    assert kinds[:2] == ["SearchStarted", "SearchDone"] and kinds[-1] == "Done"
    assert [i["role"] for i in items if i["type"] == "message"] == ["user", "assistant"]


def test_errors_are_vistack_api_errors(vs, ingested):
    with pytest.raises(VistackAPIError, match="no vector store named 'nope'") as e:
        vs.ask("x", "nope")
    assert e.value.status_code == 404
    with pytest.raises(VistackAPIError, match="Model 'no-such-model' not found") as e:
        vs.ask("x", "finance", model="no-such-model")
    assert e.value.status_code == 404
    with pytest.raises(VistackAPIError) as e:
        vs.ask("x", "finance", strategy="sideways")
    assert e.value.status_code == 400
    with pytest.raises(VistackAPIError, match="no vector store 'vs_missing'"):
        vs.ingest(ingested["root"] / "reports", "vs_missing")  # an unknown id is never created as a name
    with Vistack("http://127.0.0.1:9", timeout=5) as down, pytest.raises(VistackAPIError) as e:
        down.ask("x", "finance")
    assert e.value.status_code == 503 and "cannot reach the vistack server at http://127.0.0.1:9" in e.value.message
