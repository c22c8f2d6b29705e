//! The global panic shortcut: works while the window is hidden or unfocused. The user can change it;
//! the choice is kept in the encrypted profile.

use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Manager};
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut, ShortcutState};

use crate::AppState;

pub const DEFAULT: &str = "CommandOrControl+Shift+X";
const SETTING: &str = "panic_shortcut";

pub fn plugin() -> TauriPlugin<tauri::Wry> {
    tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if event.state() == ShortcutState::Pressed {
                crate::panic::spawn(app);
            }
        })
        .build()
}

/// The shortcut in use: the saved one, or the default.
pub fn current(app: &AppHandle) -> String {
    app.state::<AppState>()
        .engine
        .ui_setting(SETTING)
        .unwrap_or_else(|| DEFAULT.to_string())
}

pub fn register_saved(app: &AppHandle) {
    let wanted = current(app);
    if let Err(e) = register(app, &wanted) {
        tracing::warn!(error = %e, "could not register the panic shortcut");
    }
}

/// The saved shortcut again, in place of the one registered: a profile sealed under its passcode
/// has its settings only once it is unlocked.
pub fn reload(app: &AppHandle) {
    let _ = app.global_shortcut().unregister_all();
    register_saved(app);
}

fn register(app: &AppHandle, accel: &str) -> Result<(), String> {
    let shortcut: Shortcut = accel.parse().map_err(|e| format!("not a shortcut: {e}"))?;
    app.global_shortcut()
        .register(shortcut)
        .map_err(|e| e.to_string())
}

/// Replaces the panic shortcut; the old one stays if the new one cannot be registered.
pub async fn change(app: &AppHandle, accel: &str) -> Result<(), String> {
    let old = current(app);
    let gs = app.global_shortcut();
    if let Ok(s) = old.parse::<Shortcut>() {
        let _ = gs.unregister(s);
    }
    if let Err(e) = register(app, accel) {
        let _ = register(app, &old);
        return Err(e);
    }
    app.state::<AppState>()
        .engine
        .set_ui_setting(SETTING, accel)
        .await
        .map_err(|e| e.to_string())
}
