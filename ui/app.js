// AnonChat UI: renders what the engine reports and sends the user's intents. It keeps nothing
// anywhere but this page's memory, and a panic replaces the page (index.html?locked=N).
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (id) => document.getElementById(id);
const NOT_FOUND = "User not found or offline.";

// The lock screen after a panic renders nothing the engine reports — no caller's name, no
// request; what still waits is fetched when the user continues (enterMain).
// A start with a passcode set is locked the same way (see `start`).
let LOCKED = new URLSearchParams(location.search).has("locked");

const ui = {
  me: null,
  friends: [],
  requests: new Map(), // from → safety number
  session: null, // { id, peer }
  pendingRing: null, // { ring_id, from }
  earlyReceipts: new Map(), // message id → state, for receipts that beat their message
  codeTimer: null,
};

function show(screen) {
  for (const id of ["lock", "onboard", "main"]) $(id).hidden = id !== screen;
}

function pane(which) {
  for (const id of ["welcome", "chat", "settings"]) $(id).hidden = id !== which;
  if (which !== "settings" && ui.codeTimer) {
    clearInterval(ui.codeTimer);
    ui.codeTimer = null;
  }
}

function say(el, text) {
  $(el).textContent = text;
}

// Engine errors come as `{ code, message }`: decide on the code, show the message.
function errText(err) {
  return err && typeof err.message === "string" ? err.message : String(err);
}

function errCode(err) {
  return err && typeof err.code === "string" ? err.code : "";
}

function li(children) {
  const item = document.createElement("li");
  for (const c of children) item.append(c);
  return item;
}

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

// The engine draws the QR code as SVG; it is parsed as XML (no HTML parsing, no scripts) and placed
// inline.
async function qrInto(id, text) {
  const { svg } = await engine("qr", { text });
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  $(id).replaceChildren(document.importNode(doc.documentElement, true));
}

// ---- start ---------------------------------------------------------------------------------

async function start() {
  ui.me = await invoke("whoami");
  const lockState = await engine("lock_status");
  if (LOCKED || lockState.locked) {
    LOCKED = true;
    showLock(lockState);
    return;
  }
  if (!ui.me.username) {
    show("onboard");
    $("onboard-username").focus();
    return;
  }
  enterMain();
}

function enterMain() {
  show("main");
  say("me-name", ui.me.username);
  if (ui.me.connected) say("conn", "connected");
  pane("welcome");
  refreshFriends();
  // What came while this page was not there (the lock screen shows nothing) still waits.
  engine("incoming_rings").then(({ rings }) => {
    if (rings.length && !ui.pendingRing) ringDialog(rings[0]);
  }).catch(() => {});
  engine("friend_requests").then(({ requests }) => {
    for (const r of requests) ui.requests.set(r.from, r.safety_number);
    renderRequests();
  }).catch(() => {});
}

$("onboard-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("onboard-error", "");
  const button = $("onboard-submit");
  button.disabled = true;
  try {
    const { username: name } = await engine("check_username", { username: $("onboard-username").value });
    const mode = document.querySelector("input[name=mode]:checked").value;
    say("onboard-error", "Creating your keys…");
    await engine("register", { username: name });
    await engine("connect");
    await engine("set_mode", { mode, always_require_code: false }).catch(() => {});
    const passcode = $("onboard-passcode").value;
    $("onboard-passcode").value = "";
    if (passcode) await engine("set_passcode", { passcode });
    ui.me = await invoke("whoami");
    say("onboard-error", "");
    enterMain();
  } catch (err) {
    say("onboard-error", errText(err));
  } finally {
    button.disabled = false;
  }
});

// ---- contacts ------------------------------------------------------------------------------

async function refreshFriends() {
  try {
    ui.friends = (await engine("friends")).friends;
  } catch (_) {
    return; // Not connected yet; `connected` refreshes.
  }
  renderFriends();
}

function renderFriends() {
  const list = $("friends");
  list.replaceChildren();
  for (const f of ui.friends) {
    const state = f.online ? "online" : f.recently_active ? "recently active" : "offline";
    const dot = span("dot" + (f.online ? " on" : f.recently_active ? " recent" : ""), "");
    dot.setAttribute("aria-hidden", "true");
    const item = li([
      dot,
      span("name", f.username + (f.verified ? " ✓" : "")),
      button("Call", `Call ${f.username} (${state})`, () => call(f.username)),
    ]);
    item.dataset.user = f.username;
    item.title = state;
    list.append(item);
  }
  if (!ui.friends.length) list.append(li([span("hint", "No friends yet.")]));
}

