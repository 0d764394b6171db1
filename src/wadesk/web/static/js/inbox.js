// The agent inbox in the browser: live updates, the composer and its offline outbox,
// keyboard shortcuts, notifications, local times. The server renders every piece of HTML;
// this module only decides which fragment to fetch and where it goes.
import { Outbox } from "./outbox.js";

const body = document.body;
const csrf = body.dataset.csrf;
const me = body.dataset.userId;
const t = document.getElementById("i18n")?.dataset || {};
const lang = body.dataset.lang || document.documentElement.lang || "en";
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// ------------------------------------------------------------------ fragments

async function fetchHtml(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { "HX-Request": "true", Accept: "text/html" },
  });
  if (response.status === 401 || response.redirected) {
    window.location.reload();
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const template = document.createElement("template");
  template.innerHTML = await response.text();
  return template.content;
}

function processHtmx(element) {
  if (window.htmx) window.htmx.process(element);
  decorate(element);
}

function filters() {
  const form = $("#list-filters");
  if (!form) return body.dataset.filters || "";
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
  return params.toString();
}

function swapOob(fragment) {
  for (const node of $$("[hx-swap-oob]", fragment)) {
    node.removeAttribute("hx-swap-oob");
    const current = document.getElementById(node.id);
    if (current) {
      keepTemplateDraft(current, node);
      current.replaceWith(node);
      processHtmx(node);
    }
  }
}

/** An agent halfway through a template keeps it when an event refreshes the window's box
 * (the customer's read receipt, a label added by a colleague...). */
function keepTemplateDraft(current, next) {
  const draft = $("[data-template-form]", current);
  const fresh = $("[data-template-form]", next);
  if (draft && fresh && $("[data-template-select]", draft)?.value) fresh.replaceWith(draft);
}

// ------------------------------------------------------------------ local times, colours

const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
const weekday = new Intl.DateTimeFormat(lang, { weekday: "short" });
const day = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short" });
const full = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });

function relative(date) {
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return clock.format(date);
  if (now - date < 6 * 86400e3) return weekday.format(date);
  return day.format(date);
}

function decorate(root = document) {
  for (const el of $$("time[data-clock]", root)) {
    const date = new Date(el.getAttribute("datetime"));
    if (!isNaN(date)) {
      el.textContent = clock.format(date);
      el.title = full.format(date);
    }
  }
  for (const el of $$("time[data-relative]", root)) {
    const date = new Date(el.getAttribute("datetime"));
    if (!isNaN(date)) {
      el.textContent = relative(date);
      el.title = full.format(date);
    }
  }
  for (const el of $$("time[data-absolute]", root)) {
    const date = new Date(el.getAttribute("datetime"));
    if (!isNaN(date)) el.textContent = full.format(date);
  }
  for (const el of $$("[data-color]", root)) {
    if (/^#[0-9a-fA-F]{6}$/.test(el.dataset.color)) el.style.setProperty("--label", el.dataset.color);
  }
  for (const input of $$("input[data-tz-offset]", root)) {
    input.value = String(new Date().getTimezoneOffset());
  }
}

// ------------------------------------------------------------------ the open thread

const thread = {
  id: null,
  lastId: 0,
  chain: Promise.resolve(),
  pendingCatchUp: false,
};

function openThread() {
  const el = $("#thread");
  thread.id = el ? el.dataset.conversationId : null;
  const list = $("#messages");
  thread.lastId = list ? Number(list.dataset.lastId || 0) : 0;
  body.classList.toggle("has-thread", Boolean(thread.id));
  for (const row of $$(".conv.active")) row.classList.remove("active");
  if (thread.id) {
    const row = document.getElementById(`conv-${thread.id}`);
    if (row) {
      row.classList.add("active");
      row.querySelector("a")?.setAttribute("aria-current", "true");
    }
    renderQueued();
    syncComposer();
    stick = true;
    scrollToBottom(true);
    markRead();
  }
}

async function markRead() {
  const el = $("#thread");
  if (!el || !el.dataset.markRead || document.hidden || !thread.id) return;
  const row = document.getElementById(`conv-${thread.id}`);
  if (row && !row.classList.contains("unread")) return;
  const id = thread.id;
  try {
    const response = await fetch(`/api/v1/conversations/${id}/read`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf },
    });
    if (response.ok) refreshRow(id);
  } catch {
    /* offline: it stays unread until the next visit */
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) markRead();
});

// Media that loads after the thread is shown must not push the newest message out of view.
let stick = true;
document.addEventListener(
  "scroll",
  (event) => {
    if (event.target instanceof Element && event.target.id === "messages") stick = nearBottom();
  },
  true,
);
for (const kind of ["load", "loadedmetadata"]) {
  document.addEventListener(
    kind,
    (event) => {
      const media = event.target;
      if (stick && media instanceof HTMLElement && media.closest("#messages")) scrollToBottom(true);
    },
    true,
  );
}

