// The link builder: live WhatsApp preview (through POST /api/v1/links/preview), character
// count, copy buttons. The page works without it: "Preview" posts the form.
const form = document.getElementById("link-form");

function draft() {
  const data = new FormData(form);
  const value = (name) => String(data.get(name) || "").trim();
  const body = { message: String(data.get("message") || ""), include_ref: data.get("include_ref") === "on" };
  for (const name of ["cta_label", "ref_label", "ref_code", "slug"]) {
    if (value(name)) body[name] = value(name);
  }
  if (value("inbox_id")) body.inbox_id = Number(value("inbox_id"));
  else if (value("phone")) body.phone = value("phone");
  return body;
}

function show(id, text) {
  const node = document.getElementById(id);
  if (node) node.textContent = text;
}

let timer = 0;
let sequence = 0;

async function refresh() {
  const mine = ++sequence;
  let response;
  try {
    response = await fetch("/api/v1/links/preview", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
      body: JSON.stringify(draft()),
      credentials: "same-origin",
    });
  } catch {
    show("pv-error", "Preview unavailable: no connection.");
    return;
  }
  if (mine !== sequence) return; // an older answer arriving late
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    show("pv-error", body?.error?.message || "Check the fields.");
    return;
  }
  show("pv-error", "");
  show("pv-business", body.preview.business_name || "Your business");
  show("pv-number", body.preview.number);
  show("pv-text", body.preview.text || " ");
  show("pv-cta", body.preview.cta_label);
  show("pv-url", body.wa_me_url);
  show("pv-length", String(body.url_length));
}

if (form) {
  const message = document.getElementById("message");
  const count = () => show("message-count", String([...message.value].length));
  form.addEventListener("input", () => {
    count();
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  form.addEventListener("change", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 50);
  });
  refresh();
}

document.addEventListener("click", async (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.value);
  } catch {
    source.select();
    document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});
