"""Visual strategies, citations, items and the event stream of the agent, without a server."""

from __future__ import annotations

import asyncio

from PIL import Image

from vistack.agents.citations import cite
from vistack.agents.events import ResponseEvents
from vistack.agents.items import IMAGE_PLACEHOLDER, items_to_messages, keep_newest_images
from vistack.agents.tools.file_search import Source, group_by_page
from vistack.agents.visual import PageImage, labelled, plan_calls
from vistack.api.inference import ChatMessage, ImageContentPart, ImageURL, TextContentPart
from vistack.api.responses import (
    FileSearchCallItem,
    FileSearchResult,
    FunctionCallItem,
    FunctionCallOutputItem,
    McpCallItem,
    MessageItem,
    ResponseObject,
)
from vistack.images import decode_image_url

COLORS = {1: (220, 20, 20), 2: (20, 160, 20), 3: (20, 20, 220)}


def source(n: int, page: int | None = None, image: bool = True) -> Source:
    return Source(number=n, file_id=f"file-{n}", filename=f"doc{n}.pdf", page=page or n,
                  page_image_file_id=f"file-img{n}" if image else None, bbox="10.0,20.0,300.0,80.0", score=1.0 / n,
                  vector_store_id="vs_1", texts=[f"text of source {n}"])


def page_images(size=(850, 1100)) -> dict[int, PageImage]:
    return {n: PageImage.from_image(Image.new("RGB", size, color)) for n, color in COLORS.items()}


def colors(image: Image.Image) -> set[tuple[int, int, int]]:
    return {c for _, c in image.getcolors(maxcolors=1 << 22)}


def the_image(call) -> Image.Image:
    [part] = [p for p in call.messages[-1].content if isinstance(p, ImageContentPart)]
    return decode_image_url(part.image_url.url)


def test_stitch_is_one_image_within_the_tile_budget_holding_the_chosen_pages():
    sources = [source(1), source(2), source(3)]
    [call] = plan_calls("stitch", "q?", [], sources, page_images(), pages=3, chars_per_source=500, max_side=1120)
    image = the_image(call)
    assert image.width <= 1120 and image.height <= 1120 and call.image_sizes == [image.size]
    found = colors(image)
    assert all(color in found for color in COLORS.values())  # every chosen page is in the picture
    assert [s.number for s in call.image_sources] == [1, 2, 3]
    only_two = plan_calls("stitch", "q?", [], sources, page_images(), pages=2, chars_per_source=500, max_side=1120)
    assert COLORS[3] not in colors(the_image(only_two[0]))


def test_the_mllama_processor_takes_the_stitched_image(tiny_mllama_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_mllama_dir)
    [call] = plan_calls("stitch", "What was EMEA revenue?", [], [source(1), source(2), source(3)], page_images(),
                        pages=3, chars_per_source=500, max_side=1120)
    image = the_image(call)
    inputs = processor(images=[image], text=processor.image_token + "What was EMEA revenue?", return_tensors="pt")
    assert inputs["pixel_values"].shape[:2] == (1, 1)  # one batch item, exactly one image
    tiles = int(inputs["aspect_ratio_mask"][0][0].sum())
    assert 1 <= tiles <= processor.image_processor.max_image_tiles


def test_top1_per_page_and_text_plans():
    sources = [source(1, image=False), source(2), source(3)]
    images = {n: im for n, im in page_images((2400, 3000)).items() if n != 1}
    [top1] = plan_calls("top1", "q?", [], sources, images, pages=3, chars_per_source=500, max_side=1120)
    assert [s.number for s in top1.image_sources] == [2]  # the best page that has an image
    [part] = [p for p in top1.messages[-1].content if isinstance(p, ImageContentPart)]
    assert part.image_url.url == images[2].data_url() and top1.image_sizes == [(2400, 3000)]  # passed through
    assert "[1] doc1.pdf, page 1" in top1.messages[-1].text()  # its text is still shown
    per_page = plan_calls("per_page", "q?", [], sources, images, pages=2, chars_per_source=500, max_side=1120)
    assert [c.partial_for.number for c in per_page] == [2, 3]
    assert all(len([p for p in c.messages[-1].content if isinstance(p, ImageContentPart)]) == 1 for c in per_page)
    [text] = plan_calls("text", "q?", [ChatMessage(role="system", content="be brief")], sources, images, pages=2,
                        chars_per_source=5, max_side=1120)
    assert text.messages[0].role == "system" and text.image_sizes == []
    assert "[3] doc3.pdf, page 3\ntext " in text.messages[-1].text()  # cut to chars_per_source
    [no_images] = plan_calls("stitch", "q?", [], sources, {}, pages=2, chars_per_source=500, max_side=1120)
    assert no_images.image_sizes == []


