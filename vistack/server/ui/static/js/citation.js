// Cited pages: a thumbnail button per page, and a modal dialog that shows the page image with the cited
// region highlighted (an element placed at the bbox) and the retrieved text beside it.

import { clear, h, messageOf, uid } from "./dom.js";
import { pageFigure, placeBox } from "./pages.js";

/**
 * A cited page: {file_id, filename, page, bbox, page_size, page_image_file_id, vector_store_id,
 * score?, text?} (a file_citation annotation or a search hit's attributes, flattened).
 */
export function citedPage(source) {
  const a = source.attributes || {};
  return {
    file_id: source.file_id ?? a.file_id,
    filename: source.filename ?? a.filename ?? "document",
    page: Number(source.page ?? a.page) || null,
    bbox: source.bbox ?? a.bbox,
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

const STOP = new Set(("the and for with that this from was were are has have had its into over than what which "
  + "who whom how when where why does did not but all any can per our their there these those about").split(" "));

function terms(text) {
  return new Set((String(text).toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []).filter((w) => !STOP.has(w)));
}

/**
 * For a search hit (which names a whole chunk): the box of the chunk's block sharing the most words with
 * the query, or null when none shares any. Answers' citations come refined by the server; this gives
 * search results the same passage outline.
 */
export function bestPassage(text, passageBoxes, query, context) {
  const spans = String(passageBoxes || "").split(";").map((part) => part.split(":")).filter(([, box]) => box);
  if (spans.length < 2 || !text) return null;
  const shift = context && text.startsWith(`${context}\n\n`) ? context.length + 2 : 0;
  const wanted = terms(query);
  let best = null;
  let bestScore = 0;
  for (const [where, box] of spans) {
    const [start, end] = where.split("-").map(Number);
    let score = 0;
    for (const w of terms(text.slice(start + shift, end + shift))) if (wanted.has(w)) score += 1;
    if (score > bestScore) [best, bestScore] = [box, score];
  }
  return best;
}

/**
 * Shows `text` in `el`, with the cited passage marked: the block whose box (in the chunk's
 * passage_boxes, "start-end:x0,y0,x1,y1;...") is the citation's bbox. Plain text otherwise.
 */
export function showText(el, text, passageBoxes, bbox, context) {
  clear(el);
  const span = String(passageBoxes || "").split(";").map((part) => part.split(":"))
    .find(([, box]) => box && box === bbox);
  // contextual chunking put a context paragraph before the chunk's own text; the spans count without it
  const shift = context && text.startsWith(`${context}\n\n`) ? context.length + 2 : 0;
  const [start, end] = span ? span[0].split("-").map((v) => Number(v) + shift) : [NaN, NaN];
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= text.length && start < end)) {
    el.textContent = text;
    return;
  }
  el.append(text.slice(0, start), h("mark", { "data-testid": "citation-passage" }, text.slice(start, end)),
            text.slice(end));
}

/**
 * Whether a chunk's box (its attributes.bbox) holds a citation's box: the same box, or a block inside it
 * (a citation outlines the block of the chunk the question points at). Boxes are "x0,y0,x1,y1" strings.
 */
export function covers(chunkBox, citeBox) {
  if (!chunkBox || !citeBox) return false;
  if (chunkBox === citeBox) return true;
  const outer = String(chunkBox).split(",").map(Number);
  const inner = String(citeBox).split(",").map(Number);
  if (outer.length !== 4 || inner.length !== 4 || [...outer, ...inner].some(Number.isNaN)) return false;
  const slack = 0.5; // boxes travel rounded to 0.1 pt
  return inner[0] >= outer[0] - slack && inner[1] >= outer[1] - slack
    && inner[2] <= outer[2] + slack && inner[3] <= outer[3] + slack;
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
  /** @param {{images, textFor(cite): Promise<string>}} deps */
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
    // a click on the backdrop (outside the dialog box) closes it too
    this.dialog.addEventListener("click", (e) => { if (e.target === this.dialog) this.dialog.close(); });
    document.body.append(this.dialog);
    this.token = 0;
  }

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
          : "The highlighted box is the passage the answer was drawn from.",
      });
      const mark = h("div", { class: "highlight", "data-testid": "citation-highlight", "aria-hidden": "true" });
      if (placeBox(mark, cite.bbox, cite.page_size)) frame.append(mark);
      this.stage.append(figure);
    } else {
      this.stage.append(h("p", { class: "muted" }, "This source has no page image."));
    }
    const parts = [];
    if (cite.chunk_type) parts.push(cite.chunk_type);
    if (Number.isFinite(cite.score)) parts.push(`score ${cite.score.toFixed(4)}`);
    this.meta.textContent = parts.join(" · ");
    if (cite.text) showText(this.text, cite.text, cite.passage_boxes, cite.bbox, cite.chunk_context);
    else this.text.textContent = "Loading the retrieved text…";
    if (!cite.text) {
      this.textFor(cite).then((text) => {
        if (token !== this.token) return;
        if (text) showText(this.text, text, cite.passage_boxes, cite.bbox, cite.chunk_context);
        else this.text.textContent = "The retrieved text is not available.";
      }).catch((e) => {
        if (token === this.token) this.text.textContent = `The retrieved text is not available (${messageOf(e)}).`;
      });
    }
    if (!this.dialog.open) this.dialog.showModal();
    this.closeButton.focus();
  }
}
