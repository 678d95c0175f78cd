// The Ask view: a chat over the selected stores through /v1/responses (streamed: tokens appear as they
// arrive), kept in a server-side conversation; every answer lists its cited pages as thumbnails that open
// the page with the cited region highlighted. A guard's refusal is shown as a refusal. The same view has a
// search-only mode (search.js).

import { enc } from "./api.js";
import { chatModels, loadCatalog } from "./catalog.js";
import { citedChunks, citedPage, thumbnail } from "./citation.js";
import { clear, field, h, messageOf, showError, uid } from "./dom.js";
import { SearchView } from "./search.js";

const SETTINGS_KEY = "vistack.ask.settings";
const CONVERSATION_KEY = "vistack.ask.conversation";
const STRATEGIES = [["top1", "Best page (top1)"], ["stitch", "Pages stitched (stitch)"],
                    ["per_page", "Page by page (per_page)"]];

function loadSettings() {
  try { return JSON.parse(sessionStorage.getItem(SETTINGS_KEY)) || {}; } catch { return {}; }
}

export class AskView {
  constructor({ api, stores, images, chunks, citations, panel }) {
    this.api = api;
    this.stores = stores;
    this.images = images;
    this.chunks = chunks;
    this.citations = citations;
    this.panel = panel;
    this.settings = { stores: [], mode: "answer", strategy: "top1", pages: 3, shields: [], ...loadSettings() };
    this.conversationId = sessionStorage.getItem(CONVERSATION_KEY);
    this.catalog = null;
    this.controller = null;
    this.restored = false;
    this.search = new SearchView({ api, stores, images, citations, selectedStores: () => this.selectedStores() });
    this._build();
    stores.addEventListener("change", () => this._renderStoreChoices());
  }

  // ----- layout ------------------------------------------------------------------------------------

  _build() {
    this.storeChoices = h("div", { class: "choices", "data-testid": "store-choices" });
    this.modeAnswer = h("input", { type: "radio", name: "ask-mode", value: "answer", "data-testid": "mode-answer",
                                   id: uid("mode"), onchange: () => this._setMode("answer") });
    this.modeSearch = h("input", { type: "radio", name: "ask-mode", value: "search", "data-testid": "mode-search",
                                   id: uid("mode"), onchange: () => this._setMode("search") });
    this.model = h("select", { "data-testid": "model-select", onchange: () => this._save() });
    this.strategy = h("select", { "data-testid": "strategy-select", onchange: () => this._save() },
      STRATEGIES.map(([v, t]) => h("option", { value: v }, t)));
    this.pages = h("input", { type: "number", min: "1", max: "8", "data-testid": "pages-input",
                              onchange: () => this._save() });
    this.shieldChoices = h("div", { class: "choices", "data-testid": "shield-choices" });
    this.answerSettings = h("div", { class: "answer-settings" },
      field("Model", this.model),
      field("Visual strategy", this.strategy,
            { hint: "The vision model sees one image per call: the best page only, the top pages stitched "
                + "into one image, or each page asked separately and the answers merged." }),
      field("Pages to show the model", this.pages, { hint: "Used by stitch and per_page." }),
      h("fieldset", {}, h("legend", {}, "Check with shields"), this.shieldChoices));

    const settings = h("aside", { class: "card ask-settings", "aria-labelledby": "ask-settings-h" },
      h("h2", { id: "ask-settings-h" }, "Settings"),
      h("fieldset", {}, h("legend", {}, "Stores to use"), this.storeChoices),
      h("fieldset", { class: "mode" }, h("legend", {}, "Mode"),
        h("div", { class: "choice" }, this.modeAnswer, h("label", { for: this.modeAnswer.id }, "Answer with the model")),
        h("div", { class: "choice" }, this.modeSearch, h("label", { for: this.modeSearch.id }, "Search only (ranked pages)"))),
      this.answerSettings);

    this.conversationLabel = h("p", { class: "muted small conversation-id", "data-testid": "conversation-id" });
    const newConversation = h("button", { type: "button", class: "button secondary small",
                                          "data-testid": "new-conversation", onclick: () => this.newConversation() },
                              "New conversation");
    this.transcript = h("div", { class: "transcript", role: "log", "aria-live": "polite", "aria-labelledby": "chat-h",
                                 "data-testid": "transcript", tabindex: "0" });
    this.question = h("textarea", { rows: "2", required: true, "data-testid": "question",
                                    placeholder: "e.g. What was revenue in fiscal 2025, and where is it shown?",
                                    onkeydown: (e) => {
                                      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                                        e.preventDefault();
                                        this.form.requestSubmit();
                                      }
                                    } });
    this.submit = h("button", { type: "submit", class: "button primary", "data-testid": "ask-submit" }, "Ask");
    this.stop = h("button", { type: "button", class: "button secondary", "data-testid": "ask-stop", hidden: true,
                              onclick: () => this.controller && this.controller.abort() }, "Stop");
    this.askStatus = h("p", { role: "status", class: "small muted", "data-testid": "ask-status" });
    this.form = h("form", { class: "composer", "data-testid": "ask-form", onsubmit: (e) => this._onSubmit(e) },
      field("Question", this.question, { className: "field grow",
                                         hint: "Enter sends; Shift+Enter starts a new line." }),
      h("div", { class: "composer-actions" }, this.submit, this.stop));
    this.chat = h("section", { class: "card chat", "aria-labelledby": "chat-h", "data-testid": "chat" },
      h("div", { class: "section-head" }, h("h2", { id: "chat-h" }, "Ask your documents"),
        h("div", { class: "conversation-bar" }, this.conversationLabel, newConversation)),
      this.transcript, this.askStatus, this.form);