function nearBottom() {
  const list = $("#messages");
  return !list || list.scrollHeight - list.scrollTop - list.clientHeight < 160;
}

function scrollToBottom(force = false) {
  const list = $("#messages");
  if (list && (force || nearBottom())) list.scrollTop = list.scrollHeight;
}

function serial(task) {
  thread.chain = thread.chain.then(task).catch((error) => console.warn("wadesk inbox:", error));
  return thread.chain;
}

function placeMessage(node, list) {
  const id = Number(node.dataset.id);
  const existing = document.getElementById(node.id);
  if (node.dataset.key) {
    const pending = list.querySelector(`.msg.pending[data-key="${CSS.escape(node.dataset.key)}"]`);
    if (pending) pending.remove();
  }
  if (existing) {
    existing.replaceWith(node);
  } else {
    // Keep id order (a message may arrive after a later one was shown).
    const after = $$(".msg[data-id]", list).find((li) => Number(li.dataset.id) > id);
    const firstPending = list.querySelector(".msg.pending");
    list.insertBefore(node, after || firstPending || null);
  }
  processHtmx(node);
  if (id > thread.lastId) thread.lastId = id;
}

/** Fetch what is new in the open thread since the last message shown (coalesced). */
function catchUp() {
  if (!thread.id) return Promise.resolve();
  if (thread.pendingCatchUp) return thread.chain;
  thread.pendingCatchUp = true;
  return serial(async () => {
    // Let a burst coalesce; while the outbox drains, its POSTs go first.
    await new Promise((resolve) => setTimeout(resolve, draining() ? 400 : 30));
    thread.pendingCatchUp = false;
    const id = thread.id;
    const stick = nearBottom();
    const fragment = await fetchHtml(`/inbox/c/${id}/messages?after=${thread.lastId}`);
    const list = $("#messages");
    if (!list || thread.id !== id) return;
    swapOob(fragment);
    let customerWrote = false;
    for (const node of $$("li.msg", fragment)) {
      if (node.classList.contains("msg-in")) customerWrote = true;
      placeMessage(node, list);
    }
    list.dataset.lastId = String(thread.lastId);
    if (stick) scrollToBottom(true);
    if (customerWrote) {
      refreshChrome();
      setTimeout(markRead, 300);
    }
  });
}

const changed = new Set();
let changedTimer = null;
/** Re-render messages whose status changed (batched: a burst of ticks is one request). */
function refreshMessage(messageId) {
  if (!thread.id || !document.getElementById(`m-${messageId}`)) return;
  changed.add(String(messageId));
  clearTimeout(changedTimer);
  changedTimer = setTimeout(() => {
    const ids = Array.from(changed).slice(0, 200);
    for (const id of ids) changed.delete(id);
    const conversationId = thread.id;
    serial(async () => {
      if (!ids.length || thread.id !== conversationId) return;
      const fragment = await fetchHtml(`/inbox/c/${conversationId}/messages?ids=${ids.join(",")}`);
      const list = $("#messages");
      if (!list || thread.id !== conversationId) return;
      for (const node of $$("li.msg", fragment)) placeMessage(node, list);
      if (changed.size) refreshMessage(Array.from(changed)[0]);
    });
  }, draining() ? 800 : 120);
}

let chromeTimer = null;
function refreshChrome() {
  clearTimeout(chromeTimer);
  chromeTimer = setTimeout(async () => {
    if (!thread.id) return;
    const id = thread.id;
    try {
      const fragment = await fetchHtml(`/inbox/c/${id}/header`);
      if (thread.id !== id) return;
      swapOob(fragment);
      const chrome = $("#thread-chrome");
      if (chrome) {
        chrome.replaceChildren(fragment);
        processHtmx(chrome);
      }
      syncComposer();
    } catch (error) {
      console.warn("wadesk inbox:", error);
    }
  }, 60);
}

let panelTimer = null;
/** The contact panel after a change to the contact (not while someone edits it here). */
function refreshPanel() {
  clearTimeout(panelTimer);
  panelTimer = setTimeout(async () => {
    const id = thread.id;
    const panel = $("#contact-panel");
    // Not while it is being edited here, nor right after this tab saved it (already fresh).
    const fresh = panel && Date.now() - Number(panel.dataset.swappedAt || 0) < 2000;
    if (!id || !panel || fresh || $("#contact-form")) return;
    try {
      const fragment = await fetchHtml(`/inbox/c/${id}/contact`);
      if (thread.id !== id || $("#contact-form")) return;
      const hadFocus = panel.contains(document.activeElement);
      panel.replaceChildren(fragment);
      processHtmx(panel);
      if (hadFocus) $("[data-edit-contact]", panel)?.focus({ preventScroll: true });
    } catch (error) {
      console.warn("wadesk inbox:", error);
    }
  }, 80);
}

