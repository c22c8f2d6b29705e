// A classic script at the end of <body>, run before the page's first layout: the screen the shell
// chose to start on (or the lock screen after a panic) is shown at once, so the first paint is
// that screen rather than a blank page waiting for the modules and two IPC round trips. main.js
// then fills it in from the engine and decides again. Until it has, the screen is inert: a click
// before the modules listen would be lost, or undone when main.js shows the screen it decided on
// (seen: Settings pressed during start, then the contacts pane). dom.js's `show` lifts it.
{
  const q = new URLSearchParams(location.search);
  const screen = q.has("locked") ? "lock" : q.get("screen");
  if (["lock", "onboard", "main"].includes(screen)) {
    const el = document.getElementById(screen);
    el.inert = true;
    el.hidden = false;
  }
}
