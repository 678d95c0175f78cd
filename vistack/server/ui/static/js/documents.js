// The Documents view: document stores (vector stores) and their files. Create and delete stores, upload
// files and folders (drop, file picker, folder picker), follow each file's ingestion (pages read, the
// failure reason of a failed file) with bounded polling while anything is in progress, filter the files by
// status and attributes, and open a document in the page viewer.

import { enc } from "./api.js";
import { confirmAction } from "./confirm.js";
import { announce, clear, field, formatBytes, h, messageOf, parseAttributes, showError, uid } from "./dom.js";
import { Poller } from "./poller.js";
import { filesFromDrop, filesFromInput, uploadAndAttach } from "./uploads.js";
import { DocumentViewer } from "./viewer.js";

const STORE_KEY = "vistack.documents.store";
const STATUS_LABELS = { completed: "Completed", in_progress: "In progress", failed: "Failed", cancelled: "Cancelled" };

export class DocumentsView {
  constructor({ api, stores, fileNames, images, chunks, panel }) {
    this.api = api;
    this.stores = stores;
    this.fileNames = fileNames;
    this.chunks = chunks;
    this.panel = panel;
    this.active = false;
    this.files = [];
    this.filesSeq = 0; // each file-list read; an answer older than the newest read is dropped
    this.selectedId = sessionStorage.getItem(STORE_KEY);
    this.poller = new Poller(() => this._poll(), {
      onGiveUp: () => this._setFilesStatus("Stopped checking progress after 15 minutes. Use Refresh to check again."),
    });
    this.viewer = new DocumentViewer({ images, chunks });
    this._build();
    stores.addEventListener("change", () => this._renderStores());
  }

  // ----- layout ------------------------------------------------------------------------------------

  _build() {
    const nameInput = h("input", { type: "text", name: "store-name", required: true, maxlength: "200",
                                   autocomplete: "off", "data-testid": "new-store-name" });
    this.storeList = h("ul", { class: "store-list", "data-testid": "store-list", "aria-labelledby": "stores-heading" });
    this.storesStatus = h("p", { role: "status", class: "muted small", "data-testid": "stores-status" });
    const createForm = h("form", { class: "create-store", "data-testid": "create-store-form",
                                   onsubmit: (e) => this._createStore(e, nameInput) },
      field("New store name", nameInput),
      h("button", { type: "submit", class: "button primary", "data-testid": "create-store" }, "Create store"));
    const storesPane = h("section", { class: "card stores-pane", "aria-labelledby": "stores-heading" },
      h("h2", { id: "stores-heading" }, "Document stores"), createForm, this.storesStatus, this.storeList);

    this.detail = h("section", { class: "card store-detail", "aria-labelledby": "store-title",
                                 "data-testid": "store-detail" });
    this.panel.append(h("div", { class: "documents-layout" }, storesPane, this.detail));
    this._renderDetail();
  }

  _renderStores() {
    const focusedStore = this.storeList.contains(document.activeElement) ? document.activeElement.dataset.storeId : null;
    clear(this.storeList);
    if (!this.stores.items.length) {
      this.storesStatus.textContent = this.stores.loaded ? "No stores yet: create one to add documents." : "";
    } else {
      this.storesStatus.textContent = `${this.stores.items.length} store${this.stores.items.length === 1 ? "" : "s"}`
        + (this.stores.truncated ? " (the newest; there are more)" : "");
    }
    for (const store of this.stores.items) {
      const counts = store.file_counts || {};
      const parts = [`${counts.total || 0} file${counts.total === 1 ? "" : "s"}`];
      if (counts.in_progress) parts.push(`${counts.in_progress} in progress`);
      if (counts.failed) parts.push(`${counts.failed} failed`);
      const selected = store.id === this.selectedId;
      this.storeList.append(h("li", {},
        h("button", { type: "button", class: "store-item", "data-testid": "store-item", "data-store-id": store.id,
                      "aria-current": selected ? "true" : null, onclick: () => this.select(store.id) },
          h("span", { class: "store-name" }, store.name || store.id),
          h("span", { class: "store-counts" }, parts.join(" · ")))));
    }
    if (focusedStore) { // a redraw must not drop a keyboard user out of the list
      const again = this.storeList.querySelector(`[data-store-id="${CSS.escape(focusedStore)}"]`);
      if (again) again.focus();
    }
    if (this.selectedId && this.stores.loaded && !this.stores.byId(this.selectedId)) this.select(null);
    else if (this.detailStoreId === this.selectedId && this.selectedId) this._renderTitle();
  }

