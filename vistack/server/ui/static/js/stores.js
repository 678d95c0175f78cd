// The vector stores ("document stores"), shared by the Documents and Ask views: one list, refreshed from
// the server, with a "change" event for whoever shows it.

import { enc } from "./api.js";

export class Stores extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.items = [];
    this.loaded = false;
    this.mutations = 0; // creates and removes: a list read across one of them is stale
    this.truncated = false;
  }

  async refresh() {
    const seen = this.mutations;
    const items = await this.api.listAll("/v1/vector_stores", { order: "desc" });
    // a create or remove finished while this list was read: it is older than what we show, so read again
    if (seen !== this.mutations) return this.refresh();
    this.items = items;
    this.truncated = items.truncated; // more stores than one listing reads
    this.loaded = true;
    this._changed();
    return this.items;
  }

  byId(id) {
    return this.items.find((s) => s.id === id) || null;
  }

  name(id) {
    const store = this.byId(id);
    return (store && store.name) || id;
  }

  async create(name) {
    const store = await this.api.post("/v1/vector_stores", { name });
    this.mutations += 1;
    this.items = [store, ...this.items.filter((s) => s.id !== store.id)];
    this._changed();
    return store;
  }

  async remove(id) {
    await this.api.del(`/v1/vector_stores/${enc(id)}`);
    this.mutations += 1;
    this.items = this.items.filter((s) => s.id !== id);
    this._changed();
  }

  /** Re-read one store (its file counts) after uploads and ingestion. */
  async reload(id) {
    const store = await this.api.get(`/v1/vector_stores/${enc(id)}`);
    this.items = this.items.map((s) => (s.id === id ? store : s));
    this._changed();
    return store;
  }

  _changed() {
    this.dispatchEvent(new Event("change"));
  }
}

/**
 * File names by file id (vector store file objects carry none). A whole store's files are named from the
 * file list (`preload`: one request per 100 files, not one per file); a lookup that fails is not kept, so
 * a rate-limited or interrupted request is tried again next time instead of naming the file by its id.
 */
export class FileNames {
  constructor(api) {
    this.api = api;
    this.names = new Map(); // id -> name
    this.pending = new Map(); // id -> Promise<name>
  }

  remember(id, name) {
    this.names.set(id, name);
  }

  /** The name if known now, else the id (for synchronous rendering). */
  peek(id) {
    return this.names.get(id) || id;
  }

  /** Learn the names of ``ids`` (from the files list when several are unknown). */
  async preload(ids) {
    const missing = ids.filter((id) => !this.names.has(id));
    if (missing.length > 1) {
      try {
        for (const f of await this.api.listAll("/v1/files", { order: "desc" })) {
          if (f.filename) this.names.set(f.id, f.filename);
        }
      } catch { /* fall back to one lookup per file below */ }
    }
    await Promise.all(ids.map((id) => this.get(id)));
  }

  get(id) {
    if (this.names.has(id)) return Promise.resolve(this.names.get(id));
    if (!this.pending.has(id)) {
      const p = this.api.get(`/v1/files/${enc(id)}`)
        .then((f) => { if (f.filename) this.names.set(id, f.filename); return f.filename || id; })
        .catch(() => id)
        .finally(() => this.pending.delete(id));
      this.pending.set(id, p);
    }
    return this.pending.get(id);
  }
}