function renderRequests() {
  const list = $("requests");
  list.replaceChildren();
  for (const [from, sn] of ui.requests) {
    const item = li([
      span("name", from),
      button("Accept", `Accept ${from}`, async () => {
        await act(engine("accept_friend", { username: from }), "add-status");
        ui.requests.delete(from);
        renderRequests();
      }),
      button("Decline", `Decline ${from}`, async () => {
        await act(engine("decline_friend", { username: from }), "add-status");
        ui.requests.delete(from);
        renderRequests();
      }),
    ]);
    item.dataset.user = from;
    item.title = "Safety number " + sn;
    list.append(item);
  }
}

async function act(promise, statusId, done) {
  try {
    const r = await promise;
    if (done) say(statusId, done);
    return r;
  } catch (err) {
    say(statusId, errText(err));
    return undefined;
  }
}

$("add-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const username = $("add-username").value.trim();
  const code = $("add-code").value.trim() || null;
  if (!username) return;
  const added = await act(engine("add_friend", { username, code }), "add-status");
  if (added !== undefined) {
    say("add-status", `Request sent to ${username}.`);
    $("add-username").value = "";
    $("add-code").value = "";
  }
});

$("link-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const link = $("add-link").value.trim();
  const r = await act(engine("add_link", { link }), "add-status");
  if (r) {
    say("add-status", `Request sent to ${r.username}.`);
    $("add-link").value = "";
  }
});

// Adding by camera: the engine reads frames until a contact QR shows up; small previews arrive
// as JPEG bytes on a channel and are shown from object URLs, revoked as soon as they are replaced.
const scan = { url: null, running: false, run: 0 };

function scanPreview(data) {
  if (!scan.running) return;
  const bytes = data instanceof ArrayBuffer ? data : new Uint8Array(data).buffer;
  const url = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
  $("scan-preview").src = url;
  if (scan.url) URL.revokeObjectURL(scan.url);
  scan.url = url;
}

function scanClose() {
  scan.running = false;
  $("scan").hidden = true;
  $("scan-preview").removeAttribute("src");
  if (scan.url) URL.revokeObjectURL(scan.url);
  scan.url = null;
}

async function scanRun(camera) {
  const preview = new window.__TAURI__.core.Channel();
  preview.onmessage = scanPreview;
  const run = ++scan.run;
  scan.running = true;
  say("scan-status", "Looking for a code…");
  try {
    const link = await invoke("scan_contact", { camera, preview });
    scanClose();
    const r = await act(engine("add_link", { link }), "add-status");
    if (r) say("add-status", `Request sent to ${r.username}.`);
    $("scan-open").focus();
  } catch (err) {
    if (!scan.running || run !== scan.run) return; // Cancelled, or replaced by another scan.
    say("scan-status", errText(err));
  }
}

$("scan-open").addEventListener("click", async () => {
  const cams = (await act(engine("cameras"), "add-status"))?.cameras;
  if (!cams) return; // The engine's "No camera found…" is in the status line.
  const pick = $("scan-camera");
  pick.replaceChildren(...cams.map((c) => new Option(c.name, String(c.index))));
  pick.hidden = $("scan-camera-label").hidden = cams.length < 2;
  $("scan").hidden = false;
  $("scan-cancel").focus();
  scanRun(cams[0].index);
});

$("scan-camera").addEventListener("change", () => {
  scanRun(Number($("scan-camera").value));
});

$("scan-cancel").addEventListener("click", () => {
  scanClose();
  engine("stop_scan");
  $("scan-open").focus();
});

$("scan").addEventListener("keydown", (e) => {
  if (e.key === "Escape") $("scan-cancel").click();
});

// ---- calls and chat ------------------------------------------------------------------------

async function call(username) {
  const rang = await act(engine("ring", { username, code: null }), "add-status");
  if (rang) say("add-status", `Calling ${username}…`);
}

function ringDialog(ring) {
  ui.pendingRing = ring;
  say("ring-text", ring ? `${ring.from} is calling.` : "");
  $("ring").hidden = !ring;
  if (ring) $("ring-answer").focus();
}

$("ring-answer").addEventListener("click", async () => {
  const r = ui.pendingRing;
  ringDialog(null);
  if (r) await act(engine("answer", { ring_id: r.ring_id, accept: true }), "add-status");
});

$("ring-decline").addEventListener("click", async () => {
  const r = ui.pendingRing;
  ringDialog(null);
  if (r) await act(engine("answer", { ring_id: r.ring_id, accept: false }), "add-status");
});

function showRoute(route) {
  say("chat-route", route && route.local === "relay"
    ? "Relayed: your IP address is hidden from them."
    : "Direct connection: they can see your IP address.");
}

