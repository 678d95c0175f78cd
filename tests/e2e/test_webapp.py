"""The web app at /ui, end to end in a real headless Chromium against a real server with the tiny Mllama.

What the random model writes is never checked: only that text streamed in, that cited pages appear as
thumbnails, and that the cited region is drawn where the chunk's bbox says (scaled from PDF points to the
displayed image). Screenshots of every step land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from webapp_browser import Browser, require_browser

from vistack.testing import documents as docs
from vistack.testing.server import ServerProcess, tiny_distribution

pytestmark = pytest.mark.slow

MODEL = "transformers/tiny-mllama"
API_KEY = "sk-analyst-5f0c9a7e21b44d3e"
# attach_wait_s 0: attaching answers at once with "in_progress", so the UI's progress display and polling run;
# max_pages leaves room for the 60-page document whose ingestion is long enough to watch
SETTINGS = {"max_pages": 100, "page_image_dpi": 72, "attach_wait_s": 0}
PX = 2.5  # tolerance, in CSS pixels, for boxes drawn over page images


@pytest.fixture(scope="module", autouse=True)
def _browser_first() -> None:
    """Skip (or fail, under VISTACK_REQUIRE_BROWSER=1) before any server is started."""
    require_browser()


@pytest.fixture(scope="module")
def server(tiny_mllama_dir, tmp_path_factory):
    dist = tiny_distribution(tiny_mllama_dir, documents=True, guard=True, vector_stores=SETTINGS)
    with ServerProcess(dist, tmp_path_factory.mktemp("webapp")) as proc:
        yield proc


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        yield client


def wait_ingested(http: httpx.Client, store_id: str, count: int, timeout_s: float = 180) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        files = http.get(f"/v1/vector_stores/{store_id}/files", params={"limit": 100}).json()["data"]
        if len(files) == count and all(f["status"] != "in_progress" for f in files):
            return files
        assert time.monotonic() < deadline, f"ingestion did not finish: {files}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def report_store(http):
    """A store with the annual report and the invoice, made through the API (the Ask tests start from it)."""
    report, invoice = docs.annual_report_pdf(), docs.invoice_pdf()
    ids = [http.post("/v1/files", files={"file": (d.filename, d.data, d.mime_type)},
                     data={"purpose": "assistants"}).json()["id"] for d in (report, invoice)]
    store = http.post("/v1/vector_stores", json={"name": "Finance documents", "file_ids": ids}).json()
    files = wait_ingested(http, store["id"], 2)
    assert all(f["status"] == "completed" for f in files), files
    return {"id": store["id"], "report": report, "invoice": invoice, "file_ids": ids}


# ----- helpers --------------------------------------------------------------------------------------


def rect(b: Browser, el) -> dict:
    return b.js("const r = arguments[0].getBoundingClientRect();"
                "return {x: r.left, y: r.top, w: r.width, h: r.height};", el)


def image_loaded(b: Browser, el) -> bool:
    return bool(b.js("return arguments[0].complete && arguments[0].naturalWidth > 0;", el))


def box_covers(outer: str, inner: str, slack: float = 0.5) -> bool:
    """A chunk's bbox holds a citation's (the same box, or one of the chunk's blocks)."""
    o, i = ([float(v) for v in box.split(",")] for box in (outer, inner))
    return i[0] >= o[0] - slack and i[1] >= o[1] - slack and i[2] <= o[2] + slack and i[3] <= o[3] + slack


def assert_box_on_bbox(b: Browser, img, box, bbox: str, page_size: str) -> None:
    """The element `box` covers `bbox` (PDF points) on the displayed page image `img`, within PX pixels."""
    x0, y0, x1, y1 = (float(v) for v in bbox.split(","))
    pw, ph = (float(v) for v in page_size.split(","))
    i, m = rect(b, img), rect(b, box)
    sx, sy = i["w"] / pw, i["h"] / ph
    assert abs(sx - sy) < 0.02, f"the page image is not the page's aspect ratio: {i}, {page_size}"
    expected = {"x": i["x"] + x0 * sx, "y": i["y"] + y0 * sy, "w": (x1 - x0) * sx, "h": (y1 - y0) * sy}
    for key, value in expected.items():
        assert abs(m[key] - value) <= PX, f"{key}: box at {m}, bbox {bbox} scaled to the image is {expected}"


def select_store(b: Browser, store_id: str) -> None:
    box = b.wait(lambda d: next((c for c in b.tids("store-choice") if c.get_attribute("value") == store_id), False),
                 message="the store is not offered in Ask")
    if not box.is_selected():
        b.css(f'label[for="{box.get_attribute("id")}"]').click()
    assert box.is_selected()


def choose(b: Browser, testid: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    b.wait(lambda d: any(o.get_attribute("value") == value for o in b.all("option", b.tid(testid))),
           message=f"{testid} has no option {value}")
    Select(b.tid(testid)).select_by_value(value)


def wait_answer_done(b: Browser, index: int, timeout: float = 180):
    def done(_):
        answers = b.tids("answer")
        return answers[index] if len(answers) > index and answers[index].get_attribute("data-state") != "streaming" \
            else False
    return b.wait(done, timeout, "the answer did not finish")


def file_row(b: Browser, filename: str):
    for row in b.tids("file-row"):
        if row.get_attribute("data-filename") == filename:
            return row
    return None


# ----- documents ---------------------------------------------------------------------------------------


def test_documents_upload_progress_viewer_and_failure(browser: Browser, server, http, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    b = browser
    b.driver.get(server.base_url + "/")  # redirects to /ui/
    assert "/ui/" in b.driver.current_url
    b.visible("store-detail")
    b.wait(lambda d: b.tid("stores-status").text != "", message="the store list did not load")
    b.shot("documents-start")

    # a new store, selected at once
    b.tid("new-store-name").send_keys("Quarterly reports")
    b.tid("create-store").click()
    b.wait(lambda d: b.tid("store-title").text == "Quarterly reports", message="the new store is not shown")
    store_id = b.css('[data-testid=store-item][aria-current="true"]').get_attribute("data-store-id")
    assert store_id.startswith("vs_")
    b.shot("store-created")

    # a folder with two PDFs, through the folder picker (webkitdirectory), with attributes
    report, invoice = docs.annual_report_pdf(), docs.invoice_pdf()
    folder = tmp_path / "reports"
    folder.mkdir()
    for d in (report, invoice):
        (folder / d.filename).write_bytes(d.data)
    (folder / ".DS_Store").write_bytes(b"\0")  # hidden files in a picked folder are not documents
    b.tid("upload-attributes").send_keys("department=finance, year=2025")
    b.tid("folder-input").send_keys(str(folder))
    b.wait(lambda d: len(b.tids("file-row")) == 2, message="the two uploaded files are not listed")
    b.wait(lambda d: all(r.get_attribute("data-status") == "completed" for r in b.tids("file-row")), 180,
           "the two PDFs did not complete in the UI")
    assert {r.get_attribute("data-filename") for r in b.tids("file-row")} == {report.filename, invoice.filename}
    assert "department: finance" in file_row(b, report.filename).text
    b.wait(lambda d: "2 completed" in b.tid("files-status").text)
    b.shot("folder-ingested")

    # a long document and a corrupt one, through the file picker (multiple files): progress, then the reason
    long_doc, bad = docs.long_report_pdf(pages=60), docs.truncated_pdf()
    b.tid("upload-attributes").clear()
    paths = []
    for d in (long_doc, bad):
        paths.append(tmp_path / d.filename)
        paths[-1].write_bytes(d.data)
    b.tid("file-input").send_keys("\n".join(str(p) for p in paths))
    progress: list[str] = []  # what the long document's row said while it was ingested

    def long_doc_done(_) -> bool:
        row = file_row(b, long_doc.filename)
        if row is None:
            return False
        bars = b.tids("file-progress", row)
        if bars:
            text = bars[0].find_element("xpath", "..").text
            if not progress or progress[-1] != text:
                progress.append(text)
                if re.fullmatch(r"\d+ of 60 pages", text) and sum("of 60" in t for t in progress) == 1:
                    b.shot("ingestion-progress")
        return row.get_attribute("data-status") == "completed"
    b.wait(long_doc_done, 240, "the long document did not complete")
    assert progress, "no progress indication while the long document was ingested"
    assert any(re.fullmatch(r"\d+ of 60 pages", t) for t in progress), progress
    bad_row = b.wait(lambda d: (r := file_row(b, bad.filename)) is not None
                     and r.get_attribute("data-status") == "failed" and r, 120, "the corrupt file did not fail")
    reason = b.tid("file-error", bad_row).text
    api_files = {f["id"]: f for f in http.get(f"/v1/vector_stores/{store_id}/files", params={"limit": 100}).json()["data"]}
    failed = [f for f in api_files.values() if f["status"] == "failed"]
    assert len(failed) == 1 and reason == failed[0]["last_error"]["message"]
    assert "damaged or truncated" in reason
    b.wait(lambda d: "Checking progress" not in b.tid("files-status").text, message="polling did not stop")
    b.shot("failed-file-reason")

    # filters: by status, by attribute
    Select(b.tid("filter-status")).select_by_value("failed")
    b.wait(lambda d: [r.get_attribute("data-filename") for r in b.tids("file-row")] == [bad.filename])
    b.shot("filter-failed")
    Select(b.tid("filter-status")).select_by_value("")
    b.tid("filter-attr-key").send_keys("department")
    b.tid("filter-attr-value").send_keys("finance")
    b.wait(lambda d: {r.get_attribute("data-filename") for r in b.tids("file-row")} == {report.filename,
                                                                                       invoice.filename})
    b.tid("filter-clear").click()
    b.wait(lambda d: len(b.tids("file-row")) == 4)

    # open the report: page images with chunk boxes where the chunks' bboxes are
    file_row(b, report.filename).find_element("css selector", "[data-testid=open-file]").click()
    viewer = b.visible("page-viewer")
    assert viewer.tag_name == "dialog"
    assert b.tid("viewer-title").text == report.filename
    img = b.wait(lambda d: (i := b.tid("viewer-image")) and image_loaded(b, i) and i, message="no page image")
    assert b.tid("viewer-image").get_attribute("src").startswith("blob:")
    boxes = b.wait(lambda d: b.tids("chunk-box", viewer), message="no chunk boxes on page 1")
    report_id = file_row(b, report.filename).get_attribute("data-file-id")
    chunks = http.get(f"/v1/vector_stores/{store_id}/files/{report_id}/content",
                      params={"include_metadata": "true"}).json()["data"]
    page1 = [c for c in chunks if c["metadata"]["page"] == 1]
    assert len(boxes) == len(page1)
    for box in boxes:
        bbox = box.get_attribute("data-bbox")
        assert bbox in {c["metadata"]["bbox"] for c in page1}
        assert_box_on_bbox(b, img, box, bbox, box.get_attribute("data-page-size"))
    ActionChains(b.driver).move_to_element(boxes[0]).perform()
    b.wait(lambda d: b.tid("chunk-text").text.strip() in {c["text"].strip() for c in page1},
           message="hovering a chunk box does not show its text")
    b.shot("viewer-page-1")
    b.tid("viewer-next").click()
    b.wait(lambda d: b.tid("viewer-stage").get_attribute("data-page") == "2")
    b.wait(lambda d: image_loaded(b, b.tid("viewer-image")))
    page2 = [c for c in chunks if c["metadata"]["page"] == 2]
    box = b.wait(lambda d: b.tids("chunk-box", viewer))[0]
    assert box.get_attribute("aria-label").startswith("Chunk 1 of")
    ActionChains(b.driver).move_to_element(b.tid("viewer-title")).perform()  # no hover: the keyboard alone
    for _ in range(5):  # Next -> Close -> the first chunk box: keyboard focus shows its text too
        if b.js("return document.activeElement.dataset.testid") == "chunk-box":
            break
        ActionChains(b.driver).send_keys(Keys.TAB).perform()
    assert b.js("return document.activeElement") == box
    b.wait(lambda d: b.tid("chunk-text").text.strip() in {c["text"].strip() for c in page2})
    b.shot("viewer-page-2-focus")
    box.send_keys(Keys.PAGE_DOWN)
    b.wait(lambda d: b.tid("viewer-stage").get_attribute("data-page") == "3", message="Page Down did not turn")
    # the focused box went with its page: focus stays on the page, so the keys keep turning pages
    assert b.js("return arguments[0].contains(document.activeElement)", b.tid("viewer-stage"))
    ActionChains(b.driver).send_keys(Keys.PAGE_UP).perform()
    b.wait(lambda d: b.tid("viewer-stage").get_attribute("data-page") == "2", message="Page Up did not turn back")
    b.tid("viewer-close").send_keys(Keys.ESCAPE)
    b.wait(lambda d: not viewer.is_displayed(), message="Escape did not close the viewer")
    focused = b.js("return document.activeElement")
    assert focused.get_attribute("data-testid") == "open-file"
    assert focused.find_element("xpath", "ancestor::tr").get_attribute("data-filename") == report.filename

    # removing a file and deleting the store ask first (Escape is "no")
    file_row(b, bad.filename).find_element("css selector", "[data-testid=remove-file]").click()
    confirm = b.visible("confirm-dialog")
    assert b.js("return document.activeElement.dataset.testid") == "confirm-cancel"
    b.tid("confirm-cancel").send_keys(Keys.ESCAPE)
    b.wait(lambda d: not confirm.is_displayed())
    assert file_row(b, bad.filename) is not None
    file_row(b, bad.filename).find_element("css selector", "[data-testid=remove-file]").click()
    b.visible("confirm-dialog")
    b.tid("confirm-ok").click()
    b.wait(lambda d: file_row(b, bad.filename) is None and len(b.tids("file-row")) == 3,
           message="the removed file is still listed")
    assert http.get(f"/v1/vector_stores/{store_id}/files/{failed[0]['id']}").status_code == 404

    # a file dropped on the drop zone (a synthetic drop: WebDriver cannot drag from the desktop)
    notes = docs.markdown_file()
    b.js("""const [zone, name, text] = arguments;
            const dt = new DataTransfer();
            dt.items.add(new File([text], name, {type: "text/markdown"}));
            for (const type of ["dragenter", "dragover", "drop"]) {
              zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
            }""", b.tid("drop-zone"), notes.filename, notes.data.decode())
    b.wait(lambda d: (r := file_row(b, notes.filename)) is not None and r.get_attribute("data-status") == "completed",
           120, "the dropped file was not ingested")
    b.tid("delete-store").click()
    b.visible("confirm-dialog")
    b.shot("confirm-delete-store")
    b.tid("confirm-ok").click()
    b.wait(lambda d: not any(s.get_attribute("data-store-id") == store_id for s in b.tids("store-item")),
           message="the deleted store is still listed")
    assert http.get(f"/v1/vector_stores/{store_id}").status_code == 404


# ----- asking ------------------------------------------------------------------------------------------


def test_ask_streams_an_answer_and_opens_the_cited_page(browser: Browser, server, http, report_store) -> None:
    from selenium.webdriver.common.keys import Keys

    b = browser
    b.driver.get(server.base_url + "/ui/#ask")
    b.visible("chat")
    select_store(b, report_store["id"])
    choose(b, "model-select", MODEL)
    choose(b, "strategy-select", "top1")
    b.shot("ask-ready")

    question = report_store["report"].fact("revenue").query
    b.tid("question").send_keys(question)
    b.tid("ask-submit").click()
    answer = wait_answer_done(b, 0)
    assert answer.get_attribute("data-state") == "done", answer.text
    text = b.tid("answer-text", answer).text
    assert text.strip(), "no answer text streamed in"
    assert int(answer.get_attribute("data-deltas")) >= 2, "the answer did not arrive as a stream of deltas"
    assert answer.get_attribute("aria-busy") == "false"
    thumbs = b.wait(lambda d: b.tids("citation-thumb", answer), message="no cited page thumbnail")
    thumb_img = b.tid("citation-thumb-image", thumbs[0])
    b.wait(lambda d: image_loaded(b, thumb_img), message="the thumbnail image did not load")
    assert thumb_img.get_attribute("src").startswith("blob:")
    assert "Answer ready" in b.tid("ask-status").text
    b.shot("answer-with-cited-pages")

    # the cited page: image, highlighted region at the citation's bbox, the retrieved text beside it
    thumbs[0].click()
    dialog = b.visible("citation-dialog")
    img = b.wait(lambda d: (i := b.tid("citation-image", dialog)) and image_loaded(b, i) and i,
                 message="the cited page image did not load")
    mark = b.tid("citation-highlight", dialog)
    bbox, page_size = mark.get_attribute("data-bbox"), mark.get_attribute("data-page-size")
    assert_box_on_bbox(b, img, mark, bbox, page_size)
    conversation = b.js("return sessionStorage.getItem('vistack.ask.conversation')")
    assert conversation and conversation.startswith("conv_")
    items = http.get(f"/v1/conversations/{conversation}/items", params={"order": "asc"}).json()["data"]
    annotations = [a for i in items if i["type"] == "message" and i["role"] == "assistant"
                   for part in i["content"] for a in part.get("annotations", [])]
    assert annotations and bbox in {a["bbox"] for a in annotations}
    cited = next(a for a in annotations if a["bbox"] == bbox)
    assert b.tid("citation-title", dialog).text == f"{cited['filename']}, page {cited['page']}"
    b.wait(lambda d: b.tid("citation-text", dialog).text.strip() not in ("", "Loading the retrieved text…"))
    chunks = http.get(f"/v1/vector_stores/{report_store['id']}/files/{cited['file_id']}/content",
                      params={"include_metadata": "true"}).json()["data"]
    # the citation outlines the block of the chunk that the question points at (or the whole chunk)
    assert b.tid("citation-text", dialog).text.strip() in {c["text"].strip() for c in chunks
                                                           if box_covers(c["metadata"]["bbox"], bbox)}
    # when the citation names one block of a chunk, that block is also marked in the retrieved text
    chunk = next(c for c in chunks if box_covers(c["metadata"]["bbox"], bbox))
    spans = dict(reversed(p.split(":")) for p in (chunk["metadata"].get("passage_boxes") or "").split(";") if p)
    if bbox in spans:
        start, end = (int(v) for v in spans[bbox].split("-"))
        passage = next(p for p in b.tids("citation-passage", dialog) if p.get_attribute("data-bbox") == bbox)
        assert passage.text.strip() == chunk["text"][start:end].strip()
    # a click on the dialog's own padding is inside it: the dialog stays open
    b.js("""const d = arguments[0], r = d.getBoundingClientRect();
            d.dispatchEvent(new MouseEvent("click", {bubbles: true, clientX: r.left + 4, clientY: r.top + r.height / 2}));""",
         dialog)
    assert dialog.is_displayed(), "a click inside the dialog closed it"
    b.shot("cited-page-highlighted")
    b.js("document.activeElement.blur()")
    b.tid("citation-close").send_keys(Keys.ESCAPE)
    b.wait(lambda d: not dialog.is_displayed(), message="Escape did not close the dialog")
    assert b.js("return document.activeElement.dataset.testid") == "citation-thumb", "focus did not return"

    # a follow-up in the same conversation with another visual strategy
    choose(b, "strategy-select", "per_page")
    b.tid("question").send_keys(report_store["report"].fact("headcount").query + Keys.ENTER)
    second = wait_answer_done(b, 1)
    assert second.get_attribute("data-state") == "done" and b.tid("answer-text", second).text.strip()
    assert b.js("return sessionStorage.getItem('vistack.ask.conversation')") == conversation
    b.wait(lambda d: b.tids("citation-thumb", second), message="the follow-up cites no page")

    # a reload shows the conversation again, cited pages included
    b.driver.refresh()
    b.wait(lambda d: len(b.tids("answer")) == 2 and len(b.tids("turn-user")) == 2, message="history not restored")
    restored = b.wait(lambda d: b.tids("citation-thumb", b.tids("answer")[0]))
    restored[0].click()
    dialog = b.visible("citation-dialog")
    img = b.wait(lambda d: (i := b.tid("citation-image", dialog)) and image_loaded(b, i) and i)
    mark = b.tid("citation-highlight", dialog)
    assert_box_on_bbox(b, img, mark, mark.get_attribute("data-bbox"), mark.get_attribute("data-page-size"))
    b.wait(lambda d: b.tid("citation-text", dialog).text.strip() not in ("", "Loading the retrieved text…"))
    b.tid("citation-close").click()
    b.shot("conversation-restored")

    # a new conversation starts empty
    b.tid("new-conversation").click()
    b.wait(lambda d: not b.tids("answer"))
    assert b.js("return sessionStorage.getItem('vistack.ask.conversation')") is None

    # a guard refusal is shown as a refusal (the tiny guard's unreadable verdict fails closed)
    shield = next(c for c in b.tids("shield-choice") if c.get_attribute("value") == "llama-guard")
    b.css(f'label[for="{shield.get_attribute("id")}"]').click()
    b.tid("question").send_keys("Summarize the annual report.")
    b.tid("ask-submit").click()
    answer = wait_answer_done(b, 0)
    refusal = b.visible("refusal")
    assert refusal.get_attribute("role") == "alert" and answer.get_attribute("data-state") == "refused"
    assert "I can't answer that" in refusal.text
    assert b.js("return getComputedStyle(arguments[0]).backgroundColor", refusal) != \
        b.js("return getComputedStyle(arguments[0]).backgroundColor", answer), "the refusal has no distinct style"
    b.shot("guard-refusal")


def test_search_only_mode_ranks_pages_with_scores(browser: Browser, server, http, report_store) -> None:
    from selenium.webdriver.support.ui import Select

    b = browser
    b.driver.get(server.base_url + "/ui/#ask")
    select_store(b, report_store["id"])
    b.css(f'label[for="{b.tid("mode-search").get_attribute("id")}"]').click()
    b.visible("search-view")
    assert not b.tid("chat").is_displayed()
    query = report_store["report"].fact("revenue").query
    b.tid("search-query").send_keys(query)
    b.tid("search-submit").click()
    results = b.wait(lambda d: b.tids("search-result"), message="no search results")
    scores = [float(r.get_attribute("data-score")) for r in results]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    assert b.tid("result-score", results[0]).text == f"Score {scores[0]:.4f}"
    api = http.post(f"/v1/vector_stores/{report_store['id']}/search",
                    json={"query": query, "max_num_results": 10, "search_mode": "hybrid"}).json()["data"]
    assert len(results) == len(api)
    top = api[0]
    assert b.js("return arguments[0].textContent", b.css(".result-title", results[0])) == \
        f"Result 1: {top['filename']}, page {top['attributes']['page']}"
    for r in results[:3]:
        thumb_img = b.tid("result-thumb-image", r)
        b.wait(lambda d, i=thumb_img: image_loaded(b, i), message="a result thumbnail did not load")
    b.shot("search-results")

    b.tid("result-thumb", results[0]).click()
    dialog = b.visible("citation-dialog")
    img = b.wait(lambda d: (i := b.tid("citation-image", dialog)) and image_loaded(b, i) and i)
    mark = b.tid("citation-highlight", dialog)
    # the block of the top chunk that the query names (the server's passage_bbox), else the whole chunk
    spans = [p.split(":")[1] for p in (top["attributes"].get("passage_boxes") or "").split(";") if p]
    assert top["passage_bbox"] is None or top["passage_bbox"] in spans
    assert mark.get_attribute("data-bbox") == (top["passage_bbox"] or top["attributes"]["bbox"])
    assert_box_on_bbox(b, img, mark, mark.get_attribute("data-bbox"), top["attributes"]["page_size"])
    assert b.tid("citation-text", dialog).text.strip() == top["content"][0]["text"].strip()
    b.shot("search-result-opened")
    b.tid("citation-close").click()

    # an attribute filter: only page 2
    b.tid("add-filter").click()
    b.tid("filter-key").send_keys("page")
    Select(b.tid("filter-op")).select_by_value("eq")
    b.tid("filter-value").send_keys("2")
    b.tid("search-submit").click()
    b.wait(lambda d: b.tids("search-result") and all(", page 2" in b.css(".result-title", r).text
                                                     for r in b.tids("search-result")),
           message="the page filter was not applied")
    b.shot("search-filtered")


# ----- models and safety, keyboard --------------------------------------------------------------------


def test_models_and_safety_view_and_keyboard_tabs(browser: Browser, server) -> None:
    from selenium.webdriver.common.keys import Keys

    b = browser
    b.driver.get(server.base_url + "/ui/")
    b.visible("store-detail")
    tab = b.tid("tab-documents")
    b.js("arguments[0].focus()", tab)
    tab.send_keys(Keys.ARROW_RIGHT)
    b.wait(lambda d: b.tid("tab-ask").get_attribute("aria-selected") == "true")
    assert b.js("return document.activeElement.dataset.testid") == "tab-ask"
    b.tid("tab-ask").send_keys(Keys.END)
    b.wait(lambda d: b.tid("tab-models").get_attribute("aria-selected") == "true")
    assert b.driver.current_url.endswith("#models")
    b.visible("models-table")

    def row(kind: str, ident: str):
        return next((r for r in b.tids(kind) if r.get_attribute("data-id") == ident), None)

    b.wait(lambda d: row("model-row", MODEL) is not None)
    assert row("model-row", MODEL).get_attribute("data-ok") == "true"
    missing = row("model-row", "transformers/missing-vision")
    assert missing.get_attribute("data-ok") == "false" and "not available" in missing.text
    assert row("shield-row", "llama-guard").get_attribute("data-ok") == "true"
    assert row("provider-row", "chromadb") is not None
    b.shot("models-and-safety")


# ----- authentication --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tiny_mllama_dir, tmp_path_factory):
    dist = tiny_distribution(tiny_mllama_dir, name="auth", documents=True, vector_stores=SETTINGS)
    dist["server"] = {"auth": {"api_keys": [{"key": API_KEY, "principal": "analyst", "tenant": "finance"}]}}
    with ServerProcess(dist, tmp_path_factory.mktemp("webapp-auth")) as proc:
        yield proc


def test_api_key_prompt_wrong_key_right_key_and_sign_out(browser: Browser, auth_server) -> None:
    from selenium.webdriver.common.keys import Keys

    b = browser
    b.expect_console(r"status of 401")  # the refused calls that make the app ask for a key
    b.driver.get(auth_server.base_url + "/ui/")
    dialog = b.visible("auth-dialog")
    key_input = b.tid("auth-key-input")
    assert b.js("return document.activeElement") == key_input
    assert key_input.get_attribute("type") == "password"
    b.shot("key-prompt")

    key_input.send_keys("sk-wrong-key")
    b.tid("auth-submit").click()
    error = b.visible("auth-error")
    assert "refused this key" in error.text
    assert dialog.is_displayed()
    assert b.js("return sessionStorage.getItem('vistack.apiKey')") is None
    b.shot("wrong-key-refused")

    key_input.clear()
    key_input.send_keys(API_KEY + Keys.ENTER)
    b.wait(lambda d: not dialog.is_displayed(), message="the right key was not accepted")
    b.wait(lambda d: "No stores yet" in b.tid("stores-status").text, message="the app did not load after sign-in")
    assert b.tid("sign-out").is_displayed()
    assert b.js("return sessionStorage.getItem('vistack.apiKey')") == API_KEY
    assert b.js("return localStorage.length") == 0
    assert API_KEY not in b.driver.current_url
    b.tid("new-store-name").send_keys("Private store")
    b.tid("create-store").click()
    b.wait(lambda d: b.tid("store-title").text == "Private store")
    b.shot("signed-in")

    b.tid("sign-out").click()
    dialog = b.visible("auth-dialog")
    assert b.js("return sessionStorage.getItem('vistack.apiKey')") is None
    b.shot("signed-out")
    b.tid("auth-key-input").send_keys(Keys.ESCAPE)
    b.wait(lambda d: not dialog.is_displayed(), message="Escape did not close the key dialog")
    banner = b.visible("error-banner")
    assert "Sign-in cancelled" in banner.text
    b.shot("sign-in-cancelled")

    # signing in later, from the header
    b.visible("sign-in").click()
    b.visible("auth-dialog")
    b.tid("auth-key-input").send_keys(API_KEY + Keys.ENTER)
    b.wait(lambda d: any(s.text.startswith("Private store") for s in b.tids("store-item")),
           message="the app did not reload with the key")
    assert b.tid("sign-out").is_displayed() and not b.tid("sign-in").is_displayed()