  _renderDetail() {
    clear(this.detail);
    this.viewer.close();
    this.tbody = null;
    const store = this.selectedId ? this.stores.byId(this.selectedId) : null;
    this.detailStoreId = store ? store.id : null;
    if (!store) {
      this.detail.append(h("h2", { id: "store-title", "data-testid": "store-title" }, "No store selected"),
        h("p", { class: "muted" }, "Create a document store, or choose one from the list, to add documents to it."));
      return;
    }
    this.title = h("h2", { id: "store-title", tabindex: "-1", "data-testid": "store-title" });
    this.subtitle = h("p", { class: "muted small" });
    const del = h("button", { type: "button", class: "button danger small", "data-testid": "delete-store",
                              onclick: () => this._deleteStore(store) }, "Delete store");
    this.detail.append(h("div", { class: "detail-head" }, h("div", {}, this.title, this.subtitle), del));
    this._renderTitle();
    this.detail.append(this._uploadSection(), this._filesSection());
  }

  _renderTitle() {
    const store = this.stores.byId(this.selectedId);
    if (!store || !this.title) return;
    this.title.textContent = store.name || store.id;
    const c = store.file_counts || {};
    this.subtitle.textContent = `${store.id} · ${c.completed || 0} completed, ${c.in_progress || 0} in progress, `
      + `${c.failed || 0} failed`;
  }

  _uploadSection() {
    const fileInput = h("input", { type: "file", multiple: true, class: "file-input", "data-testid": "file-input",
                                   id: uid("file-input") });
    const folderInput = h("input", { type: "file", multiple: true, webkitdirectory: true, class: "file-input",
                                     "data-testid": "folder-input", id: uid("folder-input") });
    this.attrInput = h("input", { type: "text", "data-testid": "upload-attributes", autocomplete: "off",
                                  placeholder: "department=finance, year=2025" });
    fileInput.addEventListener("change", () => { this._upload(filesFromInput(fileInput)); fileInput.value = ""; });
    folderInput.addEventListener("change", () => { this._upload(filesFromInput(folderInput)); folderInput.value = ""; });
    const zone = h("div", { class: "drop-zone", "data-testid": "drop-zone" },
      h("p", { class: "drop-hint" }, h("strong", {}, "Drop files or folders here"),
        " (PDF, PNG, JPEG, text, Markdown), or choose them:"),
      h("div", { class: "pickers" },
        h("label", { class: "button secondary file-button", for: fileInput.id }, "Choose files", fileInput),
        h("label", { class: "button secondary file-button", for: folderInput.id }, "Choose a folder", folderInput)));
    zone.addEventListener("dragover", (e) => {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", (e) => {
      if (!zone.contains(e.relatedTarget)) zone.classList.remove("dragging");
    });
    zone.addEventListener("drop", async (e) => {
      e.preventDefault();
      zone.classList.remove("dragging");
      try {
        this._upload(await filesFromDrop(e.dataTransfer));
      } catch (err) {
        showError(`Could not read the dropped files: ${messageOf(err)}`);
      }
    });
    this.uploadList = h("ul", { class: "upload-list", "data-testid": "upload-list" });
    this.uploadStatus = h("p", { role: "status", class: "small", "data-testid": "upload-status" });
    return h("section", { class: "upload", "aria-labelledby": "upload-heading" },
      h("h3", { id: "upload-heading" }, "Add documents"), zone,
      field("Attributes for new files (optional)", this.attrInput,
            { hint: "key=value pairs separated by commas; they can be used to filter files and searches." }),
      this.uploadStatus, this.uploadList);
  }

