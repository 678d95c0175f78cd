// The document viewer (a modal dialog): page through a document's page images with its chunks drawn as
// boxes over each page; the text of a chunk shows beside the page on hover or keyboard focus (each box is
// a button). Page Up / Page Down turn pages, Escape closes, focus returns to the control that opened it.

import { clear, h, messageOf, uid } from "./dom.js";
import { groupPages, pageFigure, placeBox, shorten } from "./pages.js";

export class DocumentViewer {
  constructor({ images, chunks }) {
    this.images = images;
    this.chunks = chunks;
    this.titleId = uid("viewer-title");
    this.title = h("h2", { id: this.titleId, "data-testid": "viewer-title" });
    this.prev = h("button", { type: "button", class: "button secondary small", "data-testid": "viewer-prev",
                              onclick: () => this.show(this.index - 1) }, "‹ Previous");
    this.next = h("button", { type: "button", class: "button secondary small", "data-testid": "viewer-next",
                              onclick: () => this.show(this.index + 1) }, "Next ›");
    this.select = h("select", { id: uid("viewer-page"), "data-testid": "viewer-page-select",
                                onchange: () => this.show(Number(this.select.value)) });
    this.count = h("span", { class: "muted", "data-testid": "viewer-page-count" });
    this.closeButton = h("button", { type: "button", class: "button secondary small", "data-testid": "viewer-close",
                                     onclick: () => this.dialog.close() }, "Close");
    this.stage = h("div", { class: "dialog-stage viewer-stage", "data-testid": "viewer-stage", tabindex: "-1" });
    this.chunkMeta = h("p", { class: "meta", "data-testid": "chunk-meta" });
    this.chunkText = h("div", { class: "chunk-text", "data-testid": "chunk-text", "aria-live": "polite" });
    this.status = h("p", { role: "status", class: "muted small", "data-testid": "viewer-status" });
    this.dialog = h("dialog", { class: "page-dialog viewer", "aria-labelledby": this.titleId,
                                "data-testid": "page-viewer", onkeydown: (e) => this._keys(e) },
      h("div", { class: "dialog-head" }, this.title,
        h("div", { class: "pager", role: "group", "aria-label": "Pages" }, this.prev,
          h("label", { for: this.select.id }, "Page"), this.select, this.count, this.next),
        this.closeButton),
      this.status,
      h("div", { class: "dialog-body" }, this.stage,
        h("aside", { class: "chunk-panel", "aria-label": "Chunk text" },
          h("h3", {}, "Chunk text"), this.chunkMeta, this.chunkText)));
    this.dialog.addEventListener("close", () => {
      this.token += 1;
      clear(this.stage);
      if (this.restoreFocus && this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus();
    });
    document.body.append(this.dialog);
    this.pages = [];
    this.index = 0;
    this.pinned = null;
    this.token = 0;
  }

  async open(store, file, filename, returnFocus) {
    const token = ++this.token;
    this.returnFocus = returnFocus || document.activeElement;
    this.restoreFocus = true;
    this.title.textContent = filename || file.id;
    this.pages = [];
    clear(this.stage);
    clear(this.select);
    this.count.textContent = "";
    this.prev.disabled = true;
    this.next.disabled = true;
    this._setChunk(null);
    this.status.textContent = "Loading pages…";
    if (!this.dialog.open) this.dialog.showModal();
    this.closeButton.focus();
    try {
      const chunks = await this.chunks.load(store.id, file.id);
      if (token !== this.token) return;
      this.pages = groupPages(chunks);
    } catch (e) {
      if (token === this.token) this.status.textContent = `Could not load the document: ${messageOf(e)}`;
      return;
    }
    if (!this.pages.length) {
      this.status.textContent = "This document has no stored pages.";
      return;
    }
    this.status.textContent = "";
    this.pages.forEach((p, i) => this.select.append(h("option", { value: String(i) }, String(p.page))));
    this.show(0);
  }

  show(index) {
    if (!this.pages.length) return;
    this.index = Math.max(0, Math.min(index, this.pages.length - 1));
    const page = this.pages[this.index];
    this.select.value = String(this.index);
    this.count.textContent = `of ${this.pages.length}`;
    this.prev.disabled = this.index === 0;
    this.next.disabled = this.index === this.pages.length - 1;
    this.pinned = null;
    this._setChunk(null);
    // turning the page removes the focused box: keep the focus on the page (else Page Down works once)
    const hadFocus = this.stage.contains(document.activeElement);
    clear(this.stage);
    const filename = this.title.textContent;
    const n = page.chunks.length;
    const { figure, frame } = pageFigure(this.images, page.page_image_file_id, {
      alt: `${filename}, page ${page.page}`,
      caption: `Page ${page.page}: ${n} chunk${n === 1 ? "" : "s"}. Hover over a box or move to it with Tab to `
        + "read its text; Page Up and Page Down turn pages.",
      testid: "viewer-image",
    });
    this.stage.dataset.page = String(page.page);
    page.chunks.forEach((chunk, i) => {
      const box = h("button", {
        type: "button", class: `chunk-box chunk-${chunk.chunk_type}`, "data-testid": "chunk-box",
        "aria-pressed": "false",
        "aria-label": `Chunk ${i + 1} of ${n} (${chunk.chunk_type}): ${shorten(chunk.text, 80)}`,
      });
      if (!placeBox(box, chunk.bbox, chunk.page_size || page.page_size)) return;
      const showIt = () => this._setChunk(chunk, i, n);
      box.addEventListener("mouseenter", showIt);
      box.addEventListener("focus", showIt);
      box.addEventListener("mouseleave", () => this._setChunk(this.pinned?.chunk || null, this.pinned?.i, n));
      box.addEventListener("click", () => {
        for (const other of frame.querySelectorAll(".chunk-box")) other.setAttribute("aria-pressed", "false");
        box.setAttribute("aria-pressed", "true");
        this.pinned = { chunk, i };
        showIt();
      });
      frame.append(box);
    });
    this.stage.append(figure);
    if (hadFocus) (frame.querySelector(".chunk-box") || this.stage).focus();
  }

  _setChunk(chunk, i, total) {
    if (!chunk) {
      this.chunkMeta.textContent = "";
      this.chunkText.textContent = "Hover over a box on the page, or move to it with Tab, to read its text here.";
      this.chunkText.classList.add("muted");
      return;
    }
    this.chunkText.classList.remove("muted");
    this.chunkMeta.textContent = `Chunk ${i + 1} of ${total} · ${chunk.chunk_type} · page ${chunk.page}`;
    this.chunkText.textContent = chunk.text || "(no text: an image-only page)";
  }

  _keys(event) {
    if (event.target instanceof HTMLSelectElement) return;
    if (event.key === "PageDown") { this.show(this.index + 1); event.preventDefault(); }
    if (event.key === "PageUp") { this.show(this.index - 1); event.preventDefault(); }
  }

  /** Close without moving focus (the view is being rebuilt). */
  close() {
    this.restoreFocus = false;
    if (this.dialog.open) this.dialog.close();
  }
}
