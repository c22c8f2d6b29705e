//! The driver of `residue.rs`: engine events go in; the page is asked to hand over what the user
//! was in the middle of (`handover` event, answered by the `hand_over` command), then replaced by
//! a fresh page in a new web process (`panic::relaunch_page`), which takes the handover back
//! (`take_over`). Panic, the automatic locks and quitting tell the machine they replaced or ended
//! the page themselves.

use std::sync::Mutex;
use std::time::Instant;

use anonchat_client::Event;
use anonchat_proto::frames::SecretText;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager};

use crate::residue::{Do, Note, Residue};
use crate::window::LABEL;
use crate::AppState;

/// What a page carries into the one that replaces it: the notes (chat-like text: zeroized when
/// dropped, never logged) and the pane the user was on.
#[derive(Default, Serialize, Deserialize)]
pub struct Carried {
    notes: SecretText,
    pane: String,
}

/// The panes a page may ask to come back to (anything else: the contacts' welcome pane).
const PANES: [&str; 3] = ["welcome", "notes", "settings"];

#[derive(Default)]
pub struct PageWipe {
    machine: Mutex<Residue>,
    carried: Mutex<Option<Carried>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding it left plain data behind: go on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn state(app: &AppHandle) -> &PageWipe {
    app.state::<PageWipe>().inner()
}

/// An engine event, after the page got it.
pub fn on_event(app: &AppHandle, ev: &Event) {
    let todo = lock(&state(app).machine).event(ev, Instant::now());
    run(app, todo);
}

fn run(app: &AppHandle, todo: Option<Do>) {
    match todo {
        None => {}
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

/// What the page this one replaced handed over, once.
#[tauri::command]
pub fn take_over(app: AppHandle) -> Option<Carried> {
    lock(&state(&app).carried).take()
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
}
