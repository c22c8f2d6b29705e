// Groups: starting one from the contacts list, and the group's pane (its members with who is
// connected and who is verified, the messages of everyone, the group-wide timer, leaving; the
// starter also removes members). Each member's messages arrive on that member's own session (its
// link); chat.js hands those here instead of opening a chat for them.

import { $, ui, say, act, pane, li, span, button } from "./dom.js";
import { engine, on } from "./ipc.js";

// Lines of the group, by the session they came or went on and the id they have there.
const lines = new Map(); // `${session}:${id}` → line element
let delivered = new Map(); // line element → receipts so far
// Receipts can come before `group_send` has answered with the ids they name: kept until then.
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
  delivered.set(item, { mark, got: 0, of: Object.keys(r.sent).length });
  for (const [member, s] of Object.entries(r.sent)) {
    const session = [...ui.links].find(([, m]) => m === member)?.[0];
    if (!session) continue;
    lines.set(key(session, s.id), item);
    if (early.delete(key(session, s.id))) countReceipt(item);
  }
});

function countReceipt(item) {
  const d = delivered.get(item);
  if (!d) return;
  d.got += 1;
  d.mark.textContent = ` ✓ ${d.got}/${d.of}`;
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
    case "receipt": {
      if (ev.kind !== "delivered") break;
      const item = lines.get(key(ev.session, ev.id));
      if (item) countReceipt(item);
      else if (early.size < 1000) early.add(key(ev.session, ev.id));
      break;
    }
    case "expired":
      for (const id of ev.ids) {
        const item = lines.get(key(ev.session, id));
        if (item) {
          item.remove();
          lines.delete(key(ev.session, id));
        }
      }
      break;
    case "session_open":
      if (ev.peer_unprotected) ui.group.unprotected.add(member);
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
  pane("welcome");
  const why = { left: "You left the group; it was wiped here.", removed: "The group's starter removed you; it was wiped here.", empty: "Everyone else left: the group ended and was wiped." };
  say("add-status", why[ev.reason] || "The group ended.");
});
