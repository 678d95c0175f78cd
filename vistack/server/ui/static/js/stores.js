// The vector stores ("document stores"), shared by the Documents and Ask views: one list, refreshed from
// the server, with a "change" event for whoever shows it.

import { enc } from "./api.js";

export class Stores extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.items = [];
    this.loaded = false;
  }

  async refresh() {
    this.items = await this.api.listAll("/v1/vector_stores", { order: "desc" });
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
    this.items = [store, ...this.items.filter((s) => s.id !== store.id)];
    this._changed();
    return store;
  }

  async remove(id) {
    await this.api.del(`/v1/vector_stores/${enc(id)}`);
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

/** File names by file id (vector store file objects carry none), fetched once each. */
export class FileNames {
  constructor(api) {
    this.api = api;
    this.names = new Map();
  }

  remember(id, name) {
    this.names.set(id, Promise.resolve(name));
  }

  get(id) {
    if (!this.names.has(id)) {
      const p = this.api.get(`/v1/files/${enc(id)}`).then((f) => f.filename || id).catch(() => id);
      this.names.set(id, p);
    }
    return this.names.get(id);
  }
}