// ------------------------------------------------------------------ the conversation list

const rowTimers = new Map();
function refreshRow(conversationId) {
  clearTimeout(rowTimers.get(conversationId));
  rowTimers.set(
    conversationId,
    setTimeout(async () => {
      rowTimers.delete(conversationId);
      let fragment;
      try {
        fragment = await fetchHtml(`/inbox/row/${conversationId}?${filters()}`);
      } catch (error) {
        document.getElementById(`conv-${conversationId}`)?.remove();
        return;
      }
      swapOob(fragment);
      const list = $("#conversation-list");
      if (!list) return;
      document.getElementById(`conv-${conversationId}`)?.remove();
      const row = $("li.conv", fragment);
      if (!row) return;
      const at = Date.parse(row.dataset.activity);
      const before = $$("li.conv", list).find((li) => {
        const other = Date.parse(li.dataset.activity);
        return other < at || (other === at && Number(li.dataset.id) < Number(row.dataset.id));
      });
      const more = list.querySelector(".list-more");
      if (!before && more) return; // older than what is loaded: infinite scroll will show it
      list.querySelector("[data-empty]")?.remove();
      list.insertBefore(row, before || more || null);
      if (String(conversationId) === thread.id) row.classList.add("active");
      processHtmx(row);
    }, draining() ? 800 : 80),
  );
}

/** The outbox is sending a backlog: view refreshes wait a little so the sends go first. */
function draining() {
  return outbox.items().length > 1;
}

// ------------------------------------------------------------------ live events

async function notify(event) {
  if (!document.hidden || event.kind !== "message.created") return;
  const payload = event.payload || {};
  try {
    const fragment = await fetchHtml(`/inbox/m/${payload.message_id}`);
    const message = $("li.msg", fragment);
    if (!message || !message.classList.contains("msg-in")) return;
    const header = await fetchHtml(`/inbox/row/${event.conversation_id}?folder=mine&status=open`);
    const row = $("li.conv", header);
    if (!row || row.dataset.assignee !== me) return;
    beep();
    if ("Notification" in window && Notification.permission === "granted") {
      const name = $(".conv-name", row)?.textContent || "";
      const text = $(".body", message)?.textContent || $(".conv-preview", row)?.textContent || "";
      const note = new Notification(`${t.newMessage || "New message"} · ${name}`, {
        body: text.slice(0, 140),
        tag: `wadesk-conversation-${event.conversation_id}`,
      });
      note.onclick = () => {
        window.focus();
        window.location.href = `/inbox/c/${event.conversation_id}`;
      };
    }
  } catch (error) {
    console.warn("wadesk inbox:", error);
  }
}

let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.4);
  } catch {
    /* no audio: the notification still shows */
  }
}

function onEvent(event) {
  const detail = event.detail || {};
  const conversationId = detail.conversation_id ?? detail.payload?.conversation_id;
  const open = conversationId != null && String(conversationId) === thread.id;
  switch (detail.kind) {
    case "message.created":
      if (open) catchUp();
      if (conversationId != null) refreshRow(conversationId);
      notify(detail);
      break;
    case "message.updated":
      if (open && detail.payload?.message_id) refreshMessage(detail.payload.message_id);
      break;
    case "conversation.created":
    case "conversation.updated":
      if (conversationId != null) refreshRow(conversationId);
      if (open) refreshChrome();
      // Where the customer is in a guided flow is shown in the contact panel.
      if (open && detail.payload?.changes?.includes("flow")) refreshPanel();
      break;
    case "contact.updated":
      if (thread.id) {
        refreshChrome();
        refreshPanel();
      }
      break;
    default:
      break;
  }
}

let online = navigator.onLine !== false;
let streamOnline = true;
function showConnection() {
  const banner = $("#connection-banner");
  if (!banner) return;
  const offline = !online || !streamOnline;
  const waiting = outbox.items().length;
  banner.hidden = !offline && waiting === 0;
  banner.classList.toggle("is-offline", offline);
  const text = $("[data-text]", banner);
  if (text) {
    let message = offline ? (online ? t.reconnecting : t.offline) : t.sending;
    if (waiting) message += ` · ${waiting} ${t.queued || "messages waiting"}`;
    text.textContent = message;
  }
  body.classList.toggle("offline", offline);
}

function onConnection(event) {
  const state = event.detail?.state;
  if (state === "reset") {
    reloadView();
    return;
  }
  streamOnline = state !== "offline";
  showConnection();
  if (streamOnline) {
    outbox.flush();
    catchUp();
  }
}

