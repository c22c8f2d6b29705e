//! The tray icon: Show, Panic, Quit. The app lives here when its window is closed.

use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::AppHandle;

pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, "show", "Show AnonChat", true, None::<&str>)?;
    let panic = MenuItem::with_id(app, "panic", "Panic: wipe all chats", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit (wipes all chats)", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &panic, &quit])?;
    let mut tray = TrayIconBuilder::with_id("main")
        .tooltip("AnonChat")
        .menu(&menu)
        .on_menu_event(|app, event| on_menu(app, event.id.as_ref()));
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

/// A tray menu choice, by item id.
pub fn on_menu(app: &AppHandle, id: &str) {
    match id {
        "show" => crate::window::show(app),
        "panic" => crate::panic::spawn(app),
        // `exit` runs the app's exit handler, which wipes every chat first.
        "quit" => app.exit(0),
        _ => {}
    }
}