function openChat(ev) {
  ui.session = { id: ev.session, peer: ev.peer };
  say("chat-title", ev.peer);
  $("messages").replaceChildren();
  $("chat-unprotected").hidden = !ev.peer_unprotected;
  $("chat").classList.toggle("watermarked", ev.peer_unprotected);
  showRoute(ev.route);
  $("chat-safety-box").hidden = true;
  say("chat-typing", "");
  pane("chat");
  // A camera picker when there is more than one camera (none: "Take a photo" says so).
  engine("cameras").then(({ cameras: cams }) => {
    const pick = $("photo-camera");
    pick.replaceChildren(...cams.map((c) => new Option(c.name, String(c.index))));
    pick.hidden = $("photo-camera-label").hidden = cams.length < 2;
  }).catch(() => { $("photo-camera").hidden = $("photo-camera-label").hidden = true; });
  $("chat-input").focus();
}

function closeChat(note) {
  clearMedia();
  ui.session = null;
  $("messages").replaceChildren();
  ui.earlyReceipts.clear();
  $("chat-input").value = "";
  pane("welcome");
  say("add-status", note);
}

$("chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("chat-input");
  const text = input.value;
  if (!text || !ui.session) return;
  input.value = "";
  const sent = await act(engine("send", { session: ui.session.id, text }), "chat-typing");
  if (sent !== undefined) addLine(text, true, sent.id, sent.expires_in_ms);
});

$("viewer-close").addEventListener("click", () => {
  $("viewer").hidden = true;
  $("viewer-img").removeAttribute("src");
  for (const key of [...media.urls.keys()]) if (String(key).startsWith("once-")) dropUrl(key);
});

$("file-send").addEventListener("click", () => $("file-pick").click());

$("file-pick").addEventListener("change", async () => {
  const file = $("file-pick").files[0];
  $("file-pick").value = "";
  if (!file || !ui.session) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  const kind = file.type.startsWith("image/") ? "image" : "file";
  const viewOnce = $("view-once").checked;
  const meta = { name: file.name, size: bytes.length, mime: file.type || "application/octet-stream", kind, view_once: viewOnce, mine: true };
  const sent = await act(invoke("send_attachment", bytes, { headers: {
    "x-session": ui.session.id, "x-name": encodeURIComponent(file.name), "x-mime": meta.mime,
    "x-kind": kind, "x-view-once": String(viewOnce) } }), "chat-typing");
  if (sent !== undefined) stamp(addAttachment({ ...meta, id: sent.id }), sent.expires_in_ms);
});

$("photo-send").addEventListener("click", async () => {
  if (!ui.session) return;
  const viewOnce = $("view-once").checked;
  const camera = Number($("photo-camera").value || 0);
  const sent = await act(engine("send_photo", { session: ui.session.id, camera, view_once: viewOnce }), "chat-typing");
  if (sent !== undefined) {
    const item = addAttachment({ id: sent.id, name: "photo.jpg", size: 0, mime: "image/jpeg", kind: "photo", view_once: viewOnce, mine: true });
    stamp(item, sent.expires_in_ms);
  }
});

$("chat-timer").addEventListener("change", async () => {
  const seconds = Number($("chat-timer").value);
  const ok = await act(engine("set_timer", { session: ui.session.id, seconds }), "chat-typing");
  // Refused: show the timer the chat really has (the engine's `timer_set` says which).
  if (ok === undefined) $("chat-timer").value = $("chat-timer").dataset.confirmed || "0";
});

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

$("panic-button").addEventListener("click", () => {
  invoke("panic");
});

// ---- engine events -------------------------------------------------------------------------

