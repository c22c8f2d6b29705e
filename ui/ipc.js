// The page's one door to the engine: the command list the CLI's JSON mode drives too
// (crates/client/src/api). `engine("ring", { username })` resolves to the reply's fields, or
// rejects with `{ code, message }`. Only what the shell alone can do (raw bytes, dialogs, the
// camera preview, the panic shortcut) is invoked by its own name. Loaded first (classic script).
"use strict";

function engine(cmd, args = {}) {
  return window.__TAURI__.core.invoke("execute", { command: { cmd, ...args } });
}
