//! Panic (P6): from the global shortcut, the tray or the button. The window is hidden and the webview
//! replaced by a fresh, blank lock screen at once; every session ends with `bye` and its state is
//! zeroized in the engine. Works the same while the window is hidden. The idle timeout and the
//! OS's lock and sleep take the same path (`lock`), without hiding the window.

use std::time::Instant;

use tauri::{AppHandle, Emitter, Manager};

use crate::idle::Why;
use crate::window::LABEL;
use crate::AppState;

/// Each panic loads the lock screen as a new document (a unique query, so never a same-document
/// hash change), so nothing of the chat survives in the page.
static PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The setting "panic also quits the app".
pub const QUITS: &str = "panic_quits";
/// The setting "panic also revokes this device".
pub const REVOKES: &str = "panic_revokes";
/// How long a panic that revokes waits for the server before it erases the keys anyway.
const REVOKE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn run(app: &AppHandle) -> std::time::Duration {
    let engine = app.state::<AppState>().engine.clone();
    let quits = engine.ui_setting(QUITS).as_deref() == Some("true");
    let revokes = engine.ui_setting(REVOKES).as_deref() == Some("true");
    let took = wipe(app, None, quits).await;
    // For the test and the bench: the moment the engine's chat state is gone (no content).
    let _ = app.emit("panic_done", took.as_micros() as u64);
    tracing::info!(micros = took.as_micros() as u64, "panic wipe done");
    if revokes {
        // After the wipe, so P6's bound holds; the keys are erased even if the server is away.
        match engine.retire_this_device(REVOKE_WAIT).await {
            Ok(r) => tracing::info!(
                account_deleted = r.account_deleted,
                server_told = r.server_told,
                "panic revoked this device"
            ),
            Err(e) => tracing::warn!(error = %e, "panic could not revoke this device"),
        }
    }
    if quits {
        // Everything is wiped already; the exit ends WebKit's processes with the app.
        app.exit(0);
    }
    took
}

/// The same wipe when the app decided it (idle, the OS locked or sleeps): the window stays where
/// it is, showing the lock page that says why.
pub async fn lock(app: &AppHandle, why: Why) {
    let took = wipe(app, Some(why), false).await;
    tracing::info!(
        micros = took.as_micros() as u64,
        why = why.as_str(),
        "automatic wipe done"
    );
}

/// `quitting`: the page's process ends and no new one starts (one started now would outlive the
/// app's exit).
async fn wipe(app: &AppHandle, why: Option<Why>, quitting: bool) -> std::time::Duration {
    let t0 = Instant::now();
    crate::page_wipe::replaced(app, quitting);
    if let Some(w) = app.get_webview_window(LABEL) {
        if why.is_none() {
            let _ = w.hide();
        }
        let n = PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let locked = match why {
            None => format!("index.html?locked={n}"),
            Some(why) => format!("index.html?locked={n}&why={}", why.as_str()),
        };
        if let Some(url) = w.url().ok().and_then(|u| u.join(&locked).ok()) {
            relaunch_page(&w, url, quitting);
        }
    }
    let engine = app.state::<AppState>().engine.clone();
    engine.panic().await;
    t0.elapsed()
}

/// The page's process saw every chat (the DOM, the JS heap, WebKit's caches): it is ended, not
/// only navigated away from, and the lock page loads in a fresh one, so no copy of a chat stays in
/// any of the app's processes. Both steps run in one go on the main thread, so the load cannot
/// race the termination.
pub fn relaunch_page(w: &tauri::WebviewWindow, url: tauri::Url, quitting: bool) {
    #[cfg(not(target_os = "linux"))]
    let _ = quitting;
    #[cfg(target_os = "linux")]
    if !crate::window::automated() {
        let uri = url.to_string();
        let done = w.with_webview(move |view| {
            use webkit2gtk::WebViewExt;
            let view = view.inner();
            view.terminate_web_process();
            if !quitting {
                view.load_uri(&uri);
            }
        });
        if done.is_ok() {
            return;
        }
    }
    // Under WebDriver, elsewhere, and if the main thread is gone: a new document in the same
    // process (the engine's state is wiped all the same).
    let _ = w.navigate(url);
}

/// Fire-and-forget from handlers that cannot wait.
pub fn spawn(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        run(&app).await;
    });
}
