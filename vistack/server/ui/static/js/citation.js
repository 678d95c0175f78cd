// Cited pages: a thumbnail button per page, and a modal dialog that shows the page image with the cited
// region highlighted (an element placed at the bbox) and the retrieved text beside it.

import { clear, h, messageOf, uid } from "./dom.js";
import { pageFigure, parseBox, parseNumbers, placeBox } from "./pages.js";

/**
 * A cited page: {file_id, filename, page, bboxes, page_size, page_image_file_id, vector_store_id,
 * score?, text?} (a file_citation annotation or a search hit, flattened). `bboxes` are the regions to
 * highlight: a search hit's passage (the block its query names, `passage_bbox`) or its chunk; an
 * annotation's bbox (an answer adds one per sentence that cites the page).
 */
export function citedPage(source) {
  const a = source.attributes || {};
  const bbox = source.passage_bbox ?? source.bbox ?? a.bbox;
  return {
    file_id: source.file_id ?? a.file_id,
    filename: source.filename ?? a.filename ?? "document",
    page: Number(source.page ?? a.page) || null,
    bboxes: bbox ? [bbox] : [],
    page_size: source.page_size ?? a.page_size,
    page_image_file_id: source.page_image_file_id ?? a.page_image_file_id,
    vector_store_id: source.vector_store_id ?? a.vector_store_id,
    score: source.score,
    text: source.text ?? (Array.isArray(source.content) ? source.content.map((c) => c.text || "").join("\n") : null),
    chunk_type: a.chunk_type,
    passage_boxes: a.passage_boxes,
    chunk_context: a.chunk_context,
  };
}

/**
 * A chunk's blocks as character spans of `text` with their boxes: [{start, end, box}] from its
 * passage_boxes ("start-end:x0,y0,x1,y1;..."). Contextual chunking put a context paragraph before the
 * chunk's own text; the spans count without it, so they are shifted past it.
 */
export function passageSpans(text, passageBoxes, context) {
  const shift = context && text.startsWith(`${context}\n\n`) ? context.length + 2 : 0;
  const spans = [];
  for (const part of String(passageBoxes || "").split(";")) {
    const [where, box] = part.split(":");
    const range = parseNumbers(String(where || "").replace("-", ","), 2);
    if (!range || !parseBox(box)) continue;
    const [start, end] = range.map((v) => v + shift);
    if (Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= text.length && start < end) {
      spans.push({ start, end, box });
    }
  }
  return spans.sort((a, b) => a.start - b.start);
}

/**
 * Shows `chunks` ([{text, passage_boxes, chunk_context}]) in `el`, one paragraph each, with every cited
 * passage marked: a block whose box is one of `bboxes` (the citations' boxes on this page).
 */
export function showText(el, chunks, bboxes) {
  clear(el);
  const cited = new Set(bboxes || []);
  for (const chunk of chunks) {
    const text = chunk.text || "";
    const para = h("p", { class: "chunk-para" });
    let at = 0;
    for (const { start, end, box } of passageSpans(text, chunk.passage_boxes, chunk.chunk_context)) {
      if (!cited.has(box) || start < at) continue;
      para.append(text.slice(at, start), h("mark", { "data-testid": "citation-passage", "data-bbox": box },
                                           text.slice(start, end)));
      at = end;
    }
    para.append(text.slice(at));
    el.append(para);
  }
}

/**
 * Whether a chunk's box (its attributes.bbox) holds a citation's box: the same box, or a block inside it
 * (a citation outlines the block of the chunk the question points at). Boxes are "x0,y0,x1,y1" strings.
 */
export function covers(chunkBox, citeBox) {
  if (!chunkBox || !citeBox) return false;
  if (chunkBox === citeBox) return true;
  const outer = parseBox(chunkBox);
  const inner = parseBox(citeBox);
  if (!outer || !inner) return false;
  const slack = 0.5; // boxes travel rounded to 0.1 pt
  return inner[0] >= outer[0] - slack && inner[1] >= outer[1] - slack
    && inner[2] <= outer[2] + slack && inner[3] <= outer[3] + slack;
}

/**
 * The chunks of a page that a citation's boxes fall in (`chunks`: [{text, bbox, passage_boxes,
 * chunk_context}]), in page order; all of the page's chunks when none holds a box.
 */
export function citedChunks(chunks, bboxes) {
  const hit = chunks.filter((c) => (bboxes || []).some((b) => covers(c.bbox, b)));
  return hit.length ? hit : chunks;
}

export function pageLabel(cite) {
  return cite.page ? `${cite.filename}, page ${cite.page}` : cite.filename;
}

