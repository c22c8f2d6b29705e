//! Copying a contact link or a code: it leaves the clipboard again after a while, unless the user
//! copied something else meanwhile (that is theirs, and stays).

use std::time::Duration;

use tauri::AppHandle;
use zeroize::Zeroizing;

/// How long a copied code or link stays on the clipboard.
pub const KEEP: Duration = Duration::from_secs(30);

fn keep() -> Duration {
    // Debug builds only, for the test: a release build cannot be told to keep it longer.
    let asked = cfg!(debug_assertions)
        .then(|| std::env::var("ANONCHAT_TEST_CLIPBOARD_SECONDS").ok())
        .flatten()
        .and_then(|s| s.parse::<u64>().ok());
    asked.map(Duration::from_secs).unwrap_or(KEEP)
}

/// Puts `text` on the clipboard and takes it off again after [`KEEP`].
pub fn copy(app: &AppHandle, text: String) -> Result<Duration, String> {
    let text = Zeroizing::new(text);
    let put = text.clone();
    app.run_on_main_thread(move || set(&put))
        .map_err(|e| e.to_string())?;
    let after = keep();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = app.run_on_main_thread(move || clear_if(&text));
    });
    Ok(after)
}

#[cfg(target_os = "linux")]
fn clipboard() -> gtk::Clipboard {
    gtk::Clipboard::get(&gtk::gdk::SELECTION_CLIPBOARD)
}

#[cfg(target_os = "linux")]
fn set(text: &str) {
    clipboard().set_text(text);
}

#[cfg(target_os = "linux")]
fn clear_if(text: &str) {
    let cb = clipboard();
    // We own it while it holds our text, so this answers at once.
    if cb.wait_for_text().is_some_and(|now| now.as_str() == text) {
        cb.clear();
        cb.set_text("");
    }
}

#[cfg(not(target_os = "linux"))]
fn set(_text: &str) {}

#[cfg(not(target_os = "linux"))]
fn clear_if(_text: &str) {}
