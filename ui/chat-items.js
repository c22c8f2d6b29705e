// The items of an open chat: its lines, its attachments and their countdowns. Only functions
// (and the media state): app.js, loaded after this file, wires them to the page and to events.
"use strict";

// Attachments: bytes come from the engine on demand and are shown from object URLs, all revoked
// when the chat ends (or an item expires). Countdowns show when a timed item disappears.
const media = { urls: new Map(), ticker: null, doneEarly: new Set() };

function dropUrl(id) {
  const url = media.urls.get(id);
  if (url) URL.revokeObjectURL(url);
  media.urls.delete(id);
}

function clearMedia() {
  for (const id of [...media.urls.keys()]) dropUrl(id);
  media.doneEarly.clear();
  $("chat-timer").value = $("chat-timer").dataset.confirmed = "0";
  if (media.ticker) clearInterval(media.ticker);
  media.ticker = null;
}

function itemFor(id) {
  return document.querySelector(`#messages li[data-id="${id}"]`);
}

// An item the engine will wipe counts down to that moment: the engine says when (`expires_in_ms`
// on the reply or event that brought the item); the page never works it out from the timer.
function stamp(item, expiresInMs) {
  if (!item || expiresInMs === null || expiresInMs === undefined) return;
  item.dataset.expires = String(Date.now() + expiresInMs);
  if (!item.querySelector(".expires")) item.append(span("expires", ""));
  tick();
  if (!media.ticker) media.ticker = setInterval(tick, 250);
}

function tick() {
  for (const item of document.querySelectorAll("#messages li[data-expires]")) {
    const left = Math.max(0, Math.ceil((Number(item.dataset.expires) - Date.now()) / 1000));
    item.querySelector(".expires").textContent = `disappears in ${left} s`;
  }
}

function addLine(text, mine, id, expiresInMs) {
  const item = document.createElement("li");
  item.className = mine ? "mine" : "theirs";
  item.textContent = text;
  item.dataset.id = String(id);
  stamp(item, expiresInMs);
  if (mine) {
    item.append(span("receipt", ui.earlyReceipts.get(id) || "sent"));
    ui.earlyReceipts.delete(id);
  }
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
}

function sizeText(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`;
}

// One chat item for an attachment, in either direction.
function addAttachment(meta) {
  const item = document.createElement("li");
  item.className = `${meta.mine ? "mine" : "theirs"} attachment`;
  item.dataset.id = String(meta.id);
  const what = meta.kind === "photo" ? "Photo" : meta.kind === "image" ? "Image" : "File";
  const size = meta.size ? ` · ${sizeText(meta.size)}` : "";
  item.append(span("name", `${what}${meta.view_once ? " (view once)" : ""}: ${meta.name}${size}`));
  const bar = document.createElement("progress");
  bar.max = meta.size || 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Transfer of ${meta.name}`);
  item.append(bar);
  item.append(button("Cancel", `Cancel the transfer of ${meta.name}`, () =>
    act(engine("cancel_transfer", { session: ui.session.id, id: meta.id }), "chat-typing")));
  item._meta = meta;
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  // On loopback a small file can be sent before `send_attachment` has returned its id.
  if (media.doneEarly.delete(meta.id)) attachmentDone(meta.id);
  return item;
}

// A finished attachment: images inline (not view-once ones from the peer), files get "Save as…".
async function attachmentDone(id) {
  const item = itemFor(id);
  if (!item || !item._meta) {
    media.doneEarly.add(id);
    return;
  }
  const meta = item._meta;
  for (const el of item.querySelectorAll("progress, button")) el.remove();
  if (meta.view_once && !meta.mine) {
    item.append(button("Open once", `Open ${meta.name} once`, () => openOnce(meta)));
    return;
  }
  if (meta.kind !== "file") {
    const bytes = await act(invoke("attachment", { session: ui.session.id, id }), "chat-typing");
    if (!bytes || !ui.session) return;
    const url = URL.createObjectURL(new Blob([bytes], { type: meta.mime }));
    media.urls.set(id, url);
    const img = document.createElement("img");
    img.alt = meta.name;
    img.src = url;
    item.append(img);
  }
  if (!meta.mine && !meta.view_once) {
    item.append(button("Save as…", `Save ${meta.name}`, () =>
      act(invoke("save_attachment", { session: ui.session.id, id, name: meta.name }), "chat-typing")));
  }
}

async function openOnce(meta) {
  const bytes = await act(invoke("open_view_once", { session: ui.session.id, id: meta.id }), "chat-typing");
  const item = itemFor(meta.id);
  if (item) item.replaceChildren(span("name", `Opened once, now wiped: ${meta.name}`));
  if (!bytes) return;
  const url = URL.createObjectURL(new Blob([bytes], { type: meta.mime }));
  media.urls.set(`once-${meta.id}`, url);
  $("viewer-img").src = url;
  $("viewer").hidden = false;
  $("viewer-close").focus();
}