  _filesSection() {
    this.statusFilter = h("select", { "data-testid": "filter-status", onchange: () => this._renderFiles() },
      h("option", { value: "" }, "Any status"),
      Object.entries(STATUS_LABELS).map(([value, label]) => h("option", { value }, label)));
    this.keyFilter = h("input", { type: "text", "data-testid": "filter-attr-key", autocomplete: "off",
                                  oninput: () => this._renderFiles() });
    this.valueFilter = h("input", { type: "text", "data-testid": "filter-attr-value", autocomplete: "off",
                                    oninput: () => this._renderFiles() });
    const clearButton = h("button", { type: "button", class: "button secondary small", "data-testid": "filter-clear",
                                      onclick: () => {
                                        this.statusFilter.value = "";
                                        this.keyFilter.value = "";
                                        this.valueFilter.value = "";
                                        this._renderFiles();
                                      } }, "Clear filters");
    const refresh = h("button", { type: "button", class: "button secondary small", "data-testid": "refresh-files",
                                  onclick: () => this._loadFiles(true) }, "Refresh");
    this.filesStatus = h("p", { role: "status", class: "small", "data-testid": "files-status" });
    this.tbody = h("tbody", {});
    this.caption = h("caption", { class: "visually-hidden" });
    const table = h("table", { class: "files", "data-testid": "file-table" }, this.caption,
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "File"), h("th", { scope: "col" }, "Status"),
        h("th", { scope: "col" }, "Attributes"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
      this.tbody);
    return h("section", { class: "files-section", "aria-labelledby": "files-heading" },
      h("div", { class: "section-head" }, h("h3", { id: "files-heading" }, "Files"), refresh),
      h("form", { class: "filters", role: "search", "aria-label": "Filter files", onsubmit: (e) => e.preventDefault() },
        field("Status", this.statusFilter), field("Attribute", this.keyFilter), field("Value", this.valueFilter),
        clearButton),
      this.filesStatus, h("div", { class: "table-wrap" }, table));
  }

  // ----- lifecycle --------------------------------------------------------------------------------

  async activate() {
    this.active = true;
    try {
      await this.stores.refresh(); // other tabs and clients change stores too
      if (!this.selectedId && this.stores.items.length) this.selectedId = this.stores.items[0].id;
      if (this.detailStoreId !== this.selectedId || !this.stores.byId(this.selectedId)) this.select(this.selectedId, false);
      else await this._loadFiles();
    } catch (e) {
      showError(e);
    }
  }

  deactivate() {
    this.active = false;
    this.poller.stop();
  }

  select(storeId, focus = true) {
    this.poller.stop();
    this.selectedId = storeId && this.stores.byId(storeId) ? storeId : null;
    if (this.selectedId) sessionStorage.setItem(STORE_KEY, this.selectedId);
    else sessionStorage.removeItem(STORE_KEY);
    this.files = [];
    this._renderStores();
    this._renderDetail();
    if (this.selectedId) {
      if (focus && this.title) this.title.focus();
      this._loadFiles();
    }
  }

  // ----- stores ------------------------------------------------------------------------------------