    this.main = h("div", { class: "ask-main" }, this.chat, this.search.el);
    this.panel.append(h("div", { class: "ask-layout" }, settings, this.main));
    this._applySettings();
  }

  _applySettings() {
    (this.settings.mode === "search" ? this.modeSearch : this.modeAnswer).checked = true;
    this.strategy.value = this.settings.strategy;
    this.pages.value = String(this.settings.pages);
    this._setMode(this.settings.mode, false);
    this._renderConversationLabel();
  }

  _setMode(mode, save = true) {
    this.settings.mode = mode;
    this.chat.hidden = mode !== "answer";
    this.search.el.hidden = mode !== "search";
    this.answerSettings.hidden = mode !== "answer";
    if (save) this._save();
  }

  _save() {
    this.settings.strategy = this.strategy.value;
    this.settings.pages = Math.max(1, Math.min(8, Number(this.pages.value) || 3));
    if (this.model.value) this.settings.model = this.model.value;
    this.settings.stores = this.selectedStores();
    this.settings.shields = [...this.shieldChoices.querySelectorAll("input:checked")].map((i) => i.value);
    sessionStorage.setItem(SETTINGS_KEY, JSON.stringify(this.settings));
  }

  selectedStores() {
    return [...this.storeChoices.querySelectorAll("input:checked")].map((i) => i.value);
  }

  _renderStoreChoices() {
    const chosen = new Set(this.storeChoices.querySelector("input") ? this.selectedStores() : this.settings.stores);
    clear(this.storeChoices);
    if (!this.stores.items.length) {
      this.storeChoices.append(h("p", { class: "muted small" },
        this.stores.loaded ? "No stores yet: create one under Documents." : "Loading stores…"));
      return;
    }
    for (const store of this.stores.items) {
      const id = uid("store-choice");
      const counts = store.file_counts || {};
      this.storeChoices.append(h("div", { class: "choice" },
        h("input", { type: "checkbox", id, value: store.id, checked: chosen.has(store.id), "data-testid": "store-choice",
                     "data-store-name": store.name || "", onchange: () => this._save() }),
        h("label", { for: id }, store.name || store.id,
          h("span", { class: "muted small" }, ` (${counts.completed || 0} files)`))));
    }
  }

  _renderModels() {
    clear(this.model);
    const models = chatModels(this.catalog);
    for (const m of models) {
      this.model.append(h("option", { value: m.id }, m.state.ok ? m.id : `${m.id} (unavailable)`));
    }
    const wanted = models.find((m) => m.id === this.settings.model) || models.find((m) => m.state.ok) || models[0];
    if (wanted) this.model.value = wanted.id;
    clear(this.shieldChoices);
    if (!this.catalog.shields.length) {
      this.shieldChoices.append(h("p", { class: "muted small" }, "No shields configured."));
    }
    for (const s of this.catalog.shields) {
      const id = uid("shield-choice");
      this.shieldChoices.append(h("div", { class: "choice" },
        h("input", { type: "checkbox", id, value: s.id, checked: this.settings.shields.includes(s.id),
                     "data-testid": "shield-choice", onchange: () => this._save() }),
        h("label", { for: id }, s.id, s.state.ok ? "" : h("span", { class: "muted small" }, " (unavailable)"))));
    }
  }

  // ----- lifecycle --------------------------------------------------------------------------------

  async activate() {
    try {
      const jobs = [this.stores.refresh()]; // stores may have changed (Documents, another tab)
      if (!this.catalog) {
        jobs.push(loadCatalog(this.api).then((c) => { this.catalog = c; this._renderModels(); }));
      }
      await Promise.all(jobs);
      if (!this.restored) {
        // the old turns first: a question asked meanwhile would land above them
        this.submit.disabled = true;
        try {
          await this._restore();
          this.restored = true; // a failed restore is tried again at the next visit
        } finally {
          this.submit.disabled = Boolean(this.controller);
        }
      }
    } catch (e) {
      showError(e);
    }
  }

  deactivate() {}

  // ----- conversation -----------------------------------------------------------------------------

  _renderConversationLabel() {
    this.conversationLabel.textContent = this.conversationId
      ? `Conversation ${this.conversationId.slice(0, 13)}…` : "Not started yet";
    this.conversationLabel.title = this.conversationId || "";
  }

  async newConversation() {
    if (this.controller) this.controller.abort();
    this.conversationId = null;
    sessionStorage.removeItem(CONVERSATION_KEY);
    clear(this.transcript);
    this._renderConversationLabel();
    this.askStatus.textContent = "Started a new conversation.";
    this.question.focus();
  }

  async _ensureConversation() {
    if (this.conversationId) return this.conversationId;
    const conv = await this.api.post("/v1/conversations", {});
    this.conversationId = conv.id;
    sessionStorage.setItem(CONVERSATION_KEY, conv.id);
    this._renderConversationLabel();
    return conv.id;
  }

  /** Show the stored conversation of this tab again (after a reload). */
  async _restore() {
    if (!this.conversationId) return;
    let items;
    try {
      items = await this.api.listAll(`/v1/conversations/${enc(this.conversationId)}/items`, { order: "asc" });
    } catch (e) {
      if (e.status === 404) { // gone (deleted, another server): start afresh
        this.conversationId = null;
        sessionStorage.removeItem(CONVERSATION_KEY);
        this._renderConversationLabel();
        return;
      }
      throw e;
    }
    for (const item of items) {
      if (item.type !== "message") continue;
      const parts = typeof item.content === "string" ? [{ type: "input_text", text: item.content }] : item.content || [];
      if (item.role === "user") {
        const text = parts.filter((p) => p.type === "input_text" || p.type === "text").map((p) => p.text).join("\n");
        if (text) this.transcript.append(this._userTurn(text));
      } else if (item.role === "assistant") {
        const turn = new AnswerTurn(this);
        this.transcript.append(turn.el);
        turn.finishFromMessage(item);
      }
    }
    if (items.length) {
      this.askStatus.textContent = "Continuing the conversation of this tab.";
      this.transcript.scrollTop = this.transcript.scrollHeight;
    }
  }

  // ----- asking ------------------------------------------------------------------------------------

  _userTurn(text) {
    return h("div", { class: "turn turn-user", "data-testid": "turn-user" },
      h("p", { class: "who" }, "You"), h("p", { class: "turn-text" }, text));
  }

  _onSubmit(event) {
    event.preventDefault();
    const question = this.question.value.trim();
    if (!question || this.controller) return;
    this.ask(question);
  }

  async ask(question) {
    const model = this.model.value;
    if (!model) {
      this.askStatus.textContent = "No model to ask: see Models and safety.";
      return;
    }
    this._save();
    const storeIds = this.selectedStores();
    this.question.value = "";
    this.transcript.append(this._userTurn(question));
    const turn = new AnswerTurn(this);
    this.transcript.append(turn.el);
    turn.el.scrollIntoView({ block: "nearest" });
    this.controller = new AbortController();
    this.submit.disabled = true;
    this.stop.hidden = false;
    this.askStatus.textContent = "Answering…";
    try {
      const conversation = await this._ensureConversation();
      const body = {
        model, input: question, conversation,
        vision: { strategy: this.settings.strategy, pages: this.settings.pages },
      };
      if (storeIds.length) {
        body.tools = [{ type: "file_search", vector_store_ids: storeIds }];
        body.include = ["file_search_call.results"];
      }
      if (this.settings.shields.length) body.guardrails = this.settings.shields;
      turn.phase(storeIds.length ? "Searching the documents…" : "Answering without documents (no store chosen)…");
      for await (const event of this.api.stream("/v1/responses", body, this.controller.signal)) {
        turn.handle(event);
      }
      turn.end();
    } catch (e) {
      if (e && e.name === "AbortError") turn.stopped();
      else turn.fail(messageOf(e));
    } finally {
      this.controller = null;
      this.submit.disabled = false;
      this.stop.hidden = true;
      // a status region: screen readers hear it (not for a turn "New conversation" already cleared away)
      if (turn.el.isConnected) this.askStatus.textContent = turn.summary();
      if (document.activeElement === document.body || document.activeElement === this.stop) this.question.focus();
    }
  }

  /**
   * The retrieved chunks of a cited page that hold its highlighted regions: from the answer's search
   * results (`cite.results`) when they have the page, else from the store's stored chunks.
   */
  async textFor(cite) {
    let onPage = (cite.results || [])
      .filter((r) => r.file_id === cite.file_id && Number(r.attributes?.page) === cite.page)
      .map((r) => ({ text: r.text, bbox: r.attributes?.bbox, passage_boxes: r.attributes?.passage_boxes,
                     chunk_context: r.attributes?.chunk_context }));
    if (!onPage.length && cite.vector_store_id) {
      const chunks = await this.chunks.load(cite.vector_store_id, cite.file_id);
      onPage = chunks.filter((c) => c.page === cite.page);
    }
    return citedChunks(onPage, cite.bboxes);
  }
}

