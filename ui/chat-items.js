// One open chat's items — its lines and attachments — as a view model keyed by the engine's item
// id. An item is made by whichever comes first: the reply to our own send, or an event about it
// (its receipt, "sent" for a small file on loopback); it is drawn once what it is is known, with
// whatever state already came. Attachment bytes come from the engine on demand and are shown from
// object URLs, all revoked when the chat ends or the item goes. Countdowns show when a timed item
// disappears, to the instant the engine named.

import { $, ui, span, button, act } from "./dom.js";
import { engine, shell } from "./ipc.js";

// id → { id, receipt, done, meta, el }
const items = new Map();
const media = { urls: new Map(), ticker: null };

function item(id) {
  let it = items.get(id);
  if (!it) {
    it = { id, receipt: null, done: false, meta: null, el: null };
    items.set(id, it);
  }
  return it;
}

function dropUrl(key) {
  const url = media.urls.get(key);
  if (url) URL.revokeObjectURL(url);
  media.urls.delete(key);
}

// The chat ended (or another opened): every item, URL and countdown goes.
export function clearChat() {
  for (const key of [...media.urls.keys()]) dropUrl(key);
  items.clear();
  $("messages").replaceChildren();
  $("chat-timer").value = $("chat-timer").dataset.confirmed = "0";
  if (media.ticker) clearInterval(media.ticker);
  media.ticker = null;
}

// An item the engine will wipe counts down to that moment: the engine says when (`expires_in_ms`
// on the reply or event that brought the item); the page never works it out from the timer.
function stamp(el, expiresInMs) {
  if (!el || expiresInMs === null || expiresInMs === undefined) return;
  el.dataset.expires = String(Date.now() + expiresInMs);
  if (!el.querySelector(".expires")) el.append(span("expires", ""));
  tick();
  if (!media.ticker) media.ticker = setInterval(tick, 250);
}

function tick() {
  for (const el of document.querySelectorAll("#messages li[data-expires]")) {
    const left = Math.max(0, Math.ceil((Number(el.dataset.expires) - Date.now()) / 1000));
    el.querySelector(".expires").textContent = `disappears in ${left} s`;
  }
}

function place(it, el) {
  el.dataset.id = String(it.id);
  it.el = el;
  $("messages").append(el);
  el.scrollIntoView({ block: "end" });
}

export function addLine(text, mine, id, expiresInMs) {
  const it = item(id);
  const el = document.createElement("li");
  el.className = mine ? "mine" : "theirs";
  el.textContent = text;
  if (mine) el.append(span("receipt", it.receipt || "sent"));
  place(it, el);
  stamp(el, expiresInMs);
}

// The peer's receipt for one of our items ("delivered", or "read").
export function receipt(id, state) {
  const it = item(id);
  it.receipt = state;
  const shown = it.el && it.el.querySelector(".receipt");
  if (shown) shown.textContent = state;
}

function sizeText(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`;
}

// One chat item for an attachment, in either direction.
export function addAttachment(meta, expiresInMs) {
  const it = item(meta.id);
  it.meta = meta;
  const el = document.createElement("li");
  el.className = `${meta.mine ? "mine" : "theirs"} attachment`;
  const what = meta.kind === "photo" ? "Photo" : meta.kind === "image" ? "Image" : "File";
  const size = meta.size ? ` · ${sizeText(meta.size)}` : "";
  el.append(span("name", `${what}${meta.view_once ? " (view once)" : ""}: ${meta.name}${size}`));
  const bar = document.createElement("progress");
  bar.max = meta.size || 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Transfer of ${meta.name}`);
  el.append(bar);
  el.append(button("Cancel", `Cancel the transfer of ${meta.name}`, () =>
    act(engine("cancel_transfer", { session: ui.session.id, id: meta.id }), "chat-typing")));
  place(it, el);
  stamp(el, expiresInMs);
  if (it.done) finish(it);
}

export function progress(id, done, total) {
  const bar = items.get(id)?.el?.querySelector("progress");
  if (bar) {
    bar.max = total || 1;
    bar.value = done;
  }
}

// The peer's attachment is complete: what the bytes are as the engine sniffed them (never the
// peer's claimed type), and when it is wiped.
export function received(id, kind, mime, expiresInMs) {
  const it = item(id);
  if (it.meta) it.meta = { ...it.meta, kind, mime };
  stamp(it.el, expiresInMs);
  attachmentDone(id);
}

// A finished attachment: images inline (not view-once ones from the peer), files get "Save as…".
export function attachmentDone(id) {
  const it = item(id);
  it.done = true;
  if (it.el && it.meta) finish(it);
}

async function finish(it) {
  const { el, meta, id } = it;
  for (const x of el.querySelectorAll("progress, button")) x.remove();
  if (meta.view_once && !meta.mine) {
    el.append(button("Open once", `Open ${meta.name} once`, () => openOnce(meta)));
    return;
  }
  if (meta.kind !== "file") {
    const bytes = await act(shell("attachment", { session: ui.session.id, id }), "chat-typing");
    if (!bytes || !ui.session || items.get(id) !== it) return;
    const url = URL.createObjectURL(new Blob([bytes], { type: meta.mime }));
    media.urls.set(id, url);
    const img = document.createElement("img");
    img.alt = meta.name;
    img.src = url;
    el.append(img);
  }
  if (!meta.mine && !meta.view_once) {
    el.append(button("Save as…", `Save ${meta.name}`, () =>
      act(shell("save_attachment", { session: ui.session.id, id, name: meta.name }), "chat-typing")));
  }
}

async function openOnce(meta) {
  const bytes = await act(shell("open_view_once", { session: ui.session.id, id: meta.id }), "chat-typing");
  replaceWith(meta.id, `Opened once, now wiped: ${meta.name}`);
  if (!bytes) return;
  // A file opened once (a shared note, say) is shown as text when it is UTF-8 (as textContent, so
  // never as markup); the engine types every file as unknown, so its bytes decide.
  const asText = meta.kind === "file";
  $("viewer-img").hidden = asText;
  $("viewer-text").hidden = !asText;
  if (asText) {
    let text;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
    } catch {
      text = "This item is neither text nor an image, so it cannot be shown here. It is wiped now.";
    }
    $("viewer-text").textContent = text;
  } else {
    const url = URL.createObjectURL(new Blob([bytes], { type: meta.mime }));
    media.urls.set(`once-${meta.id}`, url);
    $("viewer-img").src = url;
  }
  $("viewer").hidden = false;
  $("viewer-close").focus();
}

export function closeViewer() {
  $("viewer").hidden = true;
  $("viewer-img").removeAttribute("src");
  $("viewer-text").textContent = "";
  for (const key of [...media.urls.keys()]) if (String(key).startsWith("once-")) dropUrl(key);
}

// The item stays as a note (a stopped transfer, a view-once item opened by the peer); its bytes go.
export function replaceWith(id, note) {
  const el = items.get(id)?.el;
  if (el) el.replaceChildren(span("name", note));
  dropUrl(id);
}

// The engine wiped these items (their timer ran out, or room was needed).
export function expire(ids) {
  for (const id of ids) {
    items.get(id)?.el?.remove();
    items.delete(id);
    dropUrl(id);
  }
}
