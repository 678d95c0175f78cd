// The API client: every call to the server goes through here. It adds the Bearer key (when there is one),
// turns error bodies into ApiError, asks for a key when a call answers 401 and retries it, reads
// streaming responses (SSE) and fetches binary content as blobs (images need the header too, so
// they can never be plain <img src> URLs: the key must not appear in a URL).

import { readSSE } from "./sse.js";

export class ApiError extends Error {
  constructor(status, message, code = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** Thrown when the user closes the key dialog instead of giving a key. */
export class SignInCancelled extends ApiError {
  constructor() {
    super(401, "Sign-in cancelled: this server needs an API key.", "sign_in_cancelled");
    this.name = "SignInCancelled";
  }
}

export async function errorFrom(response) {
  let message = `${response.status} ${response.statusText || "error"}`;
  let code = null;
  try {
    const body = await response.json();
    const err = body && (body.error || body.detail);
    if (typeof err === "string") message = err;
    else if (err && typeof err === "object") {
      message = err.message || (Array.isArray(err) ? err.map((e) => e.msg).join("; ") : message);
      code = err.code || err.type || null;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, code);
}

export class Api {
  /**
   * @param {object} options
   * @param {{get(): string|null}} options.credentials where the key lives (sessionStorage)
   * @param {(reason: string) => Promise<boolean>} options.onUnauthorized asks for a key; true when one was given
   */
  constructor({ credentials, onUnauthorized, base = "" }) {
    this.credentials = credentials;
    this.onUnauthorized = onUnauthorized;
    this.base = base;
    this._prompt = null; // one key dialog for every call that got a 401 at the same time
  }

  headers(extra = {}, key = this.credentials.get()) {
    const headers = { ...extra };
    if (key) headers.Authorization = `Bearer ${key}`;
    return headers;
  }

  /** fetch() with the key; on 401 asks for a key (once for all callers) and retries. Returns an ok Response. */
  async fetch(path, { method = "GET", json, form, query, signal, accept } = {}) {
    let url = this.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, String(v));
      const qs = params.toString();
      if (qs) url += (url.includes("?") ? "&" : "?") + qs;
    }
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const extra = {};
      let body;
      if (json !== undefined) {
        extra["Content-Type"] = "application/json";
        body = JSON.stringify(json);
      } else if (form !== undefined) {
        body = form; // the browser sets the multipart boundary
      }
      if (accept) extra.Accept = accept;
      let response;
      try {
        response = await fetch(url, { method, headers: this.headers(extra), body, signal, cache: "no-store" });
      } catch (e) {
        if (e && e.name === "AbortError") throw e;
        throw new ApiError(0, `The server at ${location.origin} cannot be reached (${e.message || e}).`, "network");
      }
      if (response.status !== 401) {
        if (!response.ok) throw await errorFrom(response);
        return response;
      }
      const reason = (await errorFrom(response)).message;
      if (!this.onUnauthorized || !(await this._askForKey(reason))) throw new SignInCancelled();
    }
    throw new ApiError(401, "The server keeps refusing the key.", "unauthorized");
  }

  _askForKey(reason) {
    if (!this._prompt) {
      this._prompt = this.onUnauthorized(reason).finally(() => { this._prompt = null; });
    }
    return this._prompt;
  }

  async json(path, options = {}) {
    const response = await this.fetch(path, options);
    return response.json();
  }

  get(path, query, signal) { return this.json(path, { query, signal }); }
  post(path, json, signal) { return this.json(path, { method: "POST", json: json ?? {}, signal }); }
  del(path) { return this.json(path, { method: "DELETE" }); }

  /** Whether the server accepts this key, without storing it: {ok: true} or {ok: false, message}. */
  async checkKey(key) {
    let response;
    try {
      response = await fetch(this.base + "/v1/models", { headers: this.headers({}, key), cache: "no-store" });
    } catch (e) {
      return { ok: false, message: `The server cannot be reached (${e.message || e}).` };
    }
    if (response.status === 401) return { ok: false, message: (await errorFrom(response)).message };
    return { ok: true };
  }

  async blob(path) {
    const response = await this.fetch(path);
    return response.blob();
  }

  /** Upload one file (multipart) for file search. */
  uploadFile(file, purpose = "assistants") {
    const form = new FormData();
    form.append("purpose", purpose);
    form.append("file", file, file.name);
    return this.json("/v1/files", { method: "POST", form });
  }

  /** POST a streaming request and yield its events (objects with `type`). */
  async *stream(path, body, signal) {
    const response = await this.fetch(path, { method: "POST", json: { ...body, stream: true }, signal,
                                              accept: "text/event-stream" });
    yield* readSSE(response.body, signal);
  }

  /**
   * Every item of a paginated OpenAI list, bounded at `maxPages` pages of `limit`; the array's `truncated`
   * is true when the server had more (so a view can say it shows only the first ones).
   */
  async listAll(path, query = {}, { limit = 100, maxPages = 20 } = {}) {
    const items = [];
    items.truncated = false;
    let after;
    for (let i = 0; ; i += 1) {
      const page = await this.get(path, { ...query, limit, after });
      items.push(...(page.data || []));
      if (!page.has_more || !page.last_id) break;
      if (i + 1 >= maxPages) {
        items.truncated = true;
        break;
      }
      after = page.last_id;
    }
    return items;
  }
}

export const enc = encodeURIComponent;
