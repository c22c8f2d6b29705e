// Ephemeral notes: a scratchpad that lives only in this page's memory. Never saved, never sent to
// the shell until the user shares it into the open chat; a panic ends the page's process, and a
// lock, the idle timeout or quitting replaces or ends the page, so the notes go with it.

import { $, ui, pane, say, act } from "./dom.js";
import { engine, shell } from "./ipc.js";
import * as items from "./chat-items.js";

function refresh() {
  const chat = !!ui.session;
  $("notes-share").disabled = !chat;
  $("notes-share-once").disabled = !chat;
  say("notes-status", chat ? `Shares into your chat with ${ui.session.peer}.` : "Open a chat to share a note into it.");
}

$("nav-notes").addEventListener("click", () => {
  pane("notes");
  refresh();
  $("notes-text").focus();
});

$("notes-clear").addEventListener("click", () => {
  $("notes-text").value = "";
  $("notes-text").focus();
});

// As a line of the chat: it follows the chat's timer like any other line.
$("notes-share").addEventListener("click", async () => {
  const text = $("notes-text").value;
  if (!text || !ui.session) return;
  const sent = await act(engine("send", { session: ui.session.id, text }), "notes-status");
  if (sent === undefined) return;
  items.addLine(text, true, sent.id, sent.expires_in_ms);
  pane("chat");
});

// As a view-once item: the peer can open it once, then it is wiped on both sides.
$("notes-share-once").addEventListener("click", async () => {
  const text = $("notes-text").value;
  if (!text || !ui.session) return;
  const bytes = new TextEncoder().encode(text);
  const meta = { name: "note.txt", size: bytes.length, mime: "text/plain", kind: "file", view_once: true, mine: true };
  const sent = await act(shell("send_attachment", bytes, { headers: {
    "x-session": ui.session.id, "x-name": meta.name, "x-mime": meta.mime,
    "x-kind": meta.kind, "x-view-once": "true" } }), "notes-status");
  if (sent === undefined) return;
  items.addAttachment({ ...meta, id: sent.id }, sent.expires_in_ms);
  pane("chat");
});
