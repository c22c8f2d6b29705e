// Settings: discovery mode and code, presence, network, devices, account.

import { $, ui, show, pane, say, act, qrInto } from "./dom.js";
import { engine, shell } from "./ipc.js";
import { withPasscode, refreshPasscode } from "./lock.js";
import { refreshDevices } from "./keys.js";
import { refreshAutoLock } from "./autolock.js";
import { refreshUpdates } from "./updates.js";

// ---- settings ------------------------------------------------------------------------------

$("nav-contacts").addEventListener("click", () => pane(ui.session ? "chat" : "welcome"));
$("nav-settings").addEventListener("click", openSettings);

async function openSettings() {
  pane("settings");
  say("settings-status", "");
  $("set-shortcut").value = ui.me.panic_shortcut;
  $("set-notify-name").checked = ui.me.notify_show_name;
  $("set-panic-quits").checked = ui.me.panic_quits;
  $("set-panic-revokes").checked = ui.me.panic_revokes;
  const m = await act(engine("get_mode"), "settings-status");
  if (m) {
    document.querySelector(`input[name=set-mode][value=${m.mode}]`).checked = true;
    document.querySelector(`input[name=set-presence][value=${m.presence}]`).checked = true;
    $("set-always-code").checked = m.always_require_code;
    $("code-box").hidden = m.mode !== "strict";
  }
  await refreshCode(m && m.mode === "strict");
  await refreshPasscode();
  await refreshAutoLock();
  await refreshUpdates();
  await refreshNetwork();
  await refreshCapture();
  await refreshDevices();
}

// Shown only where the system can do it (Windows, macOS before 15); elsewhere every peer is
// already shown this device as unprotected.
async function refreshCapture() {
  const c = await act(engine("capture"), "settings-status");
  if (!c) return;
  $("capture-box").hidden = !c.available;
  $("set-capture").checked = c.on;
  say("capture-note", c.on
    ? "On: screenshots and recordings show this window blank."
    : "Off: this window shows in screenshots and recordings, and the people you chat with are told so.");
}

$("set-capture").addEventListener("change", async () => {
  await act(shell("set_capture_protection", { on: $("set-capture").checked }), "settings-status", "Saved.");
  await refreshCapture();
});

async function refreshNetwork() {
  const k = await act(engine("server_key"), "settings-status");
  $("server-key").textContent = k?.fingerprint ?? "not pinned yet (pinned on the first connection)";
  const n = await act(engine("network"), "settings-status");
  if (!n) return;
  $("set-hide-ip").checked = n.hide_ip;
  say("relay-note", !n.relay_available
    ? "This server offers no relay: chats connect directly, and the other person can see your IP address."
    : n.hide_ip
      ? "On: chats are a little slower, and nobody you chat with learns where you are."
      : "Off: chats connect directly when they can; the other person can see your IP address.");
}

$("set-hide-ip").addEventListener("change", async () => {
  await act(engine("set_hide_ip", { hide: $("set-hide-ip").checked }), "settings-status", "Saved.");
  await refreshNetwork();
});

async function refreshCode(strict) {
  if (ui.codeTimer) clearInterval(ui.codeTimer);
  ui.codeTimer = null;
  if (!strict) {
    const link = ui.me.share_link || "";
    say("share-link", link);
    await qrInto("share-qr", link);
    return;
  }
  const tick = async () => {
    const c = await act(withPasscode(() => engine("code")), "settings-status");
    if (!c) {
      // Not shown (no passcode given): stop asking every second.
      clearInterval(ui.codeTimer);
      ui.codeTimer = null;
      return;
    }
    say("code-value", c.code);
    say("code-left", `${c.seconds_left} s left`);
    if ($("share-link").textContent !== c.link) {
      say("share-link", c.link);
      await qrInto("share-qr", c.link);
    }
  };
  await tick();
  ui.codeTimer = setInterval(tick, 1000);
}

for (const r of document.querySelectorAll("input[name=set-mode]")) {
  r.addEventListener("change", saveMode);
}
$("set-always-code").addEventListener("change", saveMode);

async function saveMode() {
  const mode = document.querySelector("input[name=set-mode]:checked").value;
  const always = $("set-always-code").checked;
  if (mode === "strict" && !confirm("Switching makes a new code: codes and QR codes you shared stop working. Continue?")) {
    return openSettings();
  }
  const ok = await act(withPasscode(() => engine("set_mode", { mode, always_require_code: always })), "settings-status", "Saved.");
  if (ok !== undefined || mode) {
    $("code-box").hidden = mode !== "strict";
    await refreshCode(mode === "strict");
  }
}

for (const r of document.querySelectorAll("input[name=set-presence]")) {
  r.addEventListener("change", () =>
    act(engine("set_presence", { presence: r.value }), "settings-status", "Saved."));
}

$("code-rotate").addEventListener("click", async () => {
  await act(withPasscode(() => engine("rotate_code")), "settings-status", "New code made; old ones no longer work.");
  await refreshCode(true);
});

$("set-shortcut-save").addEventListener("click", async () => {
  const shortcut = $("set-shortcut").value.trim();
  const ok = await act(shell("set_panic_shortcut", { shortcut }), "settings-status", "Panic shortcut saved.");
  if (ok !== undefined) ui.me.panic_shortcut = shortcut;
});

$("set-notify-name").addEventListener("change", async () => {
  const show = $("set-notify-name").checked;
  await act(shell("set_notify_show_name", { show }), "settings-status", "Saved.");
  ui.me.notify_show_name = show;
});

$("set-panic-quits").addEventListener("change", async () => {
  const quits = $("set-panic-quits").checked;
  await act(shell("set_panic_quits", { quits }), "settings-status", "Saved.");
  ui.me.panic_quits = quits;
});

$("set-panic-revokes").addEventListener("change", async () => {
  const revokes = $("set-panic-revokes").checked;
  const done = await act(withPasscode(() => shell("set_panic_revokes", { revokes })).then(() => true), "settings-status", "Saved.");
  if (!done) $("set-panic-revokes").checked = !revokes;
  else ui.me.panic_revokes = revokes;
});

$("device-add").addEventListener("click", async () => {
  const v = await act(withPasscode(() => engine("enroll_open")), "settings-status");
  if (!v) return;
  say("enroll-code", v.code);
  await qrInto("enroll-qr", v.link);
  $("device-enroll").hidden = false;
});

$("burner-new").addEventListener("click", async () => {
  const minutes = Number($("burner-life").value);
  await act(shell("new_burner", { minutes }), "settings-status", "A burner identity is starting in a window of its own.");
});

$("delete-account").addEventListener("click", async () => {
  if (!confirm("Delete your account on the server and everything of it on this device? This cannot be undone.")) return;
  const ok = await act(withPasscode(() => engine("delete_account")), "settings-status");
  if (ok !== undefined) {
    ui.me = await shell("whoami");
    show("onboard");
  }
});


// Copied codes and links leave the clipboard again after a while (unless something else was
// copied meanwhile).
for (const [button, source] of [["share-copy", "share-link"], ["code-copy", "code-value"], ["enroll-copy", "enroll-code"]]) {
  $(button).addEventListener("click", async () => {
    const text = $(source).textContent;
    if (!text) return;
    const secs = await act(shell("copy", { text }), "settings-status");
    if (secs !== undefined) say("settings-status", `Copied. It leaves the clipboard in ${secs} s.`);
  });
}