async function reloadView() {
  // Too far behind the event log: fetch the list and the open thread afresh.
  try {
    const list = await fetchHtml(`/inbox/list?${filters()}`);
    swapOob(list);
    const target = $("#conversation-list");
    if (target) {
      target.replaceChildren(list);
      processHtmx(target);
    }
    if (thread.id) {
      const pane = $("#thread-pane");
      const fragment = await fetchHtml(`/inbox/c/${thread.id}/thread`);
      pane.replaceChildren(fragment);
      processHtmx(pane);
      openThread();
    }
  } catch (error) {
    console.warn("wadesk inbox:", error);
    window.location.reload();
  }
}

async function startLive() {
  window.addEventListener("wadesk:event", onEvent);
  window.addEventListener("wadesk:connection", onConnection);
  try {
    const realtime = await import("./realtime.js");
    realtime.startRealtime({ url: "/api/v1/events", after: Number(body.dataset.lastEventId || 0) });
  } catch (error) {
    console.warn("wadesk inbox: live updates unavailable", error);
  }
}

// ------------------------------------------------------------------ composer and outbox

const outbox = new Outbox({
  csrf,
  onSent: (item) => {
    if (String(item.conversationId) === thread.id) {
      const bubble = document.querySelector(`.msg.pending[data-key="${CSS.escape(item.key)}"]`);
      bubble?.classList.add("sent-waiting-render");
      catchUp();
    }
  },
  onFailed: (item, reason) => {
    const bubble = document.querySelector(`.msg.pending[data-key="${CSS.escape(item.key)}"]`);
    if (bubble) {
      bubble.classList.add("failed-local");
      const state = $(".pending-state", bubble);
      if (state) state.textContent = `${t.notSent || "Not sent"}: ${reason}`;
    } else if (String(item.conversationId) === thread.id) {
      setStatus(`${t.notSent || "Not sent"}: ${reason}`);
    }
  },
  onChange: () => showConnection(),
});

function pendingBubble(item) {
  const li = document.createElement("li");
  li.className = "msg msg-out pending";
  li.dataset.key = item.key;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  const text = document.createElement("p");
  text.className = "body";
  text.textContent = item.preview || item.body.text || "";
  const meta = document.createElement("p");
  meta.className = "meta";
  const state = document.createElement("span");
  state.className = "pending-state";
  state.textContent = `🕓 ${t.waiting || "Waiting to send"}`;
  meta.append(state);
  bubble.append(text, meta);
  li.append(bubble);
  return li;
}

function renderQueued() {
  const list = $("#messages");
  if (!list || !thread.id) return;
  for (const item of outbox.items()) {
    if (String(item.conversationId) !== thread.id || item.body.type === "reaction") continue;
    if (!list.querySelector(`[data-key="${CSS.escape(item.key)}"]`)) list.append(pendingBubble(item));
  }
}

function setStatus(text) {
  const status = $("#composer-status");
  if (status) status.textContent = text;
}

function send(bodyJson, { bubble = true, preview = "" } = {}) {
  const conversationId = thread.id;
  if (!conversationId) return;
  const item = {
    conversationId,
    url: `/api/v1/conversations/${conversationId}/messages`,
    body: bodyJson,
    preview,
  };
  const queued = outbox.enqueue(item);
  if (bubble) {
    const list = $("#messages");
    list?.append(pendingBubble(queued));
    scrollToBottom(true);
  }
  showConnection();
}

async function sendNote(text) {
  const response = await fetch(`/api/v1/conversations/${thread.id}/notes`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ text }),
  });
  if (!response.ok) {
    let reason = `HTTP ${response.status}`;
    try {
      reason = (await response.json()).error.message;
    } catch {}
    setStatus(`${t.notSent || "Not sent"}: ${reason}`);
    return;
  }
  catchUp();
}

function submitComposer(form) {
  const textarea = $("textarea", form);
  const text = textarea.value.replace(/\s+$/, "");
  if (!text.trim() || textarea.disabled) return;
  const note = $("[data-note-toggle]", form);
  if (note && note.checked) {
    sendNote(text);
  } else {
    const message = { type: "text", text };
    const replyTo = form.elements.reply_to?.value;
    if (replyTo) message.reply_to_message_id = Number(replyTo);
    send(message);
  }
  textarea.value = "";
  autosize(textarea);
  cancelReply();
  closeMentions();
  setStatus("");
}

function autosize(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
}

function cancelReply() {
  const bar = $("#reply-bar");
  if (!bar) return;
  bar.hidden = true;
  const input = $("input[name=reply_to]", bar);
  if (input) input.value = "";
}

function startReply(messageId) {
  const bar = $("#reply-bar");
  const message = document.getElementById(`m-${messageId}`);
  if (!bar || !message) return;
  $("input[name=reply_to]", bar).value = messageId;
  const text = $(".body", message)?.textContent || $(".bubble", message)?.textContent || "";
  $("[data-reply-text]", bar).textContent = text.trim().slice(0, 120);
  bar.hidden = false;
  $("#composer-text")?.focus();
}

