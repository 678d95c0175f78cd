// Small DOM helpers: element building without innerHTML (no markup from data ever reaches the parser),
// announcements for screen readers, and the page-wide error banner.

/**
 * h("button", {class: "x", type: "button", dataset: {testid: "go"}, onclick: fn}, "Go")
 * Attributes: `class`, `text`, `dataset`, `style` (an object: CSSOM, allowed by the page's CSP),
 * `on<event>` (a listener), booleans (true sets an empty attribute, false/null/undefined skip it),
 * anything else via setAttribute. Children: nodes, strings, arrays, null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let idCounter = 0;
/** A unique element id with a readable prefix (for label/aria wiring). */
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** Say something to screen readers (polite), e.g. "Store created". */
export function announce(message) {
  const el = document.getElementById("announcer");
  if (!el) return;
  el.textContent = "";
  // a new text node after a tick makes repeated identical messages announce again
  window.setTimeout(() => { el.textContent = message; }, 30);
}

/** Show an error in the page-wide banner (role="alert"). */
export function showError(error) {
  const banner = document.getElementById("error-banner");
  const text = document.getElementById("error-text");
  if (!banner || !text) return;
  text.textContent = messageOf(error);
  banner.hidden = false;
}

export function hideError() {
  const banner = document.getElementById("error-banner");
  if (banner) banner.hidden = true;
}

export function messageOf(error) {
  if (!error) return "Unknown error";
  if (typeof error === "string") return error;
  return error.message || String(error);
}

/** A label + control pair in a wrapper div. */
export function field(labelText, control, { hint, className = "field" } = {}) {
  if (!control.id) control.id = uid("f");
  const parts = [h("label", { for: control.id }, labelText), control];
  if (hint) {
    const hintEl = h("p", { class: "hint", id: uid("hint") }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
    parts.push(hintEl);
  }
  return h("div", { class: className }, parts);
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Parse "key=value, key2=value2" into attributes (numbers and true/false typed). Throws on bad input. */
export function parseAttributes(text) {
  const out = {};
  for (const part of (text || "").split(/[,;\n]/)) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    if (eq <= 0) throw new Error(`"${item}" is not key=value`);
    out[item.slice(0, eq).trim()] = typedValue(item.slice(eq + 1).trim());
  }
  return out;
}

/**
 * "3" -> 3, "true" -> true, anything else stays a string. A number only when it reads back the same
 * ("007", "1.50" and "0123" are codes, not numbers); quotes force a string: "\"42\"" -> "42".
 */
export function typedValue(raw) {
  const quoted = /^"(.*)"$/.exec(raw) || /^'(.*)'$/.exec(raw);
  if (quoted) return quoted[1];
  if (/^-?\d+(\.\d+)?$/.test(raw) && String(Number(raw)) === raw) return Number(raw);
  if (raw === "true") return true;
  if (raw === "false") return false;
  return raw;
}
