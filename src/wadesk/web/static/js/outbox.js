// The composer's outbox: every message goes through here, online or not.
//
// A message is first written to localStorage with a client-made Idempotency-Key, then sent in
// order, one at a time, to POST /api/v1/conversations/{id}/messages. A network failure leaves it
// queued (shown as "waiting") and sending resumes when the browser is back online; the API
// answers a repeated key with the message it already stored, so a message whose answer was lost
// is never sent twice. Several tabs share one queue (a Web Lock serialises them when available).

const STORE = "wadesk.outbox.v1";

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
      const item = this.items()[0];
      if (!item) return;
      let response;
      try {
        response = await fetch(item.url, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            "X-CSRF-Token": this.csrf,
            "Idempotency-Key": item.key,
          },
          body: JSON.stringify(item.body),
        });
      } catch {
        this.retryLater(3000); // offline or the server is away: keep it, try again
        return;
      }
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      if (response.ok) {
        this.remove(item.key);
        this.onSent(item, data);
        continue;
      }
      const code = data && data.error ? data.error.code : "";
      if (response.status >= 500 || response.status === 429 || code === "idempotency_key_in_use") {
        this.retryLater(2000);
        return;
      }
      // Refused for good (window closed, session ended, ...): stop trying this one.
      this.remove(item.key);
      const reason = data && data.error ? data.error.message : `HTTP ${response.status}`;
      this.onFailed(item, reason, response.status);
    }
  }
}