function syncComposer() {
  const form = $("#composer");
  const state = $("#composer-window [data-window-state]")?.dataset.windowState;
  if (!form || !state) return;
  const closed = state === "closed";
  form.dataset.window = state;
  form.classList.toggle("disabled", closed);
  for (const control of $$("textarea, button[type=submit], [data-emoji-toggle]", form)) {
    control.disabled = closed;
  }
  if (closed) closeEmoji();
}

function tickCountdown() {
  for (const el of $$("[data-countdown]")) {
    const left = Math.max(0, Date.parse(el.dataset.countdown) - Date.now());
    const minutes = Math.floor(left / 60000);
    const seconds = Math.floor((left % 60000) / 1000);
    el.textContent = `${minutes}:${String(seconds).padStart(2, "0")}`;
    if (left === 0 && !el.dataset.expired) {
      el.dataset.expired = "1";
      refreshChrome();
    }
  }
}

async function retry(messageId) {
  const response = await fetch(`/api/v1/messages/${messageId}/retry`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf },
  });
  if (!response.ok) setStatus(t.retryFailed || "Retry failed");
  refreshMessage(messageId);
}

function upload(file) {
  const progress = $("[data-upload-progress]");
  const form = $("#composer");
  if (!form || !thread.id) return;
  if (navigator.onLine === false) {
    setStatus(t.offlineUpload || "Files can be sent only while online.");
    return;
  }
  const data = new FormData();
  data.append("file", file);
  const request = new XMLHttpRequest();
  request.open("POST", "/api/v1/uploads");
  request.setRequestHeader("X-CSRF-Token", csrf);
  request.responseType = "json";
  if (progress) {
    progress.hidden = false;
    progress.value = 0;
  }
  setStatus(`${t.uploading || "Uploading"} ${file.name}…`);
  request.upload.onprogress = (event) => {
    if (event.lengthComputable && progress) progress.value = (100 * event.loaded) / event.total;
  };
  request.onloadend = () => {
    if (progress) progress.hidden = true;
    const answer = request.response;
    if (request.status !== 201 || !answer) {
      const reason = answer && answer.error ? answer.error.message : `HTTP ${request.status}`;
      setStatus(`${t.uploadFailed || "The file was not uploaded"}: ${reason}`);
      return;
    }
    setStatus("");
    const textarea = $("#composer-text");
    const caption = textarea ? textarea.value.trim() : "";
    const message = { type: answer.kind, upload_id: answer.id };
    if (caption && answer.kind !== "audio" && answer.kind !== "sticker") {
      message.text = caption;
      textarea.value = "";
    }
    send(message, { preview: `📎 ${answer.filename}${message.text ? ` · ${message.text}` : ""}` });
  };
  request.send(data);
}

document.addEventListener("change", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.matches("[data-attach]") && input.files) {
    for (const file of input.files) upload(file);
    input.value = "";
  }
});

// ------------------------------------------------------------------ emoji

function insertText(textarea, text) {
  const start = textarea.selectionStart ?? textarea.value.length;
  const end = textarea.selectionEnd ?? start;
  textarea.focus();
  textarea.setRangeText(text, start, end, "end");
  textarea.dispatchEvent(new Event("input", { bubbles: true }));
}

function openEmoji(toggle) {
  const panel = $("[data-emoji-panel]");
  if (!panel || toggle.disabled) return;
  closeMentions();
  panel.hidden = false;
  toggle.setAttribute("aria-expanded", "true");
  $("[data-emoji]", panel)?.focus();
}

function closeEmoji({ focusToggle = false } = {}) {
  const panel = $("[data-emoji-panel]");
  if (!panel || panel.hidden) return;
  panel.hidden = true;
  const toggle = $("[data-emoji-toggle]");
  toggle?.setAttribute("aria-expanded", "false");
  if (focusToggle) toggle?.focus();
}

