#!/usr/bin/env node
// The updater's side of a release: signs each update artifact in a bundle directory with the
// release key, *bound to the version* (`tauri signer sign --app-version`, which the app requires:
// `requireSignedVersion`), and writes the manifest (`latest.json`) the app's update check reads.
//
//   node scripts/updater-manifest.mjs sign --version 0.2.0 --base-url https://…/download/ \
//        --out updater-linux.json target/release/bundle
//   node scripts/updater-manifest.mjs merge --out latest.json updater-*.json
//
// `sign` takes the key from TAURI_SIGNING_PRIVATE_KEY (and TAURI_SIGNING_PRIVATE_KEY_PASSWORD).
// The desktop tests run it against the real app (tests/update_gui.rs).

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const windows = process.platform === "win32";
// npm's shim on Windows is a .cmd, which only a shell runs.
const tauri = join(root, "node_modules", ".bin", windows ? "tauri.cmd" : "tauri");

// Which artifact updates which installation: the updater looks for `{os}-{arch}-{installer}`
// first, then `{os}-{arch}`.
function platformsOf(file) {
  const arch = /aarch64|arm64/.test(file) ? "aarch64" : "x86_64";
  if (file.endsWith(".AppImage")) return [`linux-${arch}`, `linux-${arch}-appimage`];
  if (file.endsWith(".deb")) return [`linux-${arch}-deb`];
  if (file.endsWith(".rpm")) return [`linux-${arch}-rpm`];
  if (file.endsWith("-setup.exe")) return [`windows-${arch}`, `windows-${arch}-nsis`];
  if (file.endsWith(".msi")) return [`windows-${arch}-msi`];
  if (file.endsWith(".app.tar.gz")) return [`darwin-${arch}`, `darwin-${arch}-app`];
  return [];
}

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function args(argv) {
  const o = { files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) o[a.slice(2)] = argv[++i];
    else o.files.push(a);
  }
  return o;
}

function sign(o) {
  if (!o.version || !o["base-url"] || !o.out) throw new Error("sign needs --version, --base-url and --out");
  const base = o["base-url"].endsWith("/") ? o["base-url"] : `${o["base-url"]}/`;
  const platforms = {};
  for (const file of o.files.flatMap(walk)) {
    const keys = platformsOf(file);
    if (!keys.length) continue;
    execFileSync(tauri, ["signer", "sign", "--app-version", o.version, file], { stdio: ["ignore", "ignore", "inherit"], shell: windows });
    const signature = readFileSync(`${file}.sig`, "utf8").trim();
    for (const k of keys) platforms[k] = { url: base + encodeURIComponent(basename(file)), signature };
  }
  if (!Object.keys(platforms).length) throw new Error("no update artifact found");
  const manifest = { version: o.version, notes: o.notes || `AnonChat ${o.version}`, pub_date: new Date().toISOString(), platforms };
  writeFileSync(o.out, `${JSON.stringify(manifest, null, 2)}\n`);
}

function merge(o) {
  if (!o.out || !o.files.length) throw new Error("merge needs --out and the manifests");
  const all = o.files.map((f) => JSON.parse(readFileSync(f, "utf8")));
  const versions = new Set(all.map((m) => m.version));
  if (versions.size !== 1) throw new Error(`manifests disagree on the version: ${[...versions]}`);
  const merged = { ...all[0], platforms: Object.assign({}, ...all.map((m) => m.platforms)) };
  writeFileSync(o.out, `${JSON.stringify(merged, null, 2)}\n`);
}

const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === "sign") sign(args(rest));
  else if (cmd === "merge") merge(args(rest));
  else throw new Error("usage: updater-manifest.mjs sign|merge …");
} catch (e) {
  console.error(`updater-manifest: ${e.message}`);
  process.exit(1);
}