def test_page_images_pass_through_png_and_jpeg_and_normalise_the_rest():
    import io

    for fmt, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/png")):
        buf = io.BytesIO()
        Image.new("RGB", (30, 20), "red").save(buf, format=fmt)
        page = PageImage.from_bytes(buf.getvalue())
        assert page.mime == mime and page.size == (30, 20)
        assert (page.data == buf.getvalue()) == (fmt != "WEBP")


def test_labelled_page_has_a_banner():
    out = labelled(Image.new("RGB", (600, 800), "white"), "[1] report.pdf p.3")
    assert out.width == 600 and out.height > 800


def test_citations_follow_markers_else_the_shown_pages():
    shown = [source(1), source(2), source(3)]
    text = "Revenue grew [2]; margin too [1][9]."
    annotations = cite(text, shown)
    assert [(a.file_id, a.index) for a in annotations] == [("file-2", text.index("[2]") + 3),
                                                            ("file-1", text.index("[1]") + 3)]
    data = annotations[0].model_dump()
    assert data["page"] == 2 and data["page_image_file_id"] == "file-img2" and data["bbox"] == "10.0,20.0,300.0,80.0"
    fallback = cite("no markers here", shown, fallback=shown[:1])
    assert [(a.file_id, a.index) for a in fallback] == [("file-1", len("no markers here"))]


def test_results_group_by_page_in_rank_order():
    def hit(file_id, page, score):
        return ("vs_1", FileSearchResult(file_id=file_id, filename=f"{file_id}.pdf", score=score, text=f"{page}",
                                         attributes={"page": page, "page_image_file_id": f"img-{file_id}-{page}"}))

    sources = group_by_page([hit("a", 3, 0.9), hit("b", 1, 0.8), hit("a", 3, 0.7), hit("a", 4, 0.6)])
    assert [(s.number, s.file_id, s.page, s.texts) for s in sources] == [
        (1, "a", 3, ["3", "3"]), (2, "b", 1, ["1"]), (3, "a", 4, ["4"])]


def test_items_become_chat_messages():
    items = [
        MessageItem(role="user", content="hello"),
        FunctionCallItem(call_id="c1", name="f", arguments='{"x": 1}'),
        FunctionCallItem(call_id="c2", name="g", arguments="{}"),
        FunctionCallOutputItem(call_id="c1", output="one"),
        FunctionCallOutputItem(call_id="c2", output="two"),
        FileSearchCallItem(id="fs_1", queries=["q"], status="completed",
                           results=[FileSearchResult(file_id="f", filename="r.pdf", score=1, text="t",
                                                     attributes={"page": 2})]),
        McpCallItem(id="mcp_1", name="add", arguments="{}", server_label="calc", error="boom"),
        MessageItem(role="assistant", content=[{"type": "output_text", "text": "done"}]),
    ]
    messages = asyncio.run(items_to_messages(items, None))
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool", "assistant", "tool", "assistant",
                                          "tool", "assistant"]
    assert [c.id for c in messages[1].tool_calls] == ["c1", "c2"]  # parallel calls share one assistant message
    assert messages[5].content.startswith("[r.pdf, page 2] t") and messages[7].content == "error: boom"


def test_only_the_newest_image_is_kept():
    def with_image(text):
        return ChatMessage(role="user", content=[ImageContentPart(image_url=ImageURL(url="data:image/png;base64,x")),
                                                 TextContentPart(text=text)])

    kept = keep_newest_images([with_image("a"), ChatMessage(role="assistant", content="ok"), with_image("b")], 1)
    assert isinstance(kept[2].content[0], ImageContentPart)
    assert kept[0].content[0].text == IMAGE_PLACEHOLDER and kept[0].content[1].text == "a"


def test_event_numbers_and_output_stay_in_step():
    response = ResponseObject(id="resp_1", created_at=0, model="m", status="in_progress")
    events = ResponseEvents(response)
    out = [events.lifecycle("created")]
    writer = events.message()
    out += writer.delta("Hel") + writer.delta("lo") + writer.finish(cite("Hello", [source(1)]))
    out.append(events.lifecycle("completed"))
    assert [e.sequence_number for e in out] == list(range(len(out)))
    assert [e.type for e in out] == [
        "response.created", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.annotation.added",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    assert response.output[0].content[0].text == "Hello" and response.output_text == "Hello"
    assert out[0].response.output == []  # snapshots do not change afterwards