const handlers = {
  connected() {
    say("conn", "connected");
    refreshFriends();
  },
  disconnected() {
    say("conn", "reconnecting…");
  },
  friend_request(ev) {
    ui.requests.set(ev.from, ev.safety_number);
    renderRequests();
  },
  friend_added(ev) {
    say("add-status", `${ev.username} is now a friend.`);
    refreshFriends();
  },
  friend_removed() {
    refreshFriends();
  },
  presence(ev) {
    const f = ui.friends.find((x) => x.username === ev.username);
    if (f) {
      f.online = ev.online;
      f.recently_active = ev.recently_active;
      renderFriends();
    }
  },
  server_key_changed(ev) {
    // Loud and blocking: nothing goes to the server until the user decides.
    const box = $("add-status");
    box.replaceChildren(
      span("warning", `The TLS key of ${ev.server} CHANGED since this app first connected. Someone may be impersonating the server; nothing is sent to it. Trust the new key only if the server's operator confirms they replaced it.`),
      button("Trust the new key", "Trust the server's new TLS key", async () => {
        await act(engine("trust_server_key"), "add-status");
        await act(engine("connect"), "add-status", "New key trusted; connecting.");
      }),
    );
  },
  incoming_ring(ev) {
    ringDialog({ ring_id: ev.ring_id, from: ev.from });
  },
  ring_ended(ev) {
    if (ui.pendingRing && ui.pendingRing.ring_id === ev.ring_id) ringDialog(null);
    const why = { declined: "Declined.", timeout: "No answer.", answered_elsewhere: "Answered on another device.", cancelled: "Cancelled.", unavailable: NOT_FOUND };
    say("add-status", why[ev.reason] || "");
  },
  session_open: openChat,
  message(ev) {
    if (ui.session && ev.session === ui.session.id) {
      addLine(ev.text, false, ev.id, ev.expires_in_ms);
      say("chat-typing", "");
    }
  },
  receipt(ev) {
    const state = ev.kind === "read" ? "read" : "delivered";
    const item = document.querySelector(`#messages li.mine[data-id="${ev.id}"] .receipt`);
    // On loopback a receipt can come back before `send_text` has returned the message's id.
    if (item) item.textContent = state;
    else if (ui.session && ev.session === ui.session.id) ui.earlyReceipts.set(ev.id, state);
  },
  file_incoming(ev) {
    if (ui.session && ev.session === ui.session.id) addAttachment(ev);
  },
  file_progress(ev) {
    const bar = document.querySelector(`#messages li[data-id="${ev.id}"] progress`);
    if (bar) { bar.max = ev.total || 1; bar.value = ev.done; }
  },
  file_received(ev) {
    if (!ui.session || ev.session !== ui.session.id) return;
    // What the bytes are, sniffed by the engine (never the peer's claimed type).
    const item = itemFor(ev.id);
    if (item && item._meta) item._meta = { ...item._meta, kind: ev.kind, mime: ev.mime };
    stamp(item, ev.expires_in_ms);
    attachmentDone(ev.id);
  },
  file_sent(ev) {
    if (ui.session && ev.session === ui.session.id) attachmentDone(ev.id);
  },
  file_cancelled(ev) {
    const item = itemFor(ev.id);
    if (item) item.replaceChildren(span("name", `Transfer stopped: ${ev.reason}.`));
    dropUrl(ev.id);
  },
  view_once_opened(ev) {
    const item = itemFor(ev.id);
    if (item) item.replaceChildren(span("name", "Opened once by them, now wiped on both sides."));
    dropUrl(ev.id);
  },
  timer_set(ev) {
    if (!ui.session || ev.session !== ui.session.id) return;
    $("chat-timer").value = $("chat-timer").dataset.confirmed = String(ev.seconds);
    if (ev.by_peer) say("chat-typing", ev.seconds ? `${ui.session.peer} set messages to disappear after ${$("chat-timer").selectedOptions[0].textContent}.` : `${ui.session.peer} turned auto-delete off.`);
  },
  expired(ev) {
    for (const id of ev.ids) {
      const item = itemFor(id);
      if (item) item.remove();
      dropUrl(id);
    }
  },
  typing(ev) {
    if (ui.session && ev.session === ui.session.id) say("chat-typing", `${ui.session.peer} is typing…`);
  },
  session_reconnecting(ev) {
    if (ui.session && ev.session === ui.session.id) say("chat-route", "Connection lost: reconnecting… (the chat is wiped if this fails)");
  },
  session_resumed(ev) {
    if (ui.session && ev.session === ui.session.id) showRoute(ev.route);
  },
  session_ended(ev) {
    const flood = ev.reason === "flooded" ? " The other side sent far more than a person could, so this side ended it." : "";
    if (ui.session && ev.session === ui.session.id) closeChat(`The chat ended and was wiped.${flood}`);
  },
  session_failed(ev) {
    say("add-status", `Could not start the chat: ${ev.reason}`);
  },
  warning(ev) {
    say("add-status", ev.message);
  },
  enroll_request(ev) {
    const list = $("enroll-requests");
    const item = li([
      span("name mono", ev.fingerprint),
      button("Approve", `Approve the device showing ${ev.fingerprint}`, async () => {
        // The approval names the code shown here: it holds only for the keys it was computed over.
        await act(withPasscode(() => engine("enroll_approve", { device_id: ev.device_id, fingerprint: ev.fingerprint })), "settings-status", "Device added.");
        item.remove();
        $("device-enroll").hidden = true;
        refreshDevices();
      }),
      button("Decline", "Decline this device", async () => {
        await act(engine("enroll_decline", { device_id: ev.device_id }), "settings-status");
        item.remove();
      }),
    ]);
    list.append(item);
  },
  enroll_aborted(ev) {
    $("enroll-requests").replaceChildren();
    $("device-enroll").hidden = true;
    say("settings-status", `Adding a device was aborted: ${ev.reason}. Start again if you still want to add it.`);
  },
  blocked(ev) {
    say("add-status", `${ev.username} was refused three times and is now blocked.`);
  },
  device_revoked() {
    ui.me = { ...ui.me, username: null };
    show("onboard");
    say("onboard-error", "This device was revoked from another one; its keys were deleted.");
  },
};

listen("engine", (e) => {
  if (LOCKED) return;
  const h = handlers[e.payload.event];
  if (h) h(e.payload);
});

start();
