// Calls and the chat screen: ringing, the incoming-ring dialog, the open chat (text, files,
// photos, the auto-delete timer, the safety number), and the engine's chat events.

import { $, ui, say, act, pane, qrInto, NOT_FOUND } from "./dom.js";
import { engine, shell, on } from "./ipc.js";
import * as items from "./chat-items.js";
import { isLink, linkEvent } from "./groups.js";

// One chat at a time, like a phone call: a second one would leave the first with no window to
// come back to, its peer still talking to nobody.
export async function ring(username) {
  if (ui.session) {
    say("add-status", `You are in a chat with ${ui.session.peer}: leave it first.`);
    return;
  }
  const rang = await act(engine("ring", { username, code: null }), "add-status");
  if (rang) say("add-status", `Calling ${username}…`);
}

export function ringDialog(r) {
  ui.pendingRing = r;
  const ends = r && !r.invite && ui.session ? ` Answering ends your chat with ${ui.session.peer}.` : "";
  say("ring-text", r ? (r.invite ? `${r.from} rings you into a group.` : `${r.from} is calling.${ends}`) : "");
  $("ring").hidden = !r;
  if (r) $("ring-answer").focus();
}

// A ring that came while this page was not there still waits.
export async function loadRings() {
  const { rings } = await engine("incoming_rings");
  if (rings.length && !ui.pendingRing) ringDialog(rings[0]);
}

async function answer(accept) {
  const r = ui.pendingRing;
  ringDialog(null);
  if (!r) return;
  const ending = accept && !r.invite && ui.session ? ui.session.id : null;
  const answered = await act(engine("answer", { ring_id: r.ring_id, accept }), "add-status");
  // Answered first, then the chat it replaces ends: the new one opens in whichever page is there.
  if (answered !== undefined && ending) await act(engine("leave", { session: ending }), "add-status");
}

$("ring-answer").addEventListener("click", () => answer(true));
$("ring-decline").addEventListener("click", () => answer(false));

function showRoute(route) {
  say("chat-route", route && route.local === "relay"
    ? "Relayed: your IP address is hidden from them."
    : "Direct connection: they can see your IP address.");
}

function openChat(ev) {
  // A group's link is no chat of its own: the group's pane shows it.
  if (isLink(ev.session)) return linkEvent(ev);
  if (ui.invites.has(ev.session)) return ui.invites.set(ev.session, ev);
  items.clearChat();
  ui.session = { id: ev.session, peer: ev.peer };
  say("chat-title", ev.peer);
  showUnprotected(ev.peer_unprotected);
  showRoute(ev.route);
  $("chat-safety-box").hidden = true;
  say("chat-typing", "");
  pane("chat");
  // A camera picker when there is more than one camera (none: "Take a photo" says so).
  engine("cameras").then(({ cameras }) => {
    const pick = $("photo-camera");
    pick.replaceChildren(...cameras.map((c) => new Option(c.name, String(c.index))));
    pick.hidden = $("photo-camera-label").hidden = cameras.length < 2;
  }).catch(() => { $("photo-camera").hidden = $("photo-camera-label").hidden = true; });
  $("chat-input").focus();
}

// How a chat's end is said (again on the fresh page that replaces this one, main.js).
export const CHAT_ENDED = {
  chat: "The chat ended and was wiped.",
  flooded: "The chat ended and was wiped. The other side sent far more than a person could, so this side ended it.",
};

function closeChat(note) {
  items.clearChat();
  ui.session = null;
  $("chat-input").value = "";
  // A user writing notes or changing settings stays there.
  if (!$("chat").hidden) pane("welcome");
  say("add-status", note);
}

const here = (ev) => ui.session && ev.session === ui.session.id;

$("chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("chat-input");
  const text = input.value;
  if (!text || !ui.session) return;
  input.value = "";
  const sent = await act(engine("send", { session: ui.session.id, text }), "chat-typing");
  if (sent !== undefined) items.addLine(text, true, sent.id, sent.expires_in_ms);
});

$("viewer-close").addEventListener("click", items.closeViewer);

$("file-send").addEventListener("click", () => $("file-pick").click());

$("file-pick").addEventListener("change", async () => {
  const file = $("file-pick").files[0];
  $("file-pick").value = "";
  if (!file || !ui.session) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  const kind = file.type.startsWith("image/") ? "image" : "file";
  const viewOnce = $("view-once").checked;
  const meta = { name: file.name, size: bytes.length, mime: file.type || "application/octet-stream", kind, view_once: viewOnce, mine: true };
  const sent = await act(shell("send_attachment", bytes, { headers: {
    "x-session": ui.session.id, "x-name": encodeURIComponent(file.name), "x-mime": meta.mime,
    "x-kind": kind, "x-view-once": String(viewOnce) } }), "chat-typing");
  if (sent !== undefined) items.addAttachment({ ...meta, id: sent.id }, sent.expires_in_ms);
});