/** Arrow keys move between the emoji (by row and column as laid out), Escape closes. */
function emojiKey(event, target) {
  const buttons = $$("[data-emoji-panel] [data-emoji]");
  const index = buttons.indexOf(target);
  let next = null;
  if (event.key === "Escape") {
    event.preventDefault();
    closeEmoji({ focusToggle: true });
    return;
  }
  if (event.key === "Tab") {
    closeEmoji();
    return;
  }
  if (index === -1) return;
  if (event.key === "ArrowRight") next = buttons[index + 1];
  else if (event.key === "ArrowLeft") next = buttons[index - 1];
  else if (event.key === "Home") next = buttons[0];
  else if (event.key === "End") next = buttons[buttons.length - 1];
  else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const here = target.getBoundingClientRect();
    const down = event.key === "ArrowDown";
    const rows = buttons
      .map((button) => ({ button, box: button.getBoundingClientRect() }))
      .filter(({ box }) => (down ? box.top > here.top + 2 : box.top < here.top - 2));
    if (rows.length) {
      const rowTop = down
        ? Math.min(...rows.map(({ box }) => box.top))
        : Math.max(...rows.map(({ box }) => box.top));
      const row = rows.filter(({ box }) => Math.abs(box.top - rowTop) < 2);
      row.sort((a, b) => Math.abs(a.box.left - here.left) - Math.abs(b.box.left - here.left));
      next = row[0].button;
    }
  } else {
    return;
  }
  event.preventDefault();
  next?.focus();
}

// ------------------------------------------------------------------ @mentions in notes

const mention = { items: [], index: 0, start: -1, end: -1, timer: null, seq: 0 };

/** The "@partial" right before the caret of a note, if the agent is typing one. */
function mentionAtCaret(textarea) {
  const note = $("[data-note-toggle]", textarea.form);
  if (!note || !note.checked || textarea.selectionStart !== textarea.selectionEnd) return null;
  const caret = textarea.selectionStart;
  const typed = textarea.value.slice(0, caret);
  const match = typed.match(/(?:^|[^\p{L}\p{N}_.@])@([\p{L}\p{N}._%+-]{0,40})$/u);
  if (!match) return null;
  return { start: caret - match[1].length - 1, end: caret, query: match[1] };
}

function updateMentions(textarea) {
  const found = mentionAtCaret(textarea);
  clearTimeout(mention.timer);
  if (!found || !thread.id) {
    closeMentions();
    return;
  }
  const seq = ++mention.seq;
  const conversationId = thread.id;
  mention.timer = setTimeout(async () => {
    let items = [];
    try {
      const response = await fetch(
        `/inbox/c/${conversationId}/mentionable?q=${encodeURIComponent(found.query)}`,
        { credentials: "same-origin", headers: { Accept: "application/json" } },
      );
      if (response.ok) items = (await response.json()).items || [];
    } catch {
      items = [];
    }
    if (seq !== mention.seq || thread.id !== conversationId) return;
    mention.start = found.start;
    mention.end = found.end;
    showMentions(items);
  }, 120);
}

function showMentions(items) {
  const list = $("[data-mention-list]");
  const textarea = $("#composer-text");
  if (!list || !textarea) return;
  mention.items = items;
  mention.index = 0;
  list.replaceChildren();
  items.forEach((item, i) => {
    const option = document.createElement("li");
    option.id = `mention-option-${i}`;
    option.setAttribute("role", "option");
    option.dataset.mentionIndex = String(i);
    const name = document.createElement("span");
    name.className = "mention-name";
    name.textContent = item.name;
    const handle = document.createElement("span");
    handle.className = "mention-handle";
    handle.textContent = `@${item.handle}`;
    option.append(name, " ", handle);
    option.addEventListener("mousedown", (event) => {
      event.preventDefault(); // keep the caret in the composer
      pickMention(i);
    });
    list.append(option);
  });
  list.hidden = items.length === 0;
  highlightMention();
}

function highlightMention() {
  const list = $("[data-mention-list]");
  const textarea = $("#composer-text");
  if (!list || !textarea) return;
  $$("[role=option]", list).forEach((option, i) => {
    option.setAttribute("aria-selected", i === mention.index ? "true" : "false");
    if (i === mention.index) option.scrollIntoView({ block: "nearest" });
  });
  if (list.hidden) textarea.removeAttribute("aria-activedescendant");
  else textarea.setAttribute("aria-activedescendant", `mention-option-${mention.index}`);
}

function closeMentions() {
  clearTimeout(mention.timer);
  mention.seq++;
  mention.items = [];
  const list = $("[data-mention-list]");
  if (list) {
    list.hidden = true;
    list.replaceChildren();
  }
  $("#composer-text")?.removeAttribute("aria-activedescendant");
}

function pickMention(index) {
  const item = mention.items[index];
  const textarea = $("#composer-text");
  if (!item || !textarea) return;
  const at = mentionAtCaret(textarea) || mention;
  closeMentions();
  textarea.focus();
  textarea.setRangeText(`@${item.handle} `, at.start, at.end, "end");
  autosize(textarea);
}

/** Arrow keys, Enter/Tab and Escape while the mention list is open (true: handled). */
function mentionKey(event) {
  const list = $("[data-mention-list]");
  if (!list || list.hidden || !mention.items.length || event.isComposing) return false;
  const count = mention.items.length;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    mention.index = (mention.index + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
    highlightMention();
  } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey) {
    pickMention(mention.index);
  } else if (event.key === "Escape") {
    closeMentions();
  } else {
    return false;
  }
  event.preventDefault();
  return true;
}