/** One answer in the transcript, built from the stream's events (or from a stored message). */
class AnswerTurn {
  constructor(view) {
    this.view = view;
    this.deltas = 0;
    this.results = [];
    this.cited = new Map();
    this.state = "streaming";
    this.phaseEl = h("span", { class: "phase", "data-testid": "answer-phase" });
    this.text = h("div", { class: "answer-text", "data-testid": "answer-text" });
    this.thumbs = h("ul", { class: "thumbs", "data-testid": "cited-pages" });
    this.citedBox = h("div", { class: "cited", hidden: true },
      h("p", { class: "cited-title" }, "Cited pages"), this.thumbs);
    this.note = h("p", { class: "small muted note", hidden: true });
    this.el = h("div", { class: "turn turn-assistant", "data-testid": "answer", "aria-busy": "true",
                        "data-state": "streaming", "data-deltas": "0" },
      h("p", { class: "who" }, "vistack ", this.phaseEl), this.text, this.citedBox, this.note);
    this.refusal = "";
  }

  phase(text) { this.phaseEl.textContent = text ? `· ${text}` : ""; }

  handle(event) {
    switch (event.type) {
      case "response.output_item.added":
        if (event.item?.type === "file_search_call") this.phase("Searching the documents…");
        break;
      case "response.file_search_call.completed":
        this.phase("Reading the pages…");
        break;
      case "response.output_item.done":
        if (event.item?.type === "file_search_call" && Array.isArray(event.item.results)) {
          this.results = event.item.results;
        }
        break;
      case "response.output_text.delta":
        if (this.deltas === 0) this.phase("Answering…");
        this.deltas += 1;
        this.text.append(document.createTextNode(event.delta || ""));
        this.el.dataset.deltas = String(this.deltas);
        this._follow();
        break;
      case "response.output_text.annotation.added":
        this._cite(event.annotation);
        break;
      case "response.refusal.delta":
        this.refusal += event.delta || "";
        break;
      case "response.refusal.done":
        this._showRefusal(event.refusal || this.refusal);
        break;
      case "response.completed":
      case "response.incomplete":
      case "response.failed":
        this._final(event.response || {});
        break;
      case "error":
        this.fail(event.message || event.error?.message || "The server reported an error.");
        break;
      default:
        break;
    }
  }

