"""Page images of retrieved hits -> exactly one image per model call.

Llama 3.2 Vision attends to one image per request, so showing the model
several retrieved pages needs a strategy:

- ``top1``: the best page's image (as stored: the model's processor fits it to its
  tiles), with the retrieved text of every source;
- ``stitch``: the top ``pages`` pages composed into one image within the
  1120x1120 tile budget, each labelled ``[n] filename p.N`` so the model can
  cite what it reads;
- ``per_page``: one call per page ("answer from this page only"), then a
  text-only call that merges the partial answers;
- ``text``: no image at all (text-only models, or when the user's own image
  must stay the one the model sees).

Each strategy yields :class:`ModelCall` values; the loop runs them, so this
module never talks to a model.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from vistack.api.inference import ChatMessage, ImageContentPart, ImageURL, TextContentPart
from vistack.api.protocols import FilesProvider
from vistack.context import current_principal
from vistack.images import bytes_to_data_url, decode_image_bytes, stitch_images

from .tools.file_search import Source

RAG_INSTRUCTIONS = (
    "Answer the user's question from the sources below: pages of the user's documents, numbered [1], [2], ... "
    "When a page image is attached, read the answer from the image (tables, charts, figures) and use the text "
    "as a guide. Cite every source you use as [n] right after the statement it supports. If the sources do not "
    "contain the answer, say so instead of guessing."
)
NOT_ON_PAGE = "not on this page"
PER_PAGE_INSTRUCTIONS = (
    "Answer the question from this one page only (its image is attached). If the page does not contain the "
    f"answer, reply exactly: {NOT_ON_PAGE}."
)
MERGE_INSTRUCTIONS = (
    "Partial answers were read from individual document pages, each numbered [n]. Combine them into one answer "
    "to the question, citing the pages you rely on as [n]. Ignore pages that did not contain the answer."
)
LABEL_HEIGHT = 28


@dataclass
class ModelCall:
    """One model call of a strategy: its messages, the sources it shows and the image sizes it carries."""

    messages: list[ChatMessage]
    sources: list[Source]
    image_sizes: list[tuple[int, int]] = field(default_factory=list)
    image_sources: list[Source] = field(default_factory=list)  # the pages whose images the call shows
    partial_for: Source | None = None  # per_page: the page this call asks


def sources_text(sources: list[Source], chars_per_source: int) -> str:
    blocks = []
    for s in sources:
        text = "\n".join(s.texts).strip()[:chars_per_source]
        blocks.append(f"[{s.number}] {s.label}\n{text}")
    return "\n\n".join(blocks)


@dataclass(frozen=True)
class PageImage:
    """A stored page image: its encoded bytes, passed through to the model as they are.

    Decoding (and re-encoding) a page costs tens of milliseconds; only ``stitch`` needs
    pixels. Single pages go to the model unchanged: its processor fits them to its tiles.
    """

    data: bytes
    mime: str
    size: tuple[int, int]

    @classmethod
    def from_bytes(cls, data: bytes) -> PageImage:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            size = header.size
            mime = Image.MIME.get(header.format or "", "")
        if mime not in PASS_THROUGH:  # anything else is normalised to PNG once
            image = decode_image_bytes(data)
            return cls.from_image(image)
        return cls(data=data, mime=mime, size=size)

    @classmethod
    def from_image(cls, image: Image.Image) -> PageImage:
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        return cls(data=buf.getvalue(), mime="image/png", size=image.size)

    def decoded(self) -> Image.Image:
        return decode_image_bytes(self.data)

    def data_url(self) -> str:
        return bytes_to_data_url(self.data, self.mime)


PASS_THROUGH = ("image/png", "image/jpeg")


async def load_page_images(files: FilesProvider | None, sources: list[Source]) -> dict[int, PageImage]:
    """Page images by source number; sources without one (text files) are skipped."""
    images: dict[int, PageImage] = {}
    if files is None:
        return images
    for s in sources:
        if s.page_image_file_id and s.number not in images:
            data = await files.read_bytes(s.page_image_file_id, current_principal())
            images[s.number] = PageImage.from_bytes(data)
    return images


def labelled(image: Image.Image, label: str) -> Image.Image:
    """The page with a white banner on top saying which source it is (readable after stitching)."""
    font = ImageFont.load_default(size=max(14, image.width // 40))
    banner = max(LABEL_HEIGHT, image.width // 25)
    out = Image.new("RGB", (image.width, image.height + banner), "white")
    out.paste(image, (0, banner))
    draw = ImageDraw.Draw(out)
    draw.text((8, banner // 6), label, fill="black", font=font)
    draw.line([(0, banner - 1), (image.width, banner - 1)], fill="black", width=2)
    return out


def _user_message(text: str, image: PageImage | None) -> ChatMessage:
    parts: list = []
    if image is not None:
        parts.append(ImageContentPart(image_url=ImageURL(url=image.data_url())))
    parts.append(TextContentPart(text=text))
    return ChatMessage(role="user", content=parts)


def plan_calls(
    strategy: str,
    question: str,
    history: list[ChatMessage],
    sources: list[Source],
    images: dict[int, PageImage],
    *,
    pages: int,
    chars_per_source: int,
    max_side: int,
) -> list[ModelCall]:
    """The model calls for ``strategy``; the last one is the answer the user sees.

    ``history`` is the conversation before the question (the question itself is
    rebuilt here with the sources). Sources without a page image contribute text only;
    with no page images at all every strategy degrades to ``text``. CPU-bound for
    ``stitch`` (decode, compose, encode): call it off the event loop.
    """
    with_images = [s for s in sources if s.number in images]
    if not with_images:
        strategy = "text"
    context = sources_text(sources, chars_per_source)
    prompt = f"{RAG_INSTRUCTIONS}\n\nSources:\n{context}\n\nQuestion: {question}"
    if strategy == "text":
        return [ModelCall(history + [_user_message(prompt, None)], sources)]
    if strategy == "top1":
        image = images[with_images[0].number]
        return [ModelCall(history + [_user_message(prompt, image)], sources, [image.size], with_images[:1])]
    chosen = with_images[:pages]
    if strategy == "stitch":
        pages_ = [labelled(images[s.number].decoded(), f"[{s.number}] {s.label}") for s in chosen]
        image = PageImage.from_image(stitch_images(pages_, max_side))
        return [ModelCall(history + [_user_message(prompt, image)], sources, [image.size], chosen)]
    if strategy == "per_page":
        calls = []
        for s in chosen:
            image = images[s.number]
            text = f"{PER_PAGE_INSTRUCTIONS}\n\nPage [{s.number}] {s.label} (its text, as a guide):\n" \
                   f"{chr(10).join(s.texts)[:chars_per_source]}\n\nQuestion: {question}"
            calls.append(ModelCall([_user_message(text, image)], [s], [image.size], [s], partial_for=s))
        return calls
    raise ValueError(f"unknown vision strategy {strategy!r}")


def merge_call(question: str, history: list[ChatMessage], partials: list[tuple[Source, str]]) -> ModelCall:
    """per_page's last call: the partial answers, text only.

    Only pages that gave an answer can be cited: a page that answered "not on this page"
    (or nothing) is listed for the model but never becomes a citation.
    """
    lines = [f"[{s.number}] {s.label}: {answer.strip() or '(no answer)'}" for s, answer in partials]
    text = f"{MERGE_INSTRUCTIONS}\n\nPartial answers:\n" + "\n".join(lines) + f"\n\nQuestion: {question}"
    answered = [s for s, answer in partials if _answered(answer)]
    return ModelCall(history + [_user_message(text, None)], answered, image_sources=answered)


def _answered(answer: str) -> bool:
    words = answer.strip().strip(".!").lower()
    return bool(words) and words != NOT_ON_PAGE

