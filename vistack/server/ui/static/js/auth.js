// The API key: kept in sessionStorage only (this tab, gone when it closes; never localStorage, never the
// URL), asked for with a modal dialog when the server answers 401, checked before it is kept, and cleared
// by "Sign out".

import { h, uid } from "./dom.js";

const KEY = "vistack.apiKey";

export const credentials = {
  get() {
    try { return sessionStorage.getItem(KEY); } catch { return null; }
  },
  set(value) { sessionStorage.setItem(KEY, value); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class AuthDialog {
  /** @param {{checkKey(key: string): Promise<{ok: boolean, message?: string}>}} api */
  constructor(api, { onSignedIn } = {}) {
    this.api = api;
    this.onSignedIn = onSignedIn || (() => {});
    const titleId = uid("auth-title");
    const descId = uid("auth-desc");
    this.input = h("input", { type: "password", id: uid("api-key"), name: "api-key", autocomplete: "off",
                              spellcheck: "false", required: true, "data-testid": "auth-key-input" });
    this.error = h("p", { class: "form-error", role: "alert", "data-testid": "auth-error", hidden: true });
    this.reason = h("p", { class: "hint", "data-testid": "auth-reason" });
    this.submit = h("button", { type: "submit", class: "button primary", "data-testid": "auth-submit" }, "Sign in");
    this.cancel = h("button", { type: "button", class: "button secondary", "data-testid": "auth-cancel",
                                onclick: () => this.dialog.close("cancel") }, "Cancel");
    this.form = h("form", { method: "dialog", class: "stack", onsubmit: (e) => this._submit(e) },
      h("h2", { id: titleId }, "API key required"),
      h("p", { id: descId }, "This server asks for an API key (or an access token). It is kept only in this "
        + "browser tab and sent with each request; closing the tab or signing out forgets it."),
      this.reason,
      h("div", { class: "field" }, h("label", { for: this.input.id }, "API key"), this.input),
      this.error,
      h("div", { class: "actions" }, this.submit, this.cancel));
    this.dialog = h("dialog", { class: "auth-dialog", "aria-labelledby": titleId, "aria-describedby": descId,
                                "data-testid": "auth-dialog" }, this.form);
    this.dialog.addEventListener("close", () => this._closed());
    document.body.append(this.dialog);
    this._resolve = null;
    this._returnFocus = null;
  }

  /** Ask for a key. Resolves true when a key the server accepts was stored, false when cancelled. */
  ask(reason) {
    if (this._resolve) return this._pending;
    this._pending = new Promise((resolve) => { this._resolve = resolve; });
    this._returnFocus = document.activeElement;
    const had = credentials.get();
    this.reason.textContent = had ? `The server refused the key of this tab (${reason}). Enter it again.` : "";
    this.reason.hidden = !had;
    this.error.hidden = true;
    this.input.value = "";
    this.input.removeAttribute("aria-invalid");
    this.submit.disabled = false;
    this.dialog.showModal();
    this.input.focus();
    return this._pending;
  }

  async _submit(event) {
    event.preventDefault();
    const key = this.input.value.trim();
    if (!key) {
      this._fail("Enter the API key.");
      return;
    }
    this.submit.disabled = true;
    this.submit.textContent = "Checking…";
    const result = await this.api.checkKey(key);
    this.submit.disabled = false;
    this.submit.textContent = "Sign in";
    if (!this.dialog.open) return; // cancelled while the key was being checked: keep nothing
    if (!result.ok) {
      const why = result.message.replace(/[.\s]+$/, "");
      this._fail(`The server refused this key: ${why}. Check it and try again.`);
      this.input.select();
      return;
    }
    credentials.set(key);
    this._done = true;
    this.dialog.close("ok");
    this.onSignedIn();
  }

  _fail(message) {
    this.error.textContent = message;
    this.error.hidden = false;
    this.input.setAttribute("aria-invalid", "true");
    this.input.setAttribute("aria-describedby", this.error.id || (this.error.id = uid("auth-error")));
    this.input.focus();
  }

  _closed() {
    const ok = this._done === true;
    this._done = false;
    const resolve = this._resolve;
    this._resolve = null;
    if (this._returnFocus && this._returnFocus.isConnected && typeof this._returnFocus.focus === "function") {
      this._returnFocus.focus();
    }
    if (resolve) resolve(ok);
  }
}