  async _createStore(event, input) {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) { input.focus(); return; }
    try {
      const store = await this.stores.create(name);
      input.value = "";
      announce(`Store ${name} created`);
      this.select(store.id);
    } catch (e) {
      showError(e);
    }
  }

  async _deleteStore(store) {
    const ok = await confirmAction(`Delete the store "${store.name || store.id}" and its search index? `
      + "The uploaded files themselves are kept.", "Delete store");
    if (!ok) return;
    try {
      await this.stores.remove(store.id);
      announce(`Store ${store.name || store.id} deleted`);
      this.select(this.stores.items[0]?.id || null, false);
      const next = this.storeList.querySelector(".store-item") || document.querySelector("[data-testid=new-store-name]");
      if (next) next.focus();
    } catch (e) {
      showError(e);
    }
  }

  // ----- uploads -----------------------------------------------------------------------------------

  async _upload(items) {
    const storeId = this.selectedId;
    if (!storeId || !items.length) return;
    let attributes;
    try {
      attributes = parseAttributes(this.attrInput.value);
    } catch (e) {
      this.uploadStatus.textContent = `Attributes: ${messageOf(e)}. Nothing was uploaded.`;
      this.attrInput.setAttribute("aria-invalid", "true");
      this.attrInput.focus();
      return;
    }
    this.attrInput.removeAttribute("aria-invalid");
    // this upload reports into the panel it started in, even if another store is shown meanwhile
    const { uploadList, uploadStatus } = this;
    const rows = new Map();
    for (const item of items) {
      const state = h("span", { class: "upload-state" }, "waiting");
      const li = h("li", { "data-testid": "upload-item", "data-state": "waiting" },
        h("span", { class: "upload-name" }, item.path), " ", state);
      rows.set(item, { li, state });
      uploadList.append(li);
    }
    const total = items.length;
    let done = 0;
    let added = 0;
    const cut = items.truncated ? ` (only the first ${total} files of the drop were read)` : "";
    uploadStatus.textContent = `Uploading ${total} file${total === 1 ? "" : "s"}${cut}…`;
    const labels = { uploading: "uploading…", uploaded: "uploaded, attaching…", attached: "added", failed: "failed" };
    const report = (item, state, detail) => {
      const row = rows.get(item);
      if (!row) return;
      row.li.dataset.state = state;
      row.state.textContent = state === "failed" ? `failed: ${messageOf(detail)}` : labels[state];
      if (state === "uploaded") {
        this.fileNames.remember(detail.id, item.file.name);
        done += 1;
        uploadStatus.textContent = `Uploaded ${done} of ${total}…`;
      }
      if (state === "attached") added += 1;
    };
    const result = await uploadAndAttach(this.api, storeId, items, { attributes, report });
    const summary = `${added} of ${total} file${total === 1 ? "" : "s"} added`
      + (result.failed.length ? `, ${result.failed.length} could not be added` : "");
    uploadStatus.textContent = `${summary}${cut}. Ingestion status is in the list of files below.`;
    announce(summary);
    window.setTimeout(() => {
      for (const { li } of rows.values()) if (li.dataset.state === "attached") li.remove();
    }, 4000);
    if (this.selectedId === storeId) {
      await this._loadFiles();
      this.stores.reload(storeId).catch(() => {});
    }
  }

  // ----- files -------------------------------------------------------------------------------------

  /**
   * Read the selected store's files and show them. Polls, Refresh, uploads and removals read concurrently:
   * only the newest read is shown (an older answer could bring back a file just removed).
   * Returns the files, `undefined` when the read was superseded, or `{error}` when it failed.
   */
  async _loadFiles(userAsked = false) {
    const storeId = this.selectedId;
    if (!storeId) return undefined;
    const seq = ++this.filesSeq;
    const current = () => seq === this.filesSeq && this.selectedId === storeId;
    if (userAsked) this._setFilesStatus("Refreshing…");
    let files;
    try {
      files = await this.api.listAll(`/v1/vector_stores/${enc(storeId)}/files`, { order: "desc" });
      await this.fileNames.preload(files.map((f) => f.id));
    } catch (error) {
      if (current()) this._setFilesStatus(`Could not list the files: ${messageOf(error)}`);
      return { error };
    }
    if (!current()) return undefined;
    this._announceChanges(this.files, files);
    this.files = files;
    this._renderFiles();
    if (this.active && files.some((f) => f.status === "in_progress")) this.poller.start();
    return files;
  }

  async _poll() {
    if (!this.active || !this.selectedId) return false;
    const storeId = this.selectedId;
    const files = await this._loadFiles();
    if (files === undefined) return true; // a newer read is showing the list: keep following it
    if (files.error) return files.error.name !== "SignInCancelled"; // retry a blip
    const more = Boolean(files && files.some((f) => f.status === "in_progress"));
    if (!more) this.stores.reload(storeId).catch(() => {});
    return more;
  }

  _announceChanges(before, after) {
    const old = new Map(before.map((f) => [f.id, f.status]));
    for (const f of after) {
      if (old.get(f.id) === "in_progress" && f.status !== "in_progress") {
        const name = this.fileNames.peek(f.id);
        announce(f.status === "failed" ? `${name} failed: ${f.last_error?.message || "unknown reason"}`
                                       : `${name}: ${STATUS_LABELS[f.status] || f.status}`);
      }
    }
  }

  _setFilesStatus(text) {
    if (this.filesStatus) this.filesStatus.textContent = text;
  }

  _filtered() {
    const status = this.statusFilter.value;
    const key = this.keyFilter.value.trim();
    const value = this.valueFilter.value.trim().toLowerCase();
    return this.files.filter((f) => {
      if (status && f.status !== status) return false;
      const attrs = f.attributes || {};
      if (key && !(key in attrs)) return false;
      if (value) {
        const candidates = key ? [attrs[key]] : Object.values(attrs);
        if (!candidates.some((v) => String(v).toLowerCase() === value)) return false;
      }
      return true;
    });
  }

  _renderFiles() {
    if (!this.tbody) return;
    const focused = document.activeElement;
    let refocus = null;
    if (focused && this.tbody.contains(focused)) {
      refocus = { id: focused.closest("tr")?.dataset.fileId, testid: focused.dataset.testid };
    }
    const store = this.stores.byId(this.selectedId);
    this.caption.textContent = `Files in ${store?.name || this.selectedId}`;
    clear(this.tbody);
    const shown = this._filtered();
    for (const f of shown) this.tbody.append(this._row(f));
    if (!shown.length) {
      this.tbody.append(h("tr", {}, h("td", { colspan: "4", class: "muted empty" },
        this.files.length ? "No file matches the filters." : "No files yet: add documents above.")));
    }
    const counts = { completed: 0, in_progress: 0, failed: 0, cancelled: 0 };
    for (const f of this.files) counts[f.status] = (counts[f.status] || 0) + 1;
    let text = `${this.files.length} file${this.files.length === 1 ? "" : "s"}: ${counts.completed} completed, `
      + `${counts.in_progress} in progress, ${counts.failed} failed`;
    if (this.files.truncated) text += ` (the ${this.files.length} newest; the store has more)`;
    if (shown.length !== this.files.length) text += ` (${shown.length} shown)`;
    if (counts.in_progress) text += ". Checking progress…";
    this._setFilesStatus(text);
    if (refocus) {
      const again = this.tbody.querySelector(`tr[data-file-id="${CSS.escape(refocus.id || "")}"] `
        + `[data-testid="${CSS.escape(refocus.testid || "")}"]`);
      if (again && !again.disabled) again.focus();
    }
  }

  _row(f) {
    const name = this.fileNames.peek(f.id);
    const status = h("td", { class: "status-cell" },
      h("span", { class: `badge status-${f.status}`, "data-testid": "file-status" }, STATUS_LABELS[f.status] || f.status));
    if (f.status === "in_progress") {
      const p = f.progress || {};
      const total = Number.isFinite(p.pages_total) ? p.pages_total : null;
      const done = Number.isFinite(p.pages_done) ? p.pages_done : 0;
      const label = total ? `${done} of ${total} pages` : (done ? `${done} page${done === 1 ? "" : "s"} read` : "waiting to start…");
      const bar = h("progress", { "aria-label": `Ingesting ${name}`, "data-testid": "file-progress" });
      if (total) { bar.max = total; bar.value = Math.min(done, total); }
      status.append(h("div", { class: "progress-line" }, bar, h("span", { class: "small" }, label)));
    }
    if (f.status === "failed" || f.last_error) {
      status.append(h("p", { class: "file-error", "data-testid": "file-error" },
        f.last_error?.message || "Ingestion failed (no reason given)."));
    }
    const attrs = Object.entries(f.attributes || {});
    const open = h("button", { type: "button", class: "button secondary small", "data-testid": "open-file",
                               disabled: f.status !== "completed", "aria-label": `Open ${name}`,
                               onclick: (e) => this._open(f, name, e.currentTarget) }, "Open");
    const remove = h("button", { type: "button", class: "button danger-outline small", "data-testid": "remove-file",
                                 "aria-label": `Remove ${name} from the store`, onclick: () => this._remove(f, name) },
                     "Remove");
    return h("tr", { "data-testid": "file-row", "data-file-id": f.id, "data-status": f.status, "data-filename": name },
      h("td", {}, h("span", { class: "file-name" }, name),
        h("span", { class: "muted small block" }, formatBytes(f.usage_bytes))),
      status,
      h("td", {}, attrs.length ? h("ul", { class: "chips" }, attrs.map(([k, v]) => h("li", {}, `${k}: ${v}`)))
                               : h("span", { class: "muted small" }, "none")),
      h("td", { class: "actions-cell" }, open, remove));
  }

  _open(f, name, button) {
    const store = this.stores.byId(this.selectedId);
    this.viewer.open(store, f, name, button);
  }

  async _remove(f, name) {
    const ok = await confirmAction(`Remove "${name}" from this store? Its chunks and page images are deleted.`,
                                   "Remove file");
    if (!ok) return;
    try {
      await this.api.del(`/v1/vector_stores/${enc(this.selectedId)}/files/${enc(f.id)}`);
      this.chunks.forget(this.selectedId, f.id);
      announce(`${name} removed`);
      await this._loadFiles();
      this.stores.reload(this.selectedId).catch(() => {});
      const next = this.tbody.querySelector("[data-testid=open-file]:not([disabled]), [data-testid=remove-file]");
      if (next) next.focus();
    } catch (e) {
      showError(e);
    }
  }
}
