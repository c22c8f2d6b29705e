// Locking by itself: the page tells the shell when the user does something (so the idle timeout
// starts again), and the settings for the idle timeout and the OS's lock and sleep.

import { $, act } from "./dom.js";
import { shell } from "./ipc.js";

// At most one report a second: enough for a timeout counted in seconds, quiet on the IPC.
let last = 0;
function input() {
  const now = Date.now();
  if (now - last < 1000) return;
  last = now;
  shell("activity").catch(() => {});
}
// Only what the user does: not focus, which the page itself moves when a ring or a chat comes in
// (a peer must not be able to keep the idle timeout off).
for (const ev of ["keydown", "pointerdown", "pointermove", "wheel"]) {
  window.addEventListener(ev, input, { capture: true, passive: true });
}

const CHOICES = [0, 60, 300, 600, 1800, 3600];

function label(seconds) {
  if (seconds === 0) return "Never";
  if (seconds % 60 === 0) return seconds === 60 ? "After 1 minute" : `After ${seconds / 60} minutes`;
  return `After ${seconds} seconds`;
}

export async function refreshAutoLock() {
  const s = await act(shell("auto_lock"), "settings-status");
  if (!s) return;
  const pick = $("set-idle");
  const choices = CHOICES.includes(s.idle_seconds) ? CHOICES : [...CHOICES, s.idle_seconds].sort((a, b) => a - b);
  pick.replaceChildren(...choices.map((c) => new Option(label(c), String(c), false, c === s.idle_seconds)));
  $("set-lock-screen").checked = s.on_screen_lock;
  $("set-lock-suspend").checked = s.on_suspend;
}

async function save() {
  const settings = {
    idle_seconds: Number($("set-idle").value),
    on_screen_lock: $("set-lock-screen").checked,
    on_suspend: $("set-lock-suspend").checked,
  };
  await act(shell("set_auto_lock", { settings }), "settings-status", "Saved.");
}

for (const id of ["set-idle", "set-lock-screen", "set-lock-suspend"]) $(id).addEventListener("change", save);

// The lock page's first line, when the app locked by itself.
export function lockReason() {
  switch (new URLSearchParams(location.search).get("why")) {
    case "idle": return "Locked after a while without activity: every chat was ended and wiped from memory.";
    case "screen_lock": return "Locked because the screen locked: every chat was ended and wiped from memory.";
    case "suspend": return "Locked because the computer went to sleep: every chat was ended and wiped from memory.";
    default: return "Every chat was ended and wiped from memory.";
  }
}