/** A thumbnail button that opens the cited page. */
export function thumbnail(images, cite, onOpen, { testid = "citation-thumb" } = {}) {
  const label = pageLabel(cite);
  const img = cite.page_image_file_id
    ? images.img(cite.page_image_file_id, { alt: "", className: "thumb-image", testid: `${testid}-image` })
    : h("span", { class: "thumb-image placeholder", "aria-hidden": "true" }, "No image");
  // the accessible name is the visible label with "Open" before it (no aria-label: what is seen is what is said)
  const button = h("button", {
    type: "button", class: "thumb", "data-testid": testid, title: `Open ${label}`,
    "data-file-id": cite.file_id, "data-page": cite.page,
    onclick: () => onOpen(cite, button),
  }, img, h("span", { class: "thumb-label" }, h("span", { class: "visually-hidden" }, "Open "),
    h("span", { class: "thumb-file" }, cite.filename), " ", h("span", {}, cite.page ? `p. ${cite.page}` : "")));
  return button;
}

export class CitationDialog {
  /** @param {{images, textFor(cite): Promise<Array<{text, passage_boxes, chunk_context}>>}} deps */
  constructor({ images, textFor }) {
    this.images = images;
    this.textFor = textFor;
    this.titleId = uid("cite-title");
    this.title = h("h2", { id: this.titleId, "data-testid": "citation-title" });
    this.stage = h("div", { class: "dialog-stage" });
    this.meta = h("p", { class: "meta", "data-testid": "citation-meta" });
    this.text = h("div", { class: "chunk-text", "data-testid": "citation-text" });
    this.closeButton = h("button", { type: "button", class: "button secondary small", "data-testid": "citation-close",
                                     onclick: () => this.dialog.close() }, "Close");
    this.dialog = h("dialog", { class: "page-dialog", "aria-labelledby": this.titleId,
                                "data-testid": "citation-dialog" },
      h("div", { class: "dialog-head" }, this.title, this.closeButton),
      h("div", { class: "dialog-body" }, this.stage,
        h("aside", { class: "chunk-panel", "aria-label": "Retrieved text" },
          h("h3", {}, "Retrieved text"), this.meta, this.text)));
    this.dialog.addEventListener("close", () => {
      clear(this.stage);
      if (this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus();
    });
    // a click on the backdrop (outside the dialog's box; its padding is the dialog too) closes it
    this.dialog.addEventListener("click", (e) => {
      if (e.target !== this.dialog) return;
      const r = this.dialog.getBoundingClientRect();
      if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) this.dialog.close();
    });
    document.body.append(this.dialog);
    this.token = 0;
  }

  /**
   * Show a cited page. The retrieved text is the cite's own (`text`: a search hit) or what `textFor(cite)`
   * finds: [{text, passage_boxes, chunk_context}] chunks, each shown with the cited passages marked.
   */
  open(cite, returnFocus) {
    const token = ++this.token;
    this.returnFocus = returnFocus || document.activeElement;
    const label = pageLabel(cite);
    this.title.textContent = label;
    clear(this.stage);
    if (cite.page_image_file_id) {
      const { figure, frame } = pageFigure(this.images, cite.page_image_file_id, {
        alt: `${label}, with the cited region highlighted`, testid: "citation-image",
        caption: cite.kind === "search" ? "The highlighted box is the passage that best matches the search."
          : `The highlighted box${cite.bboxes.length > 1 ? "es are the passages" : " is the passage"} the answer `
            + "was drawn from.",
      });
      for (const bbox of cite.bboxes) {
        const mark = h("div", { class: "highlight", "data-testid": "citation-highlight", "aria-hidden": "true" });
        if (placeBox(mark, bbox, cite.page_size)) frame.append(mark);
      }
      this.stage.append(figure);
    } else {
      this.stage.append(h("p", { class: "muted" }, "This source has no page image."));
    }
    const parts = [];
    if (cite.chunk_type) parts.push(cite.chunk_type);
    if (Number.isFinite(cite.score)) parts.push(`score ${cite.score.toFixed(4)}`);
    this.meta.textContent = parts.join(" · ");
    if (cite.text) {
      showText(this.text, [cite], cite.bboxes);
    } else {
      this.text.textContent = "Loading the retrieved text…";
      this.textFor(cite).then((chunks) => {
        if (token !== this.token) return;
        if (chunks.length) showText(this.text, chunks, cite.bboxes);
        else this.text.textContent = "The retrieved text is not available.";
      }).catch((e) => {
        if (token === this.token) this.text.textContent = `The retrieved text is not available (${messageOf(e)}).`;
      });
    }
    if (!this.dialog.open) this.dialog.showModal();
    this.closeButton.focus();
  }
}