// ------------------------------------------------------------------ contact panel

function addAttributeRow() {
  const rows = $("[data-attr-rows]");
  const blank = rows && $$("[data-new-attr]", rows).pop();
  if (!blank) return;
  const row = blank.cloneNode(true);
  for (const input of $$("input[type=text]", row)) input.value = "";
  rows.append(row);
  $("input[name=attr_key]", row)?.focus();
}

// ------------------------------------------------------------------ keyboard

function typing(target) {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
  );
}

function moveSelection(step) {
  const rows = $$("#conversation-list li.conv");
  if (!rows.length) return;
  const index = rows.findIndex((row) => row.dataset.id === thread.id);
  const next = rows[Math.min(rows.length - 1, Math.max(0, index === -1 ? 0 : index + step))];
  const link = $("a", next);
  link?.click();
  link?.scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof Element && target.closest("[data-emoji-panel]")) {
    emojiKey(event, target);
    return;
  }
  if (target instanceof HTMLTextAreaElement && target.id === "composer-text") {
    if (mentionKey(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey) {
      event.preventDefault();
      submitComposer(target.form);
    } else if (event.key === "Escape") {
      cancelReply();
      target.blur();
    }
    return;
  }
  if (typing(target) || event.ctrlKey || event.metaKey || event.altKey) return;
  if ($("dialog[open]")) return;
  switch (event.key) {
    case "j":
      moveSelection(1);
      break;
    case "k":
      moveSelection(-1);
      break;
    case "e":
      $('#thread-chrome [data-action="resolve"]')?.click();
      break;
    case "a":
      $('#thread-chrome [data-action="assign_me"]')?.click();
      break;
    case "r":
    case "/":
      if ($("#composer-text")) {
        event.preventDefault();
        $("#composer-text").focus();
      } else if (event.key === "/") {
        event.preventDefault();
        $("#search")?.focus();
      }
      break;
    case "?":
      $("#shortcuts")?.showModal();
      break;
    default:
      return;
  }
});

// ------------------------------------------------------------------ clicks and swaps

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.id === "composer") {
    event.preventDefault();
    submitComposer(form);
  } else if (form.matches("[data-template-form]")) {
    event.preventDefault();
    sendTemplate(form);
  } else if (form.matches("[data-new-label]")) {
    event.preventDefault();
    createLabel(form);
  }
});

/** An approved template with its parameters (the way to write first when the window is closed). */
function sendTemplate(form) {
  const chosen = form.querySelector("fieldset[data-template]:not([disabled])");
  if (!chosen) return;
  const values = (name) => $$(`input[name="${name}"]`, chosen).map((i) => ({ type: "text", text: i.value }));
  const components = [];
  if (values("header").length) components.push({ type: "header", parameters: values("header") });
  if (values("body").length) components.push({ type: "body", parameters: values("body") });
  let preview = $$(".template-text", chosen).map((p) => p.textContent).join("\n");
  values("body").forEach((v, i) => {
    preview = preview.replace(new RegExp(`\\{\\{\\s*${i + 1}\\s*\\}\\}`, "g"), v.text);
  });
  send(
    { type: "template", content: { name: chosen.dataset.name, language: chosen.dataset.language, components } },
    { preview: `📋 ${preview}` },
  );
  form.reset();
  for (const fieldset of $$("fieldset[data-template]", form)) {
    fieldset.hidden = true;
    fieldset.disabled = true;
  }
}

document.addEventListener("change", (event) => {
  const select = event.target;
  if (!(select instanceof HTMLSelectElement) || !select.matches("[data-template-select]")) return;
  for (const fieldset of $$("fieldset[data-template]", select.form)) {
    const on = fieldset.dataset.template === select.value;
    fieldset.hidden = !on;
    fieldset.disabled = !on;
  }
});

/** A new label (name and colour) through the labels API, then added to this conversation. */
async function createLabel(form) {
  const name = form.elements.name.value.trim();
  if (!name) return;
  const response = await fetch("/api/v1/labels", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ name, color: form.elements.color.value }),
  });
  if (!response.ok && response.status !== 409) {
    let reason = `HTTP ${response.status}`;
    try {
      reason = (await response.json()).error.message;
    } catch {}
    setStatus(reason);
    return;
  }
  const labels = $('#thread-chrome input[name="labels"]');
  if (!labels) return;
  const current = labels.value.split(",").map((v) => v.trim()).filter(Boolean);
  if (!current.includes(name)) current.push(name);
  labels.value = current.join(", ");
  const option = document.createElement("option");
  option.value = name;
  $("#label-names")?.append(option);
  labels.form.requestSubmit();
}

