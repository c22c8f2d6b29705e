// Updates: nothing is asked of the update server unless the user checks (now, or at every start
// if they chose so); an update is installed only if its signature holds (the shell decides).

import { $, say } from "./dom.js";
import { shell } from "./ipc.js";

function offered(offer) {
  $("update-offer").hidden = !offer;
  $("update-note").hidden = !offer;
  if (!offer) return;
  say("update-version", `AnonChat ${offer.version} is available.`);
  say("update-note-text", `AnonChat ${offer.version} is available — see Settings.`);
}

export async function refreshUpdates() {
  let v;
  try {
    v = await shell("updates");
  } catch (err) {
    say("update-status", err.message || String(err));
    return;
  }
  $("set-update-check").checked = v.check_at_start;
  say("update-reveals", `A check asks ${v.server}. It learns this computer's IP address and that it runs AnonChat ${v.version}; installing also tells it your system and processor type. Nothing about your account or chats is sent.`);
  offered(v.offer);
}

$("set-update-check").addEventListener("change", async () => {
  try {
    await shell("set_updates", { settings: { check_at_start: $("set-update-check").checked } });
    say("update-status", "Saved.");
  } catch (err) {
    say("update-status", err.message || String(err));
  }
});

$("update-check").addEventListener("click", async () => {
  say("update-status", "Checking…");
  try {
    const offer = await shell("check_update");
    offered(offer);
    say("update-status", offer ? "" : "AnonChat is up to date.");
  } catch (err) {
    say("update-status", err.message || String(err));
  }
});

$("update-install").addEventListener("click", async () => {
  say("update-status", "Downloading and checking the signature…");
  $("update-install").disabled = true;
  try {
    const version = await shell("install_update");
    $("update-offer").hidden = true;
    $("update-note").hidden = true;
    $("update-restart").hidden = false;
    say("update-status", `AnonChat ${version} is installed and signed by the AnonChat release key. It starts next time; restarting ends every chat.`);
  } catch (err) {
    say("update-status", err.message || String(err));
  } finally {
    $("update-install").disabled = false;
  }
});

$("update-restart").addEventListener("click", () => shell("restart"));

// The check at start reports here (it may finish before or after the page loads: Settings asks too).
window.__TAURI__.event.listen("update", (e) => offered(e.payload));
