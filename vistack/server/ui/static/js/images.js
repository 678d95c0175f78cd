// Page images (PNG files in the Files API) as blob: URLs. They are fetched with the Authorization header
// through the API client (a plain <img src="/v1/files/..."> could not carry it) and cached per file id.

import { enc } from "./api.js";
import { h } from "./dom.js";

export class PageImages {
  constructor(api, { maxEntries = 150 } = {}) {
    this.api = api;
    this.maxEntries = maxEntries;
    this.cache = new Map(); // file id -> Promise<string> (blob URL)
  }

  /** A blob: URL of the file's bytes. */
  url(fileId) {
    let entry = this.cache.get(fileId);
    if (!entry) {
      entry = this.api.blob(`/v1/files/${enc(fileId)}/content`).then((blob) => URL.createObjectURL(blob));
      entry.catch(() => this.cache.delete(fileId)); // a failed fetch may be retried later
      this.cache.set(fileId, entry);
      this._evict();
    } else { // most recently used last
      this.cache.delete(fileId);
      this.cache.set(fileId, entry);
    }
    return entry;
  }

  /** An <img> that shows the page once fetched (alt given by the caller), with a loading state. */
  img(fileId, { alt = "", className = "", testid } = {}) {
    const img = h("img", { alt, class: `${className} loading`.trim(), "data-testid": testid, decoding: "async" });
    this.url(fileId).then((src) => {
      img.addEventListener("load", () => img.classList.remove("loading"), { once: true });
      img.src = src;
    }).catch((e) => {
      img.classList.remove("loading");
      img.classList.add("broken");
      img.alt = `${alt} (image unavailable: ${e.message || e})`.trim();
    });
    return img;
  }

  _evict() {
    while (this.cache.size > this.maxEntries) {
      const [oldest, entry] = this.cache.entries().next().value;
      this.cache.delete(oldest);
      entry.then((src) => window.setTimeout(() => URL.revokeObjectURL(src), 60_000)).catch(() => {});
    }
  }

  /** Forget every image (sign-out: they were fetched with the old key). */
  clear() {
    for (const entry of this.cache.values()) entry.then((src) => URL.revokeObjectURL(src)).catch(() => {});
    this.cache.clear();
  }
}
