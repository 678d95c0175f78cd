// Search-only mode: ranked pages (with scores and page thumbnails) for a query over the selected stores,
// without asking the model. Attribute filters are OpenAI's comparison and compound filters.

import { enc } from "./api.js";
import { citedPage, thumbnail } from "./citation.js";
import { clear, field, h, messageOf, typedValue, uid } from "./dom.js";
import { shorten } from "./pages.js";

const OPERATORS = [["eq", "equals"], ["ne", "does not equal"], ["gt", "greater than"], ["gte", "at least"],
                   ["lt", "less than"], ["lte", "at most"], ["in", "is one of (comma-separated)"],
                   ["nin", "is none of (comma-separated)"]];

/** Filter rows ({key, op, value} strings) -> an OpenAI filter object, or null. */
export function compileFilters(rows, combine = "and") {
  const filters = rows.filter((r) => r.key.trim()).map((r) => {
    const raw = r.value.trim();
    const value = r.op === "in" || r.op === "nin"
      ? raw.split(",").map((v) => typedValue(v.trim())).filter((v) => v !== "")
      : typedValue(raw);
    return { type: r.op, key: r.key.trim(), value };
  });
  if (!filters.length) return null;
  return filters.length === 1 ? filters[0] : { type: combine, filters };
}

export class SearchView {
  constructor({ api, stores, images, citations, selectedStores }) {
    this.api = api;
    this.stores = stores;
    this.images = images;
    this.citations = citations;
    this.selectedStores = selectedStores;
    this.query = h("input", { type: "search", required: true, autocomplete: "off", "data-testid": "search-query" });
    this.mode = h("select", { "data-testid": "search-mode" },
      h("option", { value: "hybrid" }, "Hybrid"), h("option", { value: "vector" }, "Vector"),
      h("option", { value: "keyword" }, "Keyword"));
    this.count = h("input", { type: "number", min: "1", max: "50", value: "10", "data-testid": "search-count" });
    this.combine = h("select", { "data-testid": "filter-combine" },
      h("option", { value: "and" }, "all filters"), h("option", { value: "or" }, "any filter"));
    this.filterRows = h("div", { class: "filter-rows", "data-testid": "search-filters" });
    const addFilter = h("button", { type: "button", class: "button secondary small", "data-testid": "add-filter",
                                    onclick: () => this._addFilterRow(true) }, "Add filter");
    this.submit = h("button", { type: "submit", class: "button primary", "data-testid": "search-submit" }, "Search");
    this.status = h("p", { role: "status", class: "small", "data-testid": "search-status" });
    this.results = h("ol", { class: "results", "data-testid": "search-results", "aria-labelledby": "search-h" });
    this.form = h("form", { role: "search", class: "search-form", "data-testid": "search-form",
                            "aria-label": "Search the selected stores", onsubmit: (e) => this._search(e) },
      h("div", { class: "search-row" }, field("Search query", this.query, { className: "field grow" }),
        field("Mode", this.mode), field("Results", this.count), this.submit),
      h("fieldset", { class: "filters-fieldset" },
        h("legend", {}, "Attribute filters (optional)"),
        this.filterRows,
        h("div", { class: "filter-actions" }, addFilter, field("Match", this.combine, { className: "field inline" }))));
    this.el = h("section", { class: "card search", "aria-labelledby": "search-h", "data-testid": "search-view" },
      h("h2", { id: "search-h" }, "Search pages"),
      h("p", { class: "muted small" }, "Finds the best matching passages in the selected stores, ranked by score, "
        + "without asking the model (hybrid mode combines meaning and keywords). Open a page to see the passage "
        + "highlighted."),
      this.form, this.status, this.results);
  }

  _addFilterRow(focus) {
    const key = h("input", { type: "text", autocomplete: "off", "data-testid": "filter-key", placeholder: "page" });
    const op = h("select", { "data-testid": "filter-op" }, OPERATORS.map(([v, t]) => h("option", { value: v }, t)));
    const value = h("input", { type: "text", autocomplete: "off", "data-testid": "filter-value" });
    const row = h("div", { class: "filter-row", "data-testid": "filter-row", role: "group", "aria-label": "Filter" });
    const remove = h("button", { type: "button", class: "button secondary small", "aria-label": "Remove this filter",
                                 onclick: () => {
                                   row.remove();
                                   this.filterRows.parentElement.querySelector("[data-testid=add-filter]").focus();
                                 } }, "Remove");
    row.append(field("Attribute", key), field("Condition", op), field("Value", value), remove);
    this.filterRows.append(row);
    if (focus) key.focus();
  }

  _filters() {
    const rows = [...this.filterRows.querySelectorAll(".filter-row")].map((row) => ({
      key: row.querySelector("[data-testid=filter-key]").value,
      op: row.querySelector("[data-testid=filter-op]").value,
      value: row.querySelector("[data-testid=filter-value]").value,
    }));
    return compileFilters(rows, this.combine.value);
  }

  async _search(event) {
    event.preventDefault();
    const query = this.query.value.trim();
    const storeIds = this.selectedStores();
    if (!query) { this.query.focus(); return; }
    if (!storeIds.length) {
      this.status.textContent = "Choose at least one store to search (in Settings).";
      return;
    }
    const max = Math.max(1, Math.min(50, Number(this.count.value) || 10));
    const body = { query, max_num_results: max, search_mode: this.mode.value };
    const filters = this._filters();
    if (filters) body.filters = filters;
    this.submit.disabled = true;
    this.status.textContent = "Searching…";
    clear(this.results);
    try {
      const pages = await Promise.all(storeIds.map((id) =>
        this.api.post(`/v1/vector_stores/${enc(id)}/search`, body).then((r) =>
          // each hit outlines the block its query names (the server's passage_bbox), else its chunk
          (r.data || []).map((hit) => ({ ...citedPage(hit), vector_store_id: id, kind: "search" })))));
      const hits = pages.flat().sort((a, b) => (b.score ?? 0) - (a.score ?? 0)).slice(0, max);
      this._render(hits, storeIds.length > 1);
      const text = hits.length
        ? `${hits.length} result${hits.length === 1 ? "" : "s"} for “${query}”, best first.`
        : `No results for “${query}”.`;
      this.status.textContent = text;
    } catch (e) {
      this.status.textContent = `Search failed: ${messageOf(e)}`;
    } finally {
      this.submit.disabled = false;
    }
  }

  _render(hits, showStore) {
    clear(this.results);
    hits.forEach((hit, i) => {
      const titleId = uid("result");
      this.results.append(h("li", { class: "result", "data-testid": "search-result", "data-score": String(hit.score),
                                    "aria-labelledby": titleId },
        h("span", { class: "rank", "aria-hidden": "true" }, String(i + 1)),
        thumbnail(this.images, hit, (cite, button) => this.citations.open(cite, button), { testid: "result-thumb" }),
        h("div", { class: "result-body" },
          h("h3", { id: titleId, class: "result-title" }, h("span", { class: "visually-hidden" }, `Result ${i + 1}: `),
            hit.filename, hit.page ? `, page ${hit.page}` : ""),
          h("p", { class: "result-meta small" },
            h("span", { class: "score", "data-testid": "result-score" }, `Score ${Number(hit.score).toFixed(4)}`),
            hit.chunk_type ? ` · ${hit.chunk_type}` : "",
            showStore ? ` · ${this.stores.name(hit.vector_store_id)}` : ""),
          h("p", { class: "snippet", "data-testid": "result-text" }, shorten(hit.text, 320)))));
    });
  }
}
