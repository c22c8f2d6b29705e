//! The driver of `residue.rs`: engine events go in; the page is asked to hand over what the user
//! was in the middle of (`handover` event, answered by the `hand_over` command), then replaced by
//! a fresh page in a new web process (`panic::relaunch_page`), which takes the handover back
//! (`take_over`). Engine events that come from the handover on (a chat opening as the last one
//! ended) are held for the new page and handed to it with the rest, so none is lost. Panic, the
//! automatic locks and quitting tell the machine they replaced or ended the page themselves.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anonchat_client::Event;
use anonchat_proto::frames::SecretText;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager};

use crate::residue::{Do, Note, Residue};
use crate::window::LABEL;
use crate::{lock, AppState};

/// What a page carries into the one that replaces it: the notes (chat-like text: zeroized when
/// dropped, never logged) and the pane the user was on.
#[derive(Default, Serialize, Deserialize)]
pub struct Carried {
    notes: SecretText,
    pane: String,
}

/// The panes a page may ask to come back to (anything else: the contacts' welcome pane).
const PANES: [&str; 3] = ["welcome", "notes", "settings"];

/// How long events are held for a new page that does not ask for them (it failed to load):
/// after that they go out live again, and the held ones are dropped (wiped: they hold chat text).
/// The handover takes at most `residue::HANDOVER`, a page loads in about 300 ms.
const HOLD_AT_MOST: Duration = Duration::from_secs(5);
/// A chat's worth of events while a page loads; past it the oldest are dropped.
const HOLD_EVENTS: usize = 512;

/// Events held since `since` for the page being loaded.
struct Held {
    since: Instant,
    events: VecDeque<Event>,
}

#[derive(Default)]
pub struct PageWipe {
    machine: Mutex<Residue>,
    carried: Mutex<Option<Carried>>,
    held: Mutex<Option<Held>>,
}

/// What a new page takes over: the old page's handover, and the events it would have missed.
#[derive(Serialize)]
pub struct TakeOver {
    carried: Option<Carried>,
    events: Vec<Event>,
}

fn state(app: &AppHandle) -> &PageWipe {
    app.state::<PageWipe>().inner()
}

/// An engine event: to the page, or held back from the moment the page is asked to hand over
/// (it is going) until the new one takes over; then to the machine.
pub fn on_event(app: &AppHandle, ev: Event) {
    let s = state(app);
    let todo = lock(&s.machine).event(&ev, Instant::now());
    // One lock over holding and sending, so no event slips out to a page being replaced.
    let mut held = lock(&s.held);
    if matches!(todo, Some(Do::Release)) {
        // The page stays after all: what was held back goes to it, in order.
        for ev in held.take().map(|h| h.events).unwrap_or_default() {
            let _ = app.emit("engine", &ev);
        }
    }
    match held.as_mut() {
        Some(h) if h.since.elapsed() < HOLD_AT_MOST => {
            if h.events.len() == HOLD_EVENTS {
                h.events.pop_front();
            }
            h.events.push_back(ev);
        }
        _ => {
            *held = None;
            let _ = app.emit("engine", &ev);
        }
    }
    if matches!(todo, Some(Do::AskHandover { .. })) {
        *held = Some(Held {
            since: Instant::now(),
            events: VecDeque::new(),
        });
    }
    drop(held);
    run(app, todo);
}

fn run(app: &AppHandle, todo: Option<Do>) {
    match todo {
        None | Some(Do::Release) => {}
        Some(Do::AskHandover { deadline }) => {
            let _ = app.emit("handover", ());
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
                let todo = lock(&state(&app).machine).tick(Instant::now());
                run(&app, todo);
            });
        }
        Some(Do::Replace(note)) => replace(app, note),
    }
}

/// Each replacement is a new document (a unique query), as each panic is.
static REPLACED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn replace(app: &AppHandle, note: Note) {
    // A locked app shows the lock page, which a panic or a lock put in a fresh process already.
    if app.state::<AppState>().engine.lock_status().locked {
        lock(&state(app).carried).take();
        // Its lock page renders no event.
        lock(&state(app).held).take();
        return;
    }
    let Some(w) = app.get_webview_window(LABEL) else {
        return;
    };
    let n = REPLACED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let page = format!("index.html?screen=main&ended={}&n={n}", note.as_str());
    if let Some(url) = w.url().ok().and_then(|u| u.join(&page).ok()) {
        crate::panic::relaunch_page(&w, url, false);
        tracing::info!(
            note = note.as_str(),
            "the page that showed the ended chats was replaced"
        );
    }
}

/// The page answered the handover; an answer nobody asked for is dropped.
#[tauri::command]
pub fn hand_over(app: AppHandle, mut carried: Carried) {
    let app = &app;
    if !PANES.contains(&carried.pane.as_str()) {
        carried.pane = PANES[0].to_string();
    }
    let todo = lock(&state(app).machine).handed_over();
    if todo.is_some() {
        *lock(&state(app).carried) = Some(carried);
    }
    run(app, todo);
}

/// What the page this one replaced handed over, and the events held since, once; from now on
/// events go to this page live.
#[tauri::command]
pub fn take_over(app: AppHandle) -> TakeOver {
    let s = state(&app);
    let events = lock(&s.held)
        .take()
        .map(|h| h.events.into())
        .unwrap_or_default();
    TakeOver {
        carried: lock(&s.carried).take(),
        events,
    }
}

/// A panic or a lock replaced the page, or the app quits (`quitting`): nothing is handed over.
pub fn replaced(app: &AppHandle, quitting: bool) {
    let Some(s) = app.try_state::<PageWipe>() else {
        return;
    };
    let mut machine = lock(&s.machine);
    machine.replaced();
    if quitting {
        machine.quit();
    }
    lock(&s.carried).take();
    lock(&s.held).take();
}