  _final(response) {
    for (const item of response.output || []) {
      if (item.type === "file_search_call" && Array.isArray(item.results)) this.results = item.results;
      if (item.type === "message") this.finishFromMessage(item, false);
    }
    if (response.status === "failed") {
      this.fail(response.error?.message || "The answer failed.");
    } else if (response.status === "incomplete") {
      const reason = response.incomplete_details?.reason;
      this.note.textContent = reason === "max_output_tokens" || reason === "length"
        ? "The answer stopped at the length limit." : `The answer is incomplete${reason ? ` (${reason})` : ""}.`;
      this.note.hidden = false;
    }
  }

  /** Fill the turn from a finished assistant message item (text, refusal, citations). */
  finishFromMessage(item, replaceText = true) {
    for (const part of item.content || []) {
      if (part.type === "output_text") {
        if (replaceText || !this.text.textContent) this.text.textContent = part.text || "";
        for (const a of part.annotations || []) this._cite(a);
      } else if (part.type === "refusal" && !this.el.querySelector(".refusal")) {
        this._showRefusal(part.refusal);
      }
    }
    if (replaceText) this.end();
  }

  /** One thumbnail per cited page; each further citation of a page adds its region to that page's. */
  _cite(annotation) {
    if (!annotation || annotation.type !== "file_citation") return;
    const cite = citedPage(annotation);
    const key = cite.page_image_file_id || `${cite.file_id}#${cite.page}`;
    const known = this.cited.get(key);
    if (known) {
      for (const bbox of cite.bboxes) if (!known.bboxes.includes(bbox)) known.bboxes.push(bbox);
      return;
    }
    this.cited.set(key, cite);
    this.thumbs.append(h("li", {}, thumbnail(this.view.images, cite, (c, button) =>
      this.view.citations.open({ ...c, bboxes: [...c.bboxes], results: this.results }, button))));
    this.citedBox.hidden = false;
  }

