// AnonChat UI: renders what the engine reports and sends the user's intents through one door
// (ipc.js). State lives in dom.js's `ui` and in each chat's view model (chat-items.js), never in
// the DOM; each screen is a module of its own. Nothing is kept anywhere but this page's memory,
// and a panic replaces the page (index.html?locked=N).

import { $, ui, show, pane, say, act, errText, span, button } from "./dom.js";
import { engine, shell, on, startEvents, resume } from "./ipc.js";
import { refreshFriends, loadRequests } from "./contacts.js";
import { loadRings, CHAT_ENDED } from "./chat.js";
import { GROUP_ENDED } from "./groups.js";
import { showLock, withPasscode } from "./lock.js";
import { refreshDevices } from "./keys.js";
import "./settings.js";
import { refreshUpdates } from "./updates.js";
import "./notes.js";

async function start() {
  ui.me = await shell("whoami");
  const lockState = await engine("lock_status");
  if (ui.locked || lockState.locked) {
    ui.locked = true;
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
  $("me-burner").hidden = !ui.me.burner;
  if (ui.me.connected) say("conn", "connected");
  pane("welcome");
  afterEnded().catch(() => {});
  refreshFriends();
  // What came while this page was not there (the lock screen shows nothing) still waits.
  loadRings().catch(() => {});
  loadRequests().catch(() => {});
  // An update the check at start found before this page listened.
  refreshUpdates().catch(() => {});
}

// This page replaced one whose chats had all ended (src-tauri/residue.rs: their lines stayed in
// that page's process): say how they ended, and take back what the user was in the middle of.
async function afterEnded() {
  const ended = new URLSearchParams(location.search).get("ended");
  if (!ended) return;
  const group = ended.startsWith("group_") ? GROUP_ENDED[ended.slice("group_".length)] : null;
  say("add-status", group || CHAT_ENDED[ended] || CHAT_ENDED.chat);
  let held = [];
  try {
    const { carried, events } = await shell("take_over");
    held = events;
    if (carried) {
      $("notes-text").value = carried.notes;
      if (carried.pane !== "welcome") $(`nav-${carried.pane}`).click();
    }
  } finally {
    // Then what happened while this page loaded (a chat that opened meanwhile shows).
    resume(held);
  }
}

// Asked just before the shell replaces this page: what the user was in the middle of.
window.__TAURI__.event.listen("handover", () => {
  const shown = ["notes", "settings"].find((id) => !$(id).hidden) || "welcome";
  const carried = { notes: $("notes-text").value, pane: shown };
  shell("hand_over", { carried }).catch(() => {});
});

$("onboard-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("onboard-error", "");
  const submit = $("onboard-submit");
  submit.disabled = true;
  try {
    const { username } = await engine("check_username", { username: $("onboard-username").value });
    const mode = document.querySelector("input[name=mode]:checked").value;
    say("onboard-error", "Creating your keys…");
    await engine("register", { username });
    await engine("connect");
    await engine("set_mode", { mode, always_require_code: false }).catch(() => {});
    const passcode = $("onboard-passcode").value;
    $("onboard-passcode").value = "";
    if (passcode) await engine("set_passcode", { passcode });
    ui.me = await shell("whoami");
    say("onboard-error", "");
    enterMain();
  } catch (err) {
    say("onboard-error", errText(err));
  } finally {
    submit.disabled = false;
  }
});

$("panic-button").addEventListener("click", () => {
  shell("panic");
});

on("connected", () => {
  say("conn", "connected");
  refreshFriends();
});
on("disconnected", () => say("conn", "reconnecting…"));
on("server_key_changed", (ev) => {
  // Loud and blocking: nothing goes to the server until the user decides.
  $("add-status").replaceChildren(
    span("warning", `The TLS key of ${ev.server} CHANGED since this app first connected. Someone may be impersonating the server; nothing is sent to it. Its fingerprint now: ${ev.fingerprint}. Trust it only if the server's operator confirms exactly this fingerprint.`),
    button("Trust this key", "Trust the server's new TLS key", async () => {
      const ok = await act(engine("trust_server_key", { fingerprint: ev.fingerprint }), "add-status");
      if (ok === undefined) return;
      await act(engine("connect"), "add-status", "New key trusted; connecting.");
    }),
  );
});
on("warning", (ev) => say("add-status", ev.message));
on("enroll_request", (ev) => {
  const item = document.createElement("li");
  item.append(
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
  );
  $("enroll-requests").append(item);
});
on("enroll_aborted", (ev) => {
  $("enroll-requests").replaceChildren();
  $("device-enroll").hidden = true;
  say("settings-status", `Adding a device was aborted: ${ev.reason}. Start again if you still want to add it.`);
});
on("device_revoked", () => {
  ui.me = { ...ui.me, username: null };
  show("onboard");
  say("onboard-error", "This device was revoked from another one; its keys were deleted.");
});

// Listening first, then fetching what waits: a request or ring that comes in between is seen.
startEvents(() => ui.locked).then(start, start);
