// Groups: starting one from the contacts list, and the group's pane (its members with who is
// connected and who is verified, the messages of everyone, the group-wide timer, leaving; the
// starter also removes members). Each member's messages arrive on that member's own session (its
// link); chat.js hands those here instead of opening a chat for them.

import { $, ui, say, act, pane, li, span, button } from "./dom.js";
import { engine, shell, on } from "./ipc.js";
import * as files from "./group-files.js";

// Why a group ended, as the page says it (again on the fresh page that replaces it, main.js).
export const GROUP_ENDED = {
  left: "You left the group; it was wiped here.",
  removed: "The group's starter removed you; it was wiped here.",
  empty: "Everyone else left: the group ended and was wiped.",
};

// Lines of the group, by the session they came or went on and the id they have there.
const lines = new Map(); // `${session}:${id}` → line element
let delivered = new Map(); // line element → receipts so far
// Receipts (and `file_sent`) can come before the send has answered with the ids they name: kept
// until then.
const early = new Set(); // `${session}:${id}`

function key(session, id) {
  return `${session}:${id}`;
}

export function isLink(session) {
  return ui.links.has(session);
}

// The friends to pick from, as checkboxes.
$("group-new").addEventListener("click", () => {
  const pick = $("group-pick");
  pick.replaceChildren();
  for (const f of ui.friends) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = f.username;
    box.id = `group-pick-${f.username}`;
    const label = document.createElement("label");
    label.className = "check";
    label.append(box, ` ${f.username}`);
    pick.append(label);
  }
  if (!ui.friends.length) pick.append(span("hint", "Add friends first: a group is rung from your friends."));
  $("group-form").hidden = false;
  $("group-new").hidden = true;
  (pick.querySelector("input") || $("group-cancel")).focus();
});

function closeForm() {
  $("group-form").hidden = true;
  $("group-new").hidden = false;
}

$("group-cancel").addEventListener("click", () => {
  closeForm();
  $("group-new").focus();
});

$("group-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const members = [...$("group-pick").querySelectorAll("input:checked")].map((b) => b.value);
  if (!members.length) return say("add-status", "Pick at least one friend to ring into the group.");
  closeForm();
  const r = await act(engine("group_start", { members }), "add-status");
  if (r) say("add-status", `Ringing ${members.join(", ")} into the group…`);
});

async function render() {
  if (!ui.group) return;
  const { groups } = await engine("groups");
  const g = groups.find((x) => x.group === ui.group.id);
  if (!g) return;
  ui.group.admin = g.admin;
  ui.group.isAdmin = g.is_admin;
  say("group-title", g.is_admin ? "Your group" : `${g.admin}'s group`);
  const list = $("group-members");
  list.replaceChildren();
  for (const m of g.members) {
    const state = m.state === "me" ? "you" : m.state;
    const parts = [
      span("name", m.username + (m.verified ? " ✓" : "") + (m.username === g.admin ? " (started it)" : "")),
      span("hint", state),
    ];
    if (g.is_admin && m.state !== "me") {
      parts.push(button("Remove", `Remove ${m.username} from the group`, () =>
        act(engine("group_remove", { group: g.group, username: m.username }), "group-status")));
    }
    const item = li(parts);
    item.dataset.user = m.username;
    item.dataset.state = m.state;
    item.title = m.state === "me" ? "" : `Safety number ${m.safety_number}${m.verified ? " (verified)" : " (not verified)"}`;
    list.append(item);
  }
  // The starter may ring more friends in (up to ten members).
  const add = $("group-add-who");
  const inGroup = new Set(g.members.map((m) => m.username));
  add.replaceChildren();
  for (const f of ui.friends) {
    if (inGroup.has(f.username)) continue;
    const o = document.createElement("option");
    o.value = o.textContent = f.username;
    add.append(o);
  }
  $("group-add-form").hidden = !g.is_admin || !add.options.length || g.members.length >= 10;
  $("group-timer").value = String(g.timer);
  $("group-timer").disabled = !g.is_admin;
  const unprotected = [...ui.group.unprotected];
  $("group-unprotected").hidden = !unprotected.length;
  say("group-unprotected", unprotected.length ? `The screens of ${unprotected.join(", ")} can't be protected — screenshots may be possible.` : "");
  $("group").classList.toggle("watermarked", unprotected.length > 0);
}

function addLine(from, text, session, id, expiresMs) {
  const item = li([span("who", from === null ? "You" : from), span("text", text)]);
  item.className = from === null ? "mine" : "theirs";
  if (expiresMs != null) item.title = `Disappears in ${Math.round(expiresMs / 1000)} s`;
  $("group-messages").append(item);
  return item;
}

$("group-chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("group-input");
  const text = input.value;
  if (!text || !ui.group) return;
  input.value = "";
  const r = await act(engine("group_send", { group: ui.group.id, text }), "group-status");
  if (!r) return;
  const item = addLine(null, text);
  const mark = span("receipt", "");
  item.append(mark);
  track(item, mark, r.sent);
});

// One of our items, sent once per member: counted as each member's receipt (or copy) comes.
function track(item, mark, sent) {
  delivered.set(item, { mark, got: new Set(), of: Object.keys(sent).length });
  for (const [member, s] of Object.entries(sent)) {
    const session = [...ui.links].find(([, m]) => m === member)?.[0];
    if (!session) continue;
    lines.set(key(session, s.id), item);
    if (early.delete(key(session, s.id))) countReceipt(item, session);
  }
}