  _showRefusal(text) {
    this.state = "refused";
    this.el.append(h("div", { class: "refusal", role: "alert", "data-testid": "refusal" },
      h("p", { class: "refusal-title" }, "Refused by a safety shield"),
      h("p", {}, text || "The request was refused.")));
  }

  _follow() {
    const log = this.view.transcript;
    if (log.scrollHeight - log.scrollTop - log.clientHeight < 120) log.scrollTop = log.scrollHeight;
  }

  end() {
    if (this.state === "streaming") this.state = "done";
    this.phase("");
    this.el.dataset.state = this.state;
    this.el.setAttribute("aria-busy", "false");
    if (!this.text.textContent && this.state === "done") {
      this.text.textContent = "(no text)";
      this.text.classList.add("muted");
    }
    if (!this.text.textContent && this.state !== "done") this.text.hidden = true;
  }

  stopped() {
    this.state = "stopped";
    this.note.textContent = "Stopped.";
    this.note.hidden = false;
    this.end();
  }

  fail(message) {
    if (this.state === "failed") return;
    this.state = "failed";
    this.el.append(h("div", { class: "answer-error", role: "alert", "data-testid": "answer-error" },
      `The answer failed: ${message}`));
    this.end();
  }

  summary() {
    if (this.state === "refused") return "The question was refused by a safety shield.";
    if (this.state === "failed") return "The answer failed.";
    if (this.state === "stopped") return "Stopped.";
    const n = this.cited.size;
    return `Answer ready${n ? `, citing ${n} page${n === 1 ? "" : "s"}` : ""}.`;
  }
}
