//! Panic (P6): from the global shortcut, the tray or the button. The window is hidden and the webview
//! replaced by a fresh, blank lock screen at once; every session ends with `bye` and its state is
//! zeroized in the engine. Works the same while the window is hidden.

use std::time::Instant;

use tauri::{AppHandle, Emitter, Manager};

use crate::window::LABEL;
use crate::AppState;

/// The lock screen: a new document, so nothing of the chat survives in the page.
const LOCKED: &str = "index.html#locked";

pub async fn run(app: &AppHandle) -> std::time::Duration {
    let t0 = Instant::now();
    if let Some(w) = app.get_webview_window(LABEL) {
        let _ = w.hide();
        if let Some(url) = w.url().ok().and_then(|u| u.join(LOCKED).ok()) {
            let _ = w.navigate(url);
        }
    }
    let engine = app.state::<AppState>().engine.clone();
    engine.panic().await;
    let took = t0.elapsed();
    // For the test and the bench: the moment the engine's chat state is gone (no content).
    let _ = app.emit("panic_done", took.as_micros() as u64);
    tracing::info!(micros = took.as_micros() as u64, "panic wipe done");
    took
}

/// Fire-and-forget from handlers that cannot wait.
pub fn spawn(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        run(&app).await;
    });
}
