// Account keys and devices in the UI: the device list with revocation, rotating this account's key
// (offered after revoking a device), and the warning when a friend's key changed — never silent,
// with the safety number to compare and a button to trust the new key.

import { $, say, act, li, span, button } from "./dom.js";
import { engine, on } from "./ipc.js";
import { refreshFriends } from "./contacts.js";
import { withPasscode } from "./lock.js";

// The devices the list shows now: a rotation keeps exactly these (their fingerprints as shown).
let shown = [];

export async function refreshDevices() {
  const ds = (await act(engine("devices"), "settings-status"))?.devices;
  if (!ds) return;
  shown = ds;
  const list = $("devices");
  list.replaceChildren();
  for (const d of ds) {
    const state = d.revoked ? "revoked" : d.online ? "online" : "offline";
    const parts = [span("name mono small", `${d.fingerprint}${d.this_device ? " (this device)" : ""}`), span("hint", state)];
    if (!d.this_device && !d.revoked) {
      parts.push(button("Revoke", `Revoke device ${d.fingerprint}`, async () => {
        const ok = await act(engine("revoke_device", { device_id: d.device_id }), "settings-status", "Device revoked.");
        if (ok !== undefined) offerRotation();
        await refreshDevices();
      }));
    }
    list.append(li(parts));
  }
}

function offerRotation() {
  $("rotate-offer").hidden = false;
  $("device-rotate").focus();
}

$("device-rotate").addEventListener("click", async () => {
  const keep = shown
    .filter((d) => !d.revoked && !d.this_device && d.certified && d.online)
    .map((d) => ({ device_id: d.device_id, fingerprint: d.fingerprint }));
  const kept = keep.length ? `These devices keep working:\n${keep.map((d) => d.fingerprint).join("\n")}\nRevoke any you do not know first. ` : "";
  if (!confirm(`Make a new account key? ${kept}Every other device is signed out, and every friend sees a key-change warning to accept.`)) return;
  const v = await act(withPasscode(() => engine("rotate_account_key", { keep })), "settings-status");
  if (!v) return;
  $("rotate-offer").hidden = true;
  const out = v.signed_out.length ? ` ${v.signed_out.length} offline device(s) signed out.` : "";
  say("settings-status", `New account key. ${v.handed_over.length} other device(s) got it.${out} Friends will be asked to accept it.`);
  await refreshDevices();
});

on("key_changed", (ev) => {
  const box = $("add-status");
  const how = ev.rotated
    ? `${ev.username}'s new key is signed by their old one: they say they rotated it (for example after losing a device). Someone who stole that device could say the same.`
    : `${ev.username}'s key was replaced WITHOUT their old key's signature. Someone may be impersonating them.`;
  box.replaceChildren(
    span("warning", `The account key of ${ev.username} CHANGED. ${how} Compare this safety number with them in person before you trust it: ${ev.safety_number}`),
    button("Trust the new key", `Trust the new key of ${ev.username}`, async () => {
      await act(engine("trust_new_key", { username: ev.username, safety_number: ev.safety_number }), "add-status", `New key of ${ev.username} trusted (not verified).`);
      refreshFriends();
    }),
  );
});

on("account_key_rotated", (ev) => {
  if (ev.here) return; // the Rotate button reports it
  say("settings-status", "Another of your devices rotated the account key; this device took the new key.");
  if (!$("settings").hidden) refreshDevices();
});
