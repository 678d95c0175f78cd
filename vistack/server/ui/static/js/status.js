// The "Models and safety" view: which models and shields are configured and whether they can be used, and
// every provider's health, as the server reports them.

import { loadCatalog } from "./catalog.js";
import { announce, clear, h, messageOf } from "./dom.js";

export class StatusView {
  constructor({ api, panel }) {
    this.api = api;
    this.panel = panel;
    this.body = h("div", { class: "status-body", "data-testid": "status-body" });
    this.statusLine = h("p", { role: "status", class: "small", "data-testid": "status-line" });
    const refresh = h("button", { type: "button", class: "button secondary small", "data-testid": "status-refresh",
                                  onclick: () => this.load(true) }, "Refresh");
    panel.append(h("div", { class: "card" },
      h("div", { class: "section-head" }, h("h2", {}, "Models and safety"), refresh),
      this.statusLine, this.body));
  }

  activate() { this.load(); }
  deactivate() {}

  async load(userAsked = false) {
    this.statusLine.textContent = "Loading…";
    let catalog;
    try {
      catalog = await loadCatalog(this.api);
    } catch (e) {
      this.statusLine.textContent = `Could not read the server's models: ${messageOf(e)}`;
      return;
    }
    clear(this.body);
    const health = catalog.health || {};
    const degraded = Object.entries(health.degraded || {});
    this.body.append(
      h("section", { "aria-labelledby": "server-health-h", class: "status-section" },
        h("h3", { id: "server-health-h" }, "Server"),
        h("p", { "data-testid": "server-health" },
          badge(health.status === "OK" && !degraded.length, health.status === "OK"
            ? (degraded.length ? "Serving, some providers degraded" : "Healthy") : (health.status || "Unknown")),
          health.error ? h("span", { class: "small" }, ` ${health.error}`) : null),
        degraded.length ? h("ul", { class: "plain" }, degraded.map(([id, msg]) =>
          h("li", {}, h("strong", {}, id), ": ", msg))) : null),
      this._table("Models", "models-table", ["Model", "Type", "Provider", "State"], catalog.models.map((m) => ({
        testid: "model-row", key: m.id,
        cells: [m.id, m.guard ? `${m.type} (guard)` : (m.vision ? `${m.type} (vision)` : m.type), m.provider_id],
        state: m.state,
      }))),
      this._table("Shields", "shields-table", ["Shield", "Guard model", "Provider", "State"],
        catalog.shields.map((s) => ({ testid: "shield-row", key: s.id, cells: [s.id, s.model, s.provider_id],
                                      state: s.state })),
        "No shields are configured: questions and answers are not checked by a guard model."),
      this._table("Providers", "providers-table", ["API", "Provider", "Type", "Health"],
        catalog.providers.map((p) => ({
          testid: "provider-row", key: p.provider_id,
          cells: [p.api, p.provider_id, p.provider_type],
          state: { ok: (p.health?.status || "OK") !== "Error", text: p.health?.status || "Unknown",
                   detail: p.health?.message || "" },
        }))),
    );
    const usable = catalog.models.filter((m) => m.state.ok).length;
    const n = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;
    this.statusLine.textContent = `${n(catalog.models.length, "model")} (${usable} available), `
      + `${n(catalog.shields.length, "shield")}, ${n(catalog.providers.length, "provider")}.`;
    if (userAsked) announce("Models and safety refreshed");
  }

  _table(title, testid, headers, rows, emptyText = "None configured.") {
    const id = `${testid}-h`;
    const section = h("section", { "aria-labelledby": id, class: "status-section" }, h("h3", { id }, title));
    if (!rows.length) {
      section.append(h("p", { class: "muted" }, emptyText));
      return section;
    }
    section.append(h("div", { class: "table-wrap" }, h("table", { class: "status-table", "data-testid": testid },
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((r) => h("tr", { "data-testid": r.testid, "data-id": r.key,
                                               "data-ok": String(r.state.ok) },
        h("th", { scope: "row" }, r.cells[0]), r.cells.slice(1).map((c) => h("td", {}, c)),
        h("td", {}, badge(r.state.ok, r.state.text),
          r.state.detail ? h("p", { class: "small detail" }, r.state.detail) : null)))))));
    return section;
  }
}

function badge(ok, text) {
  return h("span", { class: `badge ${ok ? "status-completed" : "status-failed"}` }, text);
}
