// Live events for the browser: GET /api/v1/events (Server-Sent Events), resumed by id.
//
//   import { startRealtime } from "/static/js/realtime.js";
//   startRealtime({ after: document.body.dataset.lastEventId });
//   window.addEventListener("wadesk:event", (e) => { const { id, kind, payload } = e.detail; ... });
//   window.addEventListener("wadesk:connection", (e) => { e.detail.state; });
//
// Every event arrives once and in order: ids at or below the last one seen are ignored, and
// each (re)connection asks for what follows the last id. `state` is "online", "offline", or
// "reset": the server could not bring us up to date (too far behind), so the page must reload
// its view; events then continue from the server's current end.
//
// EventSource delivers a named event only to listeners of that name, so the kinds are listed
// here (tests/realtime/test_browser_module.py checks the list against the server's code);
// pass `kinds` to listen to more.

export const KINDS = [
  "agent.status_changed",
  "automation.handoff",
  "contact.created",
  "contact.updated",
  "conversation.created",
  "conversation.updated",
  "inbox.created",
  "inbox.needs_attention",
  "inbox.updated",
  "label.changed",
  "link.changed",
  "mention.created",
  "mention.read",
  "message.created",
  "message.updated",
  "routing.first_response_breached",
  "routing.queue_changed",
  "team.changed",
];

const STALL_MS = 3000; // an automatic reconnection taking longer than this shows "offline"
const MAX_BACKOFF_MS = 30000;

export function startRealtime({ url = "/api/v1/events", after, kinds = [] } = {}) {
  let last = parseId(after);
  let source = null;
  let state = null;
  let retryTimer = null;
  let stallTimer = null;
  let backoff = 1000;
  let stopped = false;

  function announce(next) {
    if (next === state) return;
    state = next;
    window.dispatchEvent(new CustomEvent("wadesk:connection", { detail: { state: next } }));
  }

  function clearTimers() {
    clearTimeout(retryTimer);
    clearTimeout(stallTimer);
    retryTimer = stallTimer = null;
  }

  function close() {
    clearTimers();
    if (source) {
      source.close();
      source = null;
    }
  }

  function open() {
    close();
    if (stopped) return;
    if (navigator.onLine === false) {
      announce("offline");
      return;
    }
    const target = new URL(url, window.location.href);
    if (last !== null) target.searchParams.set("after", String(last));
    else target.searchParams.delete("after");
    const es = new EventSource(target.toString());
    source = es;
    const current = (handler) => (event) => {
      if (es === source) handler(event);
    };
    es.addEventListener(
      "open",
      current(() => {
        clearTimers();
        backoff = 1000;
        announce("online");
      }),
    );
    es.addEventListener(
      "error",
      current(() => {
        if (es.readyState === EventSource.CLOSED) {
          // The server refused (e.g. signed out) or the network is gone: retry, slower.
          source = null;
          es.close();
          announce("offline");
          schedule();
        } else if (!stallTimer) {
          // EventSource reconnects by itself (sending Last-Event-ID); say so if it takes long.
          stallTimer = setTimeout(() => announce("offline"), STALL_MS);
        }
      }),
    );
    for (const kind of new Set([...KINDS, ...kinds, "message"])) {
      es.addEventListener(kind, current(deliver));
    }
    es.addEventListener(
      "cursor",
      current((event) => {
        // Events this person may not see were skipped: remember how far the stream got.
        const id = parseId(event.lastEventId);
        if (id !== null && (last === null || id > last)) last = id;
      }),
    );
    es.addEventListener(
      "reset",
      current((event) => {
        const id = parseId(event.lastEventId);
        if (id !== null) last = id;
        window.dispatchEvent(new CustomEvent("wadesk:connection", { detail: { state: "reset" } }));
      }),
    );
  }

  function deliver(event) {
    const id = parseId(event.lastEventId);
    if (id === null || (last !== null && id <= last)) return; // seen already: no duplicates
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    last = id;
    window.dispatchEvent(
      new CustomEvent("wadesk:event", {
        detail: {
          id,
          kind: data.kind ?? event.type,
          inbox_id: data.inbox_id ?? null,
          conversation_id: data.conversation_id ?? null,
          payload: data.payload ?? {},
        },
      }),
    );
  }

  function schedule() {
    clearTimeout(retryTimer);
    const wait = Math.min(backoff, MAX_BACKOFF_MS) * (0.75 + Math.random() * 0.5);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    retryTimer = setTimeout(open, wait);
  }

  function onOffline() {
    close();
    announce("offline");
  }

  function onOnline() {
    backoff = 1000;
    open();
  }

  window.addEventListener("offline", onOffline);
  window.addEventListener("online", onOnline);
  open();

  return {
    get lastEventId() {
      return last;
    },
    stop() {
      stopped = true;
      close();
      window.removeEventListener("offline", onOffline);
      window.removeEventListener("online", onOnline);
    },
  };
}

function parseId(value) {
  if (value === undefined || value === null || value === "") return null;
  const id = Number(value);
  return Number.isSafeInteger(id) && id >= 0 ? id : null;
}
