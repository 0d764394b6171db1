// The customer's phone. Every text goes through textContent; every URL is relative so the
// page works wherever the simulator is mounted.
"use strict";

(function () {
  const POLL_MS = 1000;
  const EMOJIS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
  const state = {
    numbers: [],
    customers: [],
    pnid: null,
    waId: null,
    version: -1,
    replyTo: null,
    snippets: new Map(),
    polling: false,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function isWebLink(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url);
  }

  function isLocal(url) {
    return typeof url === "string" && url.startsWith("api/media/");
  }

  async function api(path, options) {
    const response = await fetch(path, options);
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const body = await response.json();
        detail = body.detail || detail;
      } catch (_) {
        // not JSON: keep the status text
      }
      throw new Error(detail);
    }
    return response.json();
  }

  function postJson(path, body) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  let errorTimer = null;
  function showError(error) {
    const box = $("error");
    box.textContent = String((error && error.message) || error);
    box.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => {
      box.hidden = true;
    }, 5000);
  }

  function currentNumber() {
    return state.numbers.find((n) => n.phone_number_id === state.pnid) || null;
  }

  function currentCustomer() {
    return state.customers.find((c) => c.wa_id === state.waId) || null;
  }

  // -- numbers and customers ---------------------------------------------------------

  async function loadNumbers() {
    state.numbers = await api("api/numbers");
    const select = $("number");
    select.replaceChildren();
    for (const number of state.numbers) {
      const option = el("option", null, `${number.verified_name} · ${number.display_phone_number}`);
      option.value = number.phone_number_id;
      select.append(option);
    }
    state.pnid = state.numbers.length ? state.numbers[0].phone_number_id : null;
    renderHeader();
  }

  async function refreshCustomers() {
    const query = state.pnid ? `?phone_number_id=${encodeURIComponent(state.pnid)}` : "";
    state.customers = await api(`api/customers${query}`);
    const list = $("customers");
    list.replaceChildren();
    for (const customer of state.customers) {
      const item = el("li");
      const button = el("button", customer.wa_id === state.waId ? "customer active" : "customer");
      button.type = "button";
      button.append(el("span", "customer-name", customer.name));
      button.append(el("span", "customer-id muted", `+${customer.wa_id}`));
      if (customer.unread > 0) button.append(el("span", "badge", customer.unread));
      button.addEventListener("click", () => selectCustomer(customer.wa_id));
      item.append(button);
      list.append(item);
    }
    renderHeader();
  }

  function selectCustomer(waId) {
    state.waId = waId;
    state.version = -1;
    setReply(null);
    $("text").disabled = false;
    $("send").disabled = false;
    refreshCustomers().then(refreshConversation).catch(showError);
    $("text").focus();
  }

  function renderHeader() {
    const number = currentNumber();
    $("business-name").textContent = number ? number.verified_name : "No business number";
    $("business-number").textContent = number ? number.display_phone_number : "";
    const customer = currentCustomer();
    $("customer-name").textContent = customer ? `${customer.name} (+${customer.wa_id})` : "nobody yet";
  }

  // -- conversation ------------------------------------------------------------------

  async function refreshConversation() {
    if (!state.pnid || !state.waId) return;
    const query = `phone_number_id=${encodeURIComponent(state.pnid)}&wa_id=${encodeURIComponent(state.waId)}`;
    const data = await api(`api/conversation?${query}`);
    $("typing").hidden = !data.typing;
    if (data.version !== state.version) {
      const first = state.version === -1;
      state.version = data.version;
      renderMessages(data.messages, first);
    }
    const unread = data.messages.some(
      (m) => m.sender === "business" && (m.status === "sent" || m.status === "delivered"),
    );
    if (unread && $("auto-read").checked && document.visibilityState === "visible") {
      await markRead();
    }
  }

  function renderMessages(messages, scrollToEnd) {
    const box = $("messages");
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    box.replaceChildren();
    state.snippets.clear();
    if (!messages.length) box.append(el("p", "empty", "No messages yet. Say hi!"));
    for (const message of messages) {
      state.snippets.set(message.id, message.text || `[${message.type}]`);
      box.append(renderMessage(message));
    }
    if (scrollToEnd || nearBottom) box.scrollTop = box.scrollHeight;
  }

  function renderMedia(media) {
    const wrap = el("div", "media");
    const url = isLocal(media.url) || isWebLink(media.url) ? media.url : null;
    if (url && (media.kind === "image" || media.kind === "sticker") && isLocal(url)) {
      const image = el("img");
      image.src = url;
      image.alt = media.filename || media.kind;
      image.loading = "lazy";
      wrap.append(image);
    } else if (url) {
      const link = el("a", "file", `📄 ${media.filename || media.kind} (${media.mime_type || "file"})`);
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      wrap.append(link);
    } else {
      wrap.append(el("span", "muted", `[${media.kind}]`));
    }
    return wrap;
  }

  function statusLabel(message) {
    if (message.sender === "customer") return message.status === "read" ? "✓✓" : "✓";
    return message.status;
  }

  function renderMessage(message) {
    const mine = message.sender === "customer";
    const row = el("div", mine ? "row mine" : "row theirs");
    const bubble = el("div", "bubble");
    if (message.reply_to) bubble.append(el("div", "quote", message.reply_to.text));
    if (message.header) bubble.append(el("div", "header", message.header));
    if (message.media) bubble.append(renderMedia(message.media));
    if (message.text) bubble.append(el("div", "text", message.text));
    if (message.footer) bubble.append(el("div", "footer muted", message.footer));
    if (message.link && isWebLink(message.link.url)) {
      const link = el("a", "cta", message.link.title || message.link.url);
      link.href = message.link.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      bubble.append(link);
    }
    if (message.buttons && message.buttons.length) {
      const buttons = el("div", "buttons");
      for (const choice of message.buttons) {
        const button = el("button", "choice", choice.title);
        button.type = "button";
        button.addEventListener("click", () => sendMessage(choice.reply));
        buttons.append(button);
      }
      bubble.append(buttons);
    }
    if (message.error) bubble.append(el("div", "failure", message.error));
    const meta = el("div", "meta");
    meta.append(el("span", "time", new Date(message.timestamp * 1000).toLocaleTimeString()));
    meta.append(el("span", `status status-${message.status}`, statusLabel(message)));
    bubble.append(meta);
    const reactions = Object.values(message.reactions || {});
    if (reactions.length) bubble.append(el("div", "reactions", reactions.join(" ")));
    row.append(bubble);
    row.append(renderActions(message));
    return row;
  }

  function renderActions(message) {
    const actions = el("div", "actions");
    const reply = el("button", "icon", "↩");
    reply.type = "button";
    reply.title = "Reply";
    reply.addEventListener("click", () => setReply(message.id));
    const react = el("button", "icon", "☺");
    react.type = "button";
    react.title = "React";
    const picker = el("div", "picker");
    picker.hidden = true;
    const choices = EMOJIS.concat(message.reactions && message.reactions.customer ? [""] : []);
    for (const emoji of choices) {
      const pick = el("button", "icon", emoji || "✕");
      pick.type = "button";
      pick.title = emoji ? `React ${emoji}` : "Remove reaction";
      pick.addEventListener("click", () => {
        picker.hidden = true;
        sendMessage({ type: "reaction", message_id: message.id, emoji: emoji });
      });
      picker.append(pick);
    }
    react.addEventListener("click", () => {
      picker.hidden = !picker.hidden;
    });
    actions.append(reply, react, picker);
    return actions;
  }

  function setReply(messageId) {
    state.replyTo = messageId;
    $("reply-bar").hidden = !messageId;
    $("reply-text").textContent = messageId ? state.snippets.get(messageId) || "" : "";
    if (messageId) $("text").focus();
  }

  // -- sending -----------------------------------------------------------------------

  async function sendMessage(message) {
    if (!state.pnid || !state.waId) return;
    try {
      await postJson("api/send", { phone_number_id: state.pnid, wa_id: state.waId, message: message });
      await refreshConversation();
    } catch (error) {
      showError(error);
    }
  }

  async function sendText(event) {
    event.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text) return;
    const message = { type: "text", text: text };
    if (state.replyTo) message.reply_to = state.replyTo;
    input.value = "";
    setReply(null);
    await sendMessage(message);
  }

  async function sendFile() {
    const input = $("file");
    const file = input.files && input.files[0];
    input.value = "";
    if (!file || !state.pnid || !state.waId) return;
    const form = new FormData();
    form.append("phone_number_id", state.pnid);
    form.append("wa_id", state.waId);
    form.append("file", file, file.name);
    const caption = $("text").value.trim();
    if (caption) form.append("caption", caption);
    if (state.replyTo) form.append("reply_to", state.replyTo);
    try {
      await api("api/send-file", { method: "POST", body: form });
      $("text").value = "";
      setReply(null);
      await refreshConversation();
    } catch (error) {
      showError(error);
    }
  }

  async function markRead() {
    if (!state.pnid || !state.waId) return;
    await postJson("api/read", { phone_number_id: state.pnid, wa_id: state.waId });
  }

  async function addCustomer(event) {
    event.preventDefault();
    try {
      const customer = await postJson("api/customers", {
        name: $("new-name").value,
        wa_id: $("new-wa-id").value,
      });
      $("new-customer").reset();
      selectCustomer(customer.wa_id);
    } catch (error) {
      showError(error);
    }
  }

  // -- wiring ------------------------------------------------------------------------

  async function poll() {
    if (state.polling) return;
    state.polling = true;
    try {
      await refreshCustomers();
      await refreshConversation();
    } catch (error) {
      showError(error);
    } finally {
      state.polling = false;
    }
  }

  function start() {
    $("composer").addEventListener("submit", sendText);
    $("file").addEventListener("change", sendFile);
    $("new-customer").addEventListener("submit", addCustomer);
    $("reply-cancel").addEventListener("click", () => setReply(null));
    $("mark-read").addEventListener("click", () => markRead().catch(showError));
    $("share-location").addEventListener("click", () =>
      sendMessage({
        type: "location",
        latitude: -23.5614,
        longitude: -46.6559,
        name: "Avenida Paulista",
        address: "Av. Paulista, São Paulo - SP",
      }),
    );
    $("number").addEventListener("change", (event) => {
      state.pnid = event.target.value;
      state.version = -1;
      poll();
    });
    loadNumbers()
      .then(poll)
      .catch(showError);
    setInterval(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