function counted(ev) {
  const item = lines.get(key(ev.session, ev.id));
  if (item) countReceipt(item, ev.session);
  else if (early.size < 1000) early.add(key(ev.session, ev.id));
}

$("group-file-send").addEventListener("click", () => $("group-file-pick").click());

$("group-file-pick").addEventListener("change", async () => {
  const file = $("group-file-pick").files[0];
  $("group-file-pick").value = "";
  if (!file || !ui.group) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  const meta = {
    name: file.name, size: bytes.length, mime: file.type || "application/octet-stream",
    kind: file.type.startsWith("image/") ? "image" : "file", view_once: $("group-view-once").checked,
  };
  const r = await act(shell("send_group_attachment", bytes, { headers: {
    "x-group": ui.group.id, "x-name": encodeURIComponent(file.name), "x-mime": meta.mime,
    "x-kind": meta.kind, "x-view-once": String(meta.view_once) } }), "group-status");
  if (!r) return;
  const { item, mark } = files.ours(meta);
  track(item, mark, r.sent);
});

$("group-photo-send").addEventListener("click", async () => {
  if (!ui.group) return;
  const viewOnce = $("group-view-once").checked;
  const r = await act(engine("group_send_photo", { group: ui.group.id, camera: 0, view_once: viewOnce }), "group-status");
  if (!r) return;
  const { item, mark } = files.ours({ name: "photo.jpg", kind: "photo", view_once: viewOnce });
  track(item, mark, r.sent);
});

$("group-add-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const username = $("group-add-who").value;
  if (!username || !ui.group) return;
  const r = await act(engine("group_add", { group: ui.group.id, username }), "group-status");
  if (r) say("group-status", `Ringing ${username} into the group…`);
});

// A member's copy arrived (an attachment's receipt and its `file_sent` both say so: counted once).
function countReceipt(item, session) {
  const d = delivered.get(item);
  if (!d) return;
  d.got.add(session);
  d.mark.textContent = ` ✓ ${d.got.size}/${d.of}`;
}

$("group-timer").addEventListener("change", async () => {
  if (!ui.group) return;
  const seconds = Number($("group-timer").value);
  await act(engine("group_timer", { group: ui.group.id, seconds }), "group-status");
});

$("group-leave").addEventListener("click", async () => {
  if (ui.group) await act(engine("group_leave", { group: ui.group.id }), "group-status");
});

// Called by chat.js for events of a link's session.
export function linkEvent(ev) {
  const member = ui.links.get(ev.session);
  if (!ui.group || member === undefined) return;
  switch (ev.event) {
    case "message":
      lines.set(key(ev.session, ev.id), addLine(member, ev.text, ev.session, ev.id, ev.expires_in_ms));
      break;
    case "receipt":
      if (ev.kind === "delivered") counted(ev);
      break;
    case "file_sent":
      counted(ev);
      break;
    case "file_incoming":
      files.offered(member, ev);
      break;
    case "file_progress":
      files.progress(ev);
      break;
    case "file_received":
      files.received(ev);
      break;
    case "file_cancelled":
      files.gone(ev.session, ev.id, `Transfer stopped: ${ev.reason}.`);
      break;
    case "view_once_opened": {
      // Ours, opened by this member (each member opens its own copy once).
      const item = lines.get(key(ev.session, ev.id));
      if (item) item.append(span("hint", ` · opened once by ${member}`));
      break;
    }
    case "expired":
      for (const id of ev.ids) {
        files.expire(ev.session, id);
        const item = lines.get(key(ev.session, id));
        if (item) {
          item.remove();
          lines.delete(key(ev.session, id));
        }
      }
      break;
    case "session_open":
    case "peer_caps":
      if (ev.peer_unprotected) ui.group.unprotected.add(member);
      else ui.group.unprotected.delete(member);
      render();
      break;
    case "session_ended":
      ui.links.delete(ev.session);
      break;
    default:
      break;
  }
}

function clear() {
  $("group-messages").replaceChildren();
  $("group-members").replaceChildren();
  lines.clear();
  early.clear();
  files.clearFiles();
  delivered = new Map();
}

on("group_joined", (ev) => {
  clear();
  ui.group = { id: ev.group, admin: ev.admin, isAdmin: false, unprotected: new Set() };
  say("group-status", "");
  pane("group");
  render();
  $("group-input").focus();
});
on("group_member", (ev) => {
  if (ev.state === "connected" && ev.session) {
    ui.links.set(ev.session, ev.username);
    // The invite this device answered opened before it was a link: what it said then counts.
    const opened = ui.invites.get(ev.session);
    ui.invites.delete(ev.session);
    if (opened && opened.peer_unprotected && ui.group) ui.group.unprotected.add(ev.username);
  }
  if (!ui.group || ev.group !== ui.group.id) return;
  if (ev.state === "gone") {
    ui.group.unprotected.delete(ev.username);
    say("group-status", `${ev.username} is gone from the group.`);
  }
  render();
});
on("group_timer", (ev) => {
  if (!ui.group || ev.group !== ui.group.id) return;
  $("group-timer").value = String(ev.seconds);
  say("group-status", ev.seconds ? `Messages now disappear after ${$("group-timer").selectedOptions[0].textContent}.` : "Auto-delete is off.");
});
on("group_ended", (ev) => {
  if (!ui.group || ev.group !== ui.group.id) return;
  ui.group = null;
  clear();
  if (!$("group").hidden) pane("welcome");
  say("add-status", GROUP_ENDED[ev.reason] || "The group ended.");
});
