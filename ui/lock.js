// The app passcode in the UI: the lock page, the passcode prompt before sensitive actions, and its
// settings.

import { $, show, say, act, errText, errCode } from "./dom.js";
import { engine } from "./ipc.js";
import { lockReason } from "./autolock.js";

// The lock page: with a passcode, only the passcode continues; without one it says so plainly.
export function showLock(lockState) {
  show("lock");
  say("lock-why", lockReason());
  const has = lockState.has_passcode;
  $("unlock-label").hidden = !has;
  $("unlock-passcode").hidden = !has;
  say("lock-note", has
    ? "Enter your app passcode to continue."
    : "No app passcode is set: anyone at this computer can continue. Set one in Settings.");
  (has ? $("unlock-passcode") : $("unlock")).focus();
}

$("unlock-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("unlock-error", "");
  const input = $("unlock-passcode");
  if (!input.hidden) {
    try {
      await engine("unlock", { passcode: input.value });
    } catch (err) {
      input.value = "";
      say("unlock-error", errText(err));
      return;
    }
    input.value = "";
  }
  // A fresh document again, without the lock.
  location.replace("index.html");
});

// Runs `call`; if the engine wants the passcode first, asks for it once and runs it again.
export async function withPasscode(call) {
  try {
    return await call();
  } catch (err) {
    if (errCode(err) !== "passcode_required") throw err;
    if (!(await askPasscode())) throw err;
    return await call();
  }
}

function askPasscode() {
  return new Promise((resolve) => {
    const box = $("passcode-ask");
    const input = $("passcode-ask-input");
    const form = $("passcode-ask-form");
    say("passcode-ask-error", "");
    input.value = "";
    box.hidden = false;
    input.focus();
    const done = (ok) => {
      box.hidden = true;
      input.value = "";
      form.onsubmit = null;
      $("passcode-ask-cancel").onclick = null;
      resolve(ok);
    };
    form.onsubmit = async (e) => {
      e.preventDefault();
      try {
        await engine("unlock", { passcode: input.value });
        done(true);
      } catch (err) {
        input.value = "";
        say("passcode-ask-error", errText(err));
      }
    };
    $("passcode-ask-cancel").onclick = () => done(false);
  });
}

export async function refreshPasscode() {
  const l = await act(engine("lock_status"), "settings-status");
  if (!l) return;
  say("passcode-note", l.has_passcode
    ? "Set: asked after a panic and before sensitive actions."
    : "Not set: after a panic anyone at this computer can continue.");
  $("set-passcode-remove").hidden = !l.has_passcode;
}

$("set-passcode-save").addEventListener("click", async () => {
  const passcode = $("set-passcode").value;
  $("set-passcode").value = "";
  await act(withPasscode(() => engine("set_passcode", { passcode })), "settings-status", "Passcode set.");
  await refreshPasscode();
});

$("set-passcode-remove").addEventListener("click", async () => {
  await act(withPasscode(() => engine("set_passcode", { passcode: null })), "settings-status", "Passcode removed.");
  await refreshPasscode();
});
