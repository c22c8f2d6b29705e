// Small DOM helpers and the page-wide state every screen reads. Nothing here is kept anywhere but
// this page's memory; a panic replaces the page (index.html?locked=N).

import { engine } from "./ipc.js";

export const $ = (id) => document.getElementById(id);
export const NOT_FOUND = "User not found or offline.";

export const ui = {
  // The lock screen after a panic renders nothing the engine reports — no caller's name, no
  // request; what still waits is fetched when the user continues. A start with a passcode set
  // is locked the same way.
  locked: new URLSearchParams(location.search).has("locked"),
  me: null,
  friends: [],
  requests: new Map(), // from → safety number
  session: null, // { id, peer }
  pendingRing: null, // { ring_id, from, invite }
  // The group shown (groups.js), the sessions that are group links (not chats of their own), and
  // the invites this device answered (their session becomes a link once the roster comes).
  group: null,
  links: new Map(), // session → member
  invites: new Map(), // ring id → its session_open, once it came
  codeTimer: null,
};

export function show(screen) {
  for (const id of ["lock", "onboard", "main"]) {
    $(id).hidden = id !== screen;
    $(id).inert = false; // boot.js's first paint is over
  }
}

export function pane(which) {
  for (const id of ["welcome", "chat", "group", "notes", "settings"]) $(id).hidden = id !== which;
  if (which !== "settings" && ui.codeTimer) {
    clearInterval(ui.codeTimer);
    ui.codeTimer = null;
  }
}

export function say(el, text) {
  $(el).textContent = text;
}

// Engine errors come as `{ code, message }`: decide on the code, show the message.
export function errText(err) {
  return err && typeof err.message === "string" ? err.message : String(err);
}

export function errCode(err) {
  return err && typeof err.code === "string" ? err.code : "";
}

// Runs an engine call; its error goes to the status line `statusId`, `done` there on success.
// Resolves to the reply, or `undefined` when it failed.
export async function act(promise, statusId, done) {
  try {
    const r = await promise;
    if (done) say(statusId, done);
    return r;
  } catch (err) {
    say(statusId, errText(err));
    return undefined;
  }
}

export function li(children) {
  const item = document.createElement("li");
  for (const c of children) item.append(c);
  return item;
}

export function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

export function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

// The engine draws the QR code as SVG; it is parsed as XML (no HTML parsing, no scripts) and
// placed inline.
export async function qrInto(id, text) {
  const { svg } = await engine("qr", { text });
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  $(id).replaceChildren(document.importNode(doc.documentElement, true));
}
