// The composer's outbox: every message goes through here, online or not.
//
// A message is first written to localStorage with a client-made Idempotency-Key, then sent in
// order to POST /api/v1/conversations/{id}/messages (several waiting for one conversation go
// together to .../messages/batch, each with its own key). A network failure leaves it
// queued (shown as "waiting") and sending resumes when the browser is back online; the API
// answers a repeated key with the message it already stored, so a message whose answer was lost
// is never sent twice. Several tabs share one queue (a Web Lock serialises them when available).

const STORE = "wadesk.outbox.v1";
const BATCH = 50; // messages per request when several wait for one conversation

export function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Outbox {
  constructor({ csrf, onSent, onFailed, onChange }) {
    this.csrf = csrf;
    this.onSent = onSent || (() => {});
    this.onFailed = onFailed || (() => {});
    this.onChange = onChange || (() => {});
    this.flushing = false;
    this.again = false;
    this.timer = null;
    window.addEventListener("online", () => this.flush());
    window.addEventListener("storage", (event) => {
      if (event.key === STORE) this.onChange(this.items());
    });
  }

  items() {
    try {
      const parsed = JSON.parse(localStorage.getItem(STORE) || "[]");
      return Array.isArray(parsed) ? parsed : [];
    } catch {
      return [];
    }
  }

  save(items) {
    localStorage.setItem(STORE, JSON.stringify(items));
    this.onChange(items);
  }

  /** Queue a message: {conversationId, url, body, preview}; returns the stored item. */
  enqueue(message) {
    const item = { ...message, key: newKey(), queuedAt: Date.now() };
    const items = this.items();
    items.push(item);
    this.save(items);
    this.flush();
    return item;
  }

  remove(key) {
    this.save(this.items().filter((item) => item.key !== key));
  }

  async flush() {
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.again = false;
        if (navigator.locks) {
          await navigator.locks.request("wadesk-outbox", () => this.sendAll());
        } else {
          await this.sendAll();
        }
      } while (this.again);
    } finally {
      this.flushing = false;
    }
  }

  retryLater(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), ms);
  }

  async sendAll() {
    while (navigator.onLine !== false) {
      const items = this.items();
      if (!items.length) return;
      // Consecutive messages to one conversation go in one request (in order, each with its
      // own key): a long offline queue empties in a few round trips instead of hundreds.
      const run = [];
      for (const item of items) {
        if (run.length === BATCH || item.url !== items[0].url) break;
        run.push(item);
      }
      const done = run.length > 1 ? await this.sendBatch(run) : await this.sendOne(run[0]);
      if (!done) return;
    }
  }

  post(url, body, key) {
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": this.csrf };
    if (key) headers["Idempotency-Key"] = key;
    return fetch(url, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body) });
  }

  /** false when sending must pause (offline, server away, key in use): retried later. */
  async answer(request) {
    let response;
    try {
      response = await request;
    } catch {
      this.retryLater(3000); // offline or the server is away: keep it, try again
      return null;
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    const code = data && data.error ? data.error.code : "";
    if (response.status >= 500 || response.status === 429 || code === "idempotency_key_in_use") {
      this.retryLater(2000);
      return null;
    }
    return { response, data };
  }

  async sendOne(item) {
    const answered = await this.answer(this.post(item.url, item.body, item.key));
    if (!answered) return false;
    const { response, data } = answered;
    if (response.ok) {
      this.remove(item.key);
      this.onSent(item, data);
    } else {
      // Refused for good (window closed, session ended, ...): stop trying this one.
      this.remove(item.key);
      this.onFailed(item, data && data.error ? data.error.message : `HTTP ${response.status}`, response.status);
    }
    return true;
  }

  async sendBatch(run) {
    const messages = run.map((item) => ({ ...item.body, idempotency_key: item.key }));
    const answered = await this.answer(this.post(`${run[0].url}/batch`, { messages }));
    if (!answered) return false;
    const { response, data } = answered;
    // A message the API cannot even read (too long...): send the first alone, which names it.
    if (response.status === 422) return this.sendOne(run[0]);
    if (!response.ok || !data || !Array.isArray(data.results)) {
      // The whole request was refused (session ended, conversation gone): as one message would be.
      const reason = data && data.error ? data.error.message : `HTTP ${response.status}`;
      for (const item of run) {
        this.remove(item.key);
        this.onFailed(item, reason, response.status);
      }
      return true;
    }
    const byKey = new Map(data.results.map((r) => [r.idempotency_key, r]));
    for (const item of run) {
      const result = byKey.get(item.key);
      if (!result) {
        this.retryLater(2000); // not answered: stays first in the queue, sent again (same key)
        return false;
      }
      this.remove(item.key);
      if (result.status < 300) this.onSent(item, result.message);
      else this.onFailed(item, result.error ? result.error.message : `HTTP ${result.status}`, result.status);
    }
    return true;
  }
}
