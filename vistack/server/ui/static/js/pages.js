// Page geometry and page figures. Chunk boxes (`bbox`, "x0,y0,x1,y1") and page sizes (`page_size`, "w,h")
// are in PDF points; the page image is the whole page, so a box is placed in percent of the page size and
// scales with the displayed image by itself (no resize handling needed).

import { enc } from "./api.js";
import { h } from "./dom.js";

export function parseNumbers(value, count) {
  if (value === undefined || value === null) return null;
  const parts = String(value).split(",").map((s) => Number(s.trim()));
  return parts.length === count && parts.every(Number.isFinite) ? parts : null;
}

export const parseBox = (bbox) => parseNumbers(bbox, 4);
export const parseSize = (size) => parseNumbers(size, 2);

/** Position `el` (absolutely, inside a page frame) over `bbox`; false when the geometry is unknown. */
export function placeBox(el, bbox, pageSize) {
  const box = parseBox(bbox);
  const size = parseSize(pageSize);
  if (!box || !size || size[0] <= 0 || size[1] <= 0) return false;
  const [w, hgt] = size;
  const clamp = (v, max) => Math.min(Math.max(v, 0), max);
  const x0 = clamp(Math.min(box[0], box[2]), w);
  const x1 = clamp(Math.max(box[0], box[2]), w);
  const y0 = clamp(Math.min(box[1], box[3]), hgt);
  const y1 = clamp(Math.max(box[1], box[3]), hgt);
  Object.assign(el.style, {
    left: `${(x0 / w) * 100}%`,
    top: `${(y0 / hgt) * 100}%`,
    width: `${((x1 - x0) / w) * 100}%`,
    height: `${((y1 - y0) / hgt) * 100}%`,
  });
  el.dataset.bbox = String(bbox);
  el.dataset.pageSize = String(pageSize);
  return true;
}

/** A <figure> with the page image and a frame to put boxes in (the frame hugs the image exactly). */
export function pageFigure(images, pageImageFileId, { alt, caption, testid = "page-image" } = {}) {
  const img = images.img(pageImageFileId, { alt, className: "page-image", testid });
  const frame = h("div", { class: "page-frame" }, img);
  const figure = h("figure", { class: "page-figure" }, frame, caption ? h("figcaption", {}, caption) : null);
  return { figure, frame, img };
}

/** The stored chunks of one file in a store, with their metadata, sorted by page and position. Cached. */
export class ChunkSource {
  constructor(api) {
    this.api = api;
    this.cache = new Map();
  }

  load(storeId, fileId) {
    const key = `${storeId}/${fileId}`;
    if (!this.cache.has(key)) {
      const p = this.api.get(`/v1/vector_stores/${enc(storeId)}/files/${enc(fileId)}/content`,
                             { include_metadata: "true" })
        .then((page) => (page.data || []).map((item) => {
          const m = item.metadata || {};
          return { text: item.text || "", page: Number(m.page) || 1, bbox: m.bbox, page_size: m.page_size,
                   page_image_file_id: m.page_image_file_id, chunk_type: m.chunk_type || "text",
                   chunk_index: Number(m.chunk_index) || 0, filename: m.filename,
                   passage_boxes: m.passage_boxes, chunk_context: m.chunk_context };
        }).sort((a, b) => a.page - b.page || a.chunk_index - b.chunk_index));
      p.catch(() => this.cache.delete(key));
      this.cache.set(key, p);
    }
    return this.cache.get(key);
  }

  forget(storeId, fileId) {
    this.cache.delete(`${storeId}/${fileId}`);
  }

  clear() { this.cache.clear(); }
}

/** Chunks grouped into pages: [{page, page_image_file_id, page_size, chunks: [...]}], by page number. */
export function groupPages(chunks) {
  const pages = new Map();
  for (const chunk of chunks) {
    if (!pages.has(chunk.page)) {
      pages.set(chunk.page, { page: chunk.page, page_image_file_id: chunk.page_image_file_id,
                              page_size: chunk.page_size, chunks: [] });
    }
    const entry = pages.get(chunk.page);
    entry.page_image_file_id = entry.page_image_file_id || chunk.page_image_file_id;
    entry.page_size = entry.page_size || chunk.page_size;
    entry.chunks.push(chunk);
  }
  return [...pages.values()].sort((a, b) => a.page - b.page);
}

export function shorten(text, max = 90) {
  const flat = (text || "").replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
