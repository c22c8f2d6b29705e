//! The one window: incognito webview (nothing of it on disk), content protection where the OS has it,
//! and closing hides it to the tray instead of quitting.

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder, WindowEvent};

use crate::AppState;

pub const LABEL: &str = "main";

pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let state = app.state::<AppState>();
    let profile = state.profile.clone();
    // Off only where the user turned it off (Settings → Screenshots); a no-op where the OS has none.
    let capture = state.engine.capture();
    let protect = !capture.available || capture.on;
    let automated = automated();
    // The page shows this screen before its scripts ran (ui/boot.js); they check it again.
    let screen = if state.engine.lock_status().locked {
        "lock"
    } else if state.engine.username().is_some() {
        "main"
    } else {
        "onboard"
    };
    let url = WebviewUrl::App(format!("index.html?screen={screen}").into());
    // Built hidden and shown once its web view exists. Mapped first and given the web view
    // after, WebKitGTK drew nothing until a ~500 ms timer fired in most starts (first paint
    // ~800 ms instead of ~300 in the desktop bench).
    let window = WebviewWindowBuilder::new(app, LABEL, url)
        .visible(false)
        .title(format!("AnonChat — {profile}"))
        .inner_size(900.0, 640.0)
        .min_inner_size(360.0, 420.0)
        .incognito(!automated)
        .content_protected(protect)
        .build()?;
    window.show()?;
    #[cfg(target_os = "linux")]
    load_again_after_a_crash(&window);
    let hide = window.clone();
    window.on_window_event(move |event| {
        if let WindowEvent::CloseRequested { api, .. } = event {
            api.prevent_close();
            let _ = hide.hide();
        }
    });
    Ok(())
}

/// WebKit's web process crashing leaves the window blank for good: WebKitGTK starts no other one
/// until something loads (seen in the desktop bench: a segfault inside WebKit after the lock
/// page's Continue, then a blank window). The same page loads again in a fresh process — the
/// engine kept its state, the page asks for it. Chats open then end (their peers are told): the
/// new page could not show them, and one running on unseen could not be left either. Our own
/// ending of the process (panic, a page replaced) is no crash. Not again within a few seconds, so
/// a page that crashes at once is not reloaded in a loop.
#[cfg(target_os = "linux")]
fn load_again_after_a_crash(window: &tauri::WebviewWindow) {
    let app = window.app_handle().clone();
    let _ = window.with_webview(move |view| {
        use webkit2gtk::{WebProcessTerminationReason as Reason, WebViewExt};
        let last = std::cell::Cell::new(None::<std::time::Instant>);
        view.inner()
            .connect_web_process_terminated(move |view, reason| {
                if reason == Reason::TerminatedByApi {
                    return;
                }
                let engine = app.state::<crate::AppState>().engine.clone();
                tauri::async_runtime::spawn(async move { engine.hang_up().await });
                let now = std::time::Instant::now();
                if last
                    .get()
                    .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(5))
                {
                    tracing::warn!(?reason, "WebKit's web process ended again: not reloaded");
                    return;
                }
                last.set(Some(now));
                if let Some(uri) = view.uri() {
                    tracing::warn!(?reason, "WebKit's web process ended: the page loads again");
                    view.load_uri(&uri);
                }
            });
    });
}

/// Whether WebDriver drives this run (tauri-driver sets the variable). WebDriver cannot open a
/// browsing context in an incognito webview, nor follow the page into a new web process; every
/// other run is incognito and ends the web process on panic. A release build ignores the
/// variable: anyone who can set an environment variable must not be able to weaken either.
pub fn automated() -> bool {
    cfg!(debug_assertions) && std::env::var("TAURI_WEBVIEW_AUTOMATION").is_ok_and(|v| v == "true")
}

/// Brings the window back from the tray.
pub fn show(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(LABEL) {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// Whether the user is looking at the window (notifications are for when they are not).
pub fn in_front(app: &AppHandle) -> bool {
    app.get_webview_window(LABEL)
        .is_some_and(|w| w.is_visible().unwrap_or(false) && w.is_focused().unwrap_or(false))
}
