// The page's one door to the engine: the command list the CLI's JSON mode drives too
// (crates/client/src/api). `engine("ring", { username })` resolves to the reply's fields, or
// rejects with `{ code, message }`. Only what the shell alone can do (raw bytes, dialogs, the
// camera preview, the panic path that also hides the window) is invoked by its own name (`shell`).

const { invoke, Channel } = window.__TAURI__.core;

export function engine(cmd, args = {}) {
  return invoke("execute", { command: { cmd, ...args } });
}

export function shell(name, args, options) {
  return invoke(name, args, options);
}

export { Channel };

// Engine events, one handler per event name; any screen module may register its own.
const handlers = new Map();

export function on(event, handler) {
  handlers.set(event, handler);
}

function dispatch(ev) {
  const h = handlers.get(ev.event);
  if (h) h(ev);
}

// A page that replaced one whose chats ended (`?ended=`) handles no event before those the shell
// held while it loaded (`resume`), so none comes out of order.
let waiting = new URLSearchParams(location.search).has("ended") ? [] : null;

// Events are dropped while `muted()` (the lock screen after a panic renders nothing they carry).
// Resolves once the listener is in place: what the page then fetches cannot miss an event.
export function startEvents(muted) {
  return window.__TAURI__.event.listen("engine", (e) => {
    if (muted()) return;
    if (waiting) waiting.push(e.payload);
    else dispatch(e.payload);
  });
}

// The events the shell held for this page (`take_over`), then those that came since, in order.
export function resume(held) {
  const since = waiting || [];
  waiting = null;
  for (const ev of [...held, ...since]) dispatch(ev);
}
