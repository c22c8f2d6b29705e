// The contacts screen: friends with their presence, friend requests, adding by name and code, by
// link, or by scanning a contact QR with the camera.

import { $, ui, say, act, errText, li, span, button } from "./dom.js";
import { engine, shell, on, Channel } from "./ipc.js";
import { ring } from "./chat.js";

export async function refreshFriends() {
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
      button("Call", `Call ${f.username} (${state})`, () => ring(f.username)),
    ]);
    item.dataset.user = f.username;
    item.title = state;
    list.append(item);
  }
  if (!ui.friends.length) list.append(li([span("hint", "No friends yet.")]));
}

export function renderRequests() {
  const list = $("requests");
  list.replaceChildren();
  for (const [from, sn] of ui.requests) {
    const item = li([
      span("name", from),
      span("mono small", sn),
      button("Accept", `Accept ${from}`, async () => {
        await act(engine("accept_friend", { username: from, safety_number: sn }), "add-status");
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

// What waits since before this page was there (the lock screen shows nothing).
export async function loadRequests() {
  const { requests } = await engine("friend_requests");
  for (const r of requests) ui.requests.set(r.from, r.safety_number);
  renderRequests();
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
  const preview = new Channel();
  preview.onmessage = scanPreview;
  const run = ++scan.run;
  scan.running = true;
  say("scan-status", "Looking for a code…");
  try {
    const link = await shell("scan_contact", { camera, preview });
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

on("friend_request", (ev) => {
  ui.requests.set(ev.from, ev.safety_number);
  renderRequests();
});
on("friend_added", (ev) => {
  say("add-status", `${ev.username} is now a friend.`);
  refreshFriends();
});
on("friend_removed", () => refreshFriends());
on("presence", (ev) => {
  const f = ui.friends.find((x) => x.username === ev.username);
  if (f) {
    f.online = ev.online;
    f.recently_active = ev.recently_active;
    renderFriends();
  }
});
on("blocked", (ev) => {
  say("add-status", `${ev.username} was refused three times and is now blocked.`);
});