document.addEventListener("input", (event) => {
  if (event.target instanceof HTMLTextAreaElement && event.target.id === "composer-text") {
    autosize(event.target);
    updateMentions(event.target);
  }
});

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  askNotificationPermission();
  const emojiPanel = $("[data-emoji-panel]");
  if (emojiPanel && !emojiPanel.hidden && !target.closest(".emoji-picker")) closeEmoji();
  const toggle = target.closest("[data-emoji-toggle]");
  if (toggle) return emojiPanel?.hidden ? openEmoji(toggle) : closeEmoji({ focusToggle: true });
  const emoji = target.closest("[data-emoji]");
  if (emoji) {
    closeEmoji();
    const textarea = $("#composer-text");
    if (textarea && !textarea.disabled) insertText(textarea, emoji.dataset.emoji);
    return;
  }
  if (target.closest("[data-add-attr]")) return addAttributeRow();
  const reply = target.closest("[data-reply]");
  if (reply) return startReply(reply.dataset.reply);
  if (target.closest("[data-cancel-reply]")) return cancelReply();
  const react = target.closest("[data-react]");
  if (react) {
    react.closest("details")?.removeAttribute("open");
    return send(
      { type: "reaction", content: { message_id: Number(react.dataset.react), emoji: react.dataset.emoji } },
      { bubble: false },
    );
  }
  const retryButton = target.closest("[data-retry]");
  if (retryButton) {
    retryButton.disabled = true;
    return retry(retryButton.dataset.retry);
  }
  const lightbox = target.closest("[data-lightbox]");
  if (lightbox) {
    event.preventDefault();
    const dialog = $("#lightbox");
    $("img", dialog).src = lightbox.getAttribute("href");
    $("img", dialog).alt = $("img", lightbox)?.alt || "";
    dialog.showModal();
    return;
  }
  const back = target.closest("[data-back]");
  if (back && window.matchMedia("(max-width: 800px)").matches) {
    event.preventDefault();
    body.classList.remove("has-thread");
    history.pushState({}, "", `/inbox?${filters()}`);
    thread.id = null;
    $(".conv.active")?.querySelector("a")?.focus();
  }
});

let asked = false;
function askNotificationPermission() {
  if (asked || !("Notification" in window) || Notification.permission !== "default") return;
  asked = true;
  Notification.requestPermission().catch(() => {});
}

document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail?.target;
  if (!target) return;
  decorate(target);
  if (target.id === "thread-pane") {
    openThread();
    $("#thread-title")?.focus({ preventScroll: true });
  } else if (target.id === "contact-panel") {
    target.dataset.swappedAt = String(Date.now());
    const focus =
      $("#contact-errors", target) ||
      $("[data-contact-name]", target) ||
      $("[data-edit-contact]", target);
    focus?.focus({ preventScroll: true });
  } else if (target.id === "thread-chrome") {
    syncComposer();
    if (!$("#thread-chrome .alert")) {
      $("#thread-chrome details.menu")?.removeAttribute("open");
    }
  }
});

document.addEventListener("htmx:beforeSwap", (event) => {
  // A refused contact form (422) comes back with its messages and what was typed: show it.
  const detail = event.detail;
  if (detail?.xhr?.status === 422 && detail.target?.id === "contact-panel") {
    detail.shouldSwap = true;
    detail.isError = false;
  }
});

document.addEventListener("change", (event) => {
  if (event.target instanceof HTMLInputElement && event.target.matches("[data-note-toggle]")) {
    closeMentions();
  }
});

document.addEventListener("htmx:beforeRequest", (event) => {
  // A new filter: the list starts again from its first page.
  if (event.detail?.elt?.id === "list-filters") {
    const params = filters();
    body.dataset.filters = params;
    history.replaceState(history.state, "", `${thread.id ? `/inbox/c/${thread.id}` : "/inbox"}?${params}`);
  }
});

document.addEventListener("change", (event) => {
  const input = event.target;
  if (input instanceof HTMLInputElement && input.type === "radio") {
    for (const label of $$(`input[name="${input.name}"]`).map((i) => i.closest("label"))) {
      label?.classList.toggle("active", $("input", label).checked);
    }
  }
});

window.addEventListener("popstate", () => {
  const match = window.location.pathname.match(/^\/inbox\/c\/(\d+)/);
  if (!match) {
    body.classList.remove("has-thread");
    thread.id = null;
  }
});

// ------------------------------------------------------------------ start

decorate(document);
openThread();
showConnection();
window.addEventListener("online", () => {
  online = true;
  showConnection();
  outbox.flush();
});
window.addEventListener("offline", () => {
  online = false;
  showConnection();
});
setInterval(tickCountdown, 1000);
setInterval(() => decorate(document), 60000);
tickCountdown();
startLive();
outbox.flush();