$("photo-send").addEventListener("click", async () => {
  if (!ui.session) return;
  const viewOnce = $("view-once").checked;
  const camera = Number($("photo-camera").value || 0);
  const sent = await act(engine("send_photo", { session: ui.session.id, camera, view_once: viewOnce }), "chat-typing");
  if (sent !== undefined) {
    const meta = { id: sent.id, name: "photo.jpg", size: 0, mime: "image/jpeg", kind: "photo", view_once: viewOnce, mine: true };
    items.addAttachment(meta, sent.expires_in_ms);
  }
});

$("chat-timer").addEventListener("change", async () => {
  const seconds = Number($("chat-timer").value);
  const ok = await act(engine("set_timer", { session: ui.session.id, seconds }), "chat-typing");
  // Refused: show the timer the chat really has (the engine's `timer_set` says which).
  if (ok === undefined) $("chat-timer").value = $("chat-timer").dataset.confirmed || "0";
});

// Every keystroke is told; the engine sends at most one typing notice per 2 s.
$("chat-input").addEventListener("input", () => {
  if (ui.session) engine("typing", { session: ui.session.id }).catch(() => {});
});

$("chat-leave").addEventListener("click", async () => {
  if (ui.session) await act(engine("leave", { session: ui.session.id }), "add-status");
});

$("chat-safety").addEventListener("click", async () => {
  const box = $("chat-safety-box");
  if (!box.hidden || !ui.session) {
    box.hidden = true;
    return;
  }
  const sn = (await act(engine("safety_number", { username: ui.session.peer }), "chat-typing"))?.safety_number;
  if (sn === undefined) return;
  say("chat-safety-number", sn);
  await qrInto("chat-safety-qr", sn.replace(/ /g, ""));
  box.hidden = false;
});

on("incoming_ring", (ev) => {
  if (ev.invite) ui.invites.set(ev.ring_id, null);
  ringDialog({ ring_id: ev.ring_id, from: ev.from, invite: ev.invite });
});
on("ring_ended", (ev) => {
  if (ui.pendingRing && ui.pendingRing.ring_id === ev.ring_id) ringDialog(null);
  const why = { declined: "Declined.", timeout: "No answer.", answered_elsewhere: "Answered on another device.", cancelled: "Cancelled.", unavailable: NOT_FOUND };
  say("add-status", why[ev.reason] || "");
});
on("session_open", openChat);
on("message", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (!here(ev)) return;
  items.addLine(ev.text, false, ev.id, ev.expires_in_ms);
  say("chat-typing", "");
});
on("receipt", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) items.receipt(ev.id, ev.kind === "read" ? "read" : "delivered");
});
on("file_incoming", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) items.addAttachment(ev);
});
on("file_progress", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) items.progress(ev.id, ev.done, ev.total);
});
on("file_received", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) items.received(ev.id, ev.kind, ev.mime, ev.expires_in_ms);
});
on("file_sent", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) items.attachmentDone(ev.id);
});
on("file_cancelled", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) items.replaceWith(ev.id, `Transfer stopped: ${ev.reason}.`);
});
on("view_once_opened", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) items.replaceWith(ev.id, "Opened once by them, now wiped on both sides.");
});
on("timer_set", (ev) => {
  if (!here(ev)) return;
  $("chat-timer").value = $("chat-timer").dataset.confirmed = String(ev.seconds);
  if (ev.by_peer) say("chat-typing", ev.seconds ? `${ui.session.peer} set messages to disappear after ${$("chat-timer").selectedOptions[0].textContent}.` : `${ui.session.peer} turned auto-delete off.`);
});
on("expired", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) items.expire(ev.ids);
});
on("typing", (ev) => {
  if (here(ev)) say("chat-typing", `${ui.session.peer} is typing…`);
});
function showUnprotected(unprotected) {
  $("chat-unprotected").hidden = !unprotected;
  $("chat").classList.toggle("watermarked", unprotected);
}

// The peer turned its capture protection off (or back on) mid-chat.
on("peer_caps", (ev) => {
  if (isLink(ev.session)) return linkEvent(ev);
  const opened = ui.invites.get(ev.session);
  if (opened) return ui.invites.set(ev.session, { ...opened, peer_unprotected: ev.peer_unprotected });
  if (here(ev)) showUnprotected(ev.peer_unprotected);
});
on("session_reconnecting", (ev) => {
  if (here(ev)) say("chat-route", "Connection lost: reconnecting… (the chat is wiped if this fails)");
});
on("session_resumed", (ev) => {
  if (here(ev)) showRoute(ev.route);
});
on("session_ended", (ev) => {
  ui.invites.delete(ev.session);
  if (isLink(ev.session)) return linkEvent(ev);
  if (here(ev)) closeChat(ev.reason === "flooded" ? CHAT_ENDED.flooded : CHAT_ENDED.chat);
});
on("session_failed", (ev) => {
  say("add-status", `Could not start the chat: ${ev.reason}`);
});
