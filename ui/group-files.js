// A group's attachments: files, images and photos from members, each on that member's link (its
// own session), and ours, sent once per connected member. Bytes come from the engine on demand and
// are shown from object URLs, all revoked when the group goes; view-once items open in the viewer
// once and are wiped on both sides of that link.

import { $, span, button, act, li } from "./dom.js";
import { shell } from "./ipc.js";

const urls = new Map(); // `${session}:${id}` → object URL
const incoming = new Map(); // `${session}:${id}` → { el, meta }

function key(session, id) {
  return `${session}:${id}`;
}

function what(meta) {
  const kind = meta.kind === "photo" ? "Photo" : meta.kind === "image" ? "Image" : "File";
  return `${kind}${meta.view_once ? " (view once)" : ""}: ${meta.name}`;
}

function line(from, meta) {
  const item = li([span("who", from === null ? "You" : from), span("text", what(meta))]);
  item.className = `${from === null ? "mine" : "theirs"} attachment`;
  $("group-messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

// Our attachment, to be counted as each member's copy arrives (`file_sent` on its link).
export function ours(meta) {
  const item = line(null, meta);
  const mark = span("receipt", "");
  item.append(mark);
  return { item, mark };
}

// A member's attachment is on its way.
export function offered(member, ev) {
  const meta = { name: ev.name, size: ev.size, kind: ev.kind, mime: ev.mime, view_once: ev.view_once };
  const el = line(member, meta);
  el.dataset.session = ev.session;
  el.dataset.id = String(ev.id);
  const bar = document.createElement("progress");
  bar.max = ev.size || 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Transfer of ${ev.name}`);
  el.append(bar);
  incoming.set(key(ev.session, ev.id), { el, meta });
}

export function progress(ev) {
  const bar = incoming.get(key(ev.session, ev.id))?.el.querySelector("progress");
  if (bar) {
    bar.max = ev.total || 1;
    bar.value = ev.done;
  }
}

// Complete: what the bytes are as the engine sniffed them, never what the member claimed.
export async function received(ev) {
  const it = incoming.get(key(ev.session, ev.id));
  if (!it) return;
  const { el } = it;
  const meta = { ...it.meta, kind: ev.kind, mime: ev.mime };
  el.querySelector("progress")?.remove();
  const k = key(ev.session, ev.id);
  if (meta.view_once) {
    el.append(button("Open once", `Open ${meta.name} once`, () => openOnce(ev.session, ev.id, meta)));
    return;
  }
  if (meta.kind !== "file") {
    const bytes = await act(shell("attachment", { session: ev.session, id: ev.id }), "group-status");
    if (!bytes || incoming.get(k) !== it) return;
    const url = URL.createObjectURL(new Blob([bytes], { type: meta.mime }));
    urls.set(k, url);
    const img = document.createElement("img");
    img.alt = meta.name;
    img.src = url;
    el.append(img);
  }
  el.append(button("Save as…", `Save ${meta.name}`, () =>
    act(shell("save_attachment", { session: ev.session, id: ev.id, name: meta.name }), "group-status")));
}

async function openOnce(session, id, meta) {
  const bytes = await act(shell("open_view_once", { session, id }), "group-status");
  gone(session, id, `Opened once, now wiped: ${meta.name}`);
  if (!bytes) return;
  const url = URL.createObjectURL(new Blob([bytes], { type: meta.mime }));
  urls.set(`once-${key(session, id)}`, url);
  $("viewer-img").src = url;
  $("viewer").hidden = false;
  $("viewer-close").focus();
}

// The item stays as a note (a stopped transfer, an opened view-once item); its bytes go.
export function gone(session, id, note) {
  const k = key(session, id);
  const it = incoming.get(k);
  if (it) it.el.replaceChildren(span("who", it.el.querySelector(".who")?.textContent || ""), span("text", note));
  drop(k);
}

// The engine wiped it (a timer, or room was needed).
export function expire(session, id) {
  const k = key(session, id);
  incoming.get(k)?.el.remove();
  incoming.delete(k);
  drop(k);
}

function drop(k) {
  for (const u of [k, `once-${k}`]) {
    const url = urls.get(u);
    if (url) URL.revokeObjectURL(url);
    urls.delete(u);
  }
}

// The group went: every item and URL with it.
export function clearFiles() {
  for (const url of urls.values()) URL.revokeObjectURL(url);
  urls.clear();
  incoming.clear();
}

$("viewer-close").addEventListener("click", () => {
  for (const k of [...urls.keys()]) {
    if (!k.startsWith("once-")) continue;
    URL.revokeObjectURL(urls.get(k));
    urls.delete(k);
  }
});
