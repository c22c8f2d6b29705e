//! The driver of `idle.rs`: the page reports the user's input, a ticker asks the machine whether
//! the timeout ran out, the OS's lock and sleep signals come from `oslock.rs`, and each "wipe"
//! the machine decides runs the panic path without hiding the window (`panic::lock`). The
//! settings live in the encrypted profile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tauri::{AppHandle, Manager};

use crate::idle::{AutoLock, Idle};
use crate::{lock, AppState};

const SETTING: &str = "auto_lock";
/// How often the timeout is looked at: a lock is at most this late.
const TICK: Duration = Duration::from_millis(250);

pub struct AutoLockState(Arc<Mutex<Idle>>);

fn saved(app: &AppHandle) -> AutoLock {
    app.state::<AppState>()
        .engine
        .ui_setting(SETTING)
        .and_then(|v| serde_json::from_str::<AutoLock>(&v).ok())
        .and_then(|s| s.checked().ok())
        .unwrap_or_default()
}

pub fn start(app: &AppHandle) {
    let idle = Arc::new(Mutex::new(Idle::new(saved(app), Instant::now())));
    app.manage(AutoLockState(idle.clone()));
    let ticker = (app.clone(), idle.clone());
    tauri::async_runtime::spawn(async move {
        let (app, idle) = ticker;
        let mut every = tokio::time::interval(TICK);
        loop {
            every.tick().await;
            let due = lock(&idle).tick(Instant::now());
            if let Some(why) = due {
                crate::panic::lock(&app, why).await;
            }
        }
    });
    let on_os = app.clone();
    crate::oslock::watch(Arc::new(move |signal| {
        let why = lock(&idle).os(signal);
        if let Some(why) = why {
            let app = on_os.clone();
            tauri::async_runtime::spawn(async move {
                crate::panic::lock(&app, why).await;
            });
        }
    }));
}

/// The saved settings again: a profile sealed under its passcode has none until it is unlocked.
pub fn reload(app: &AppHandle) {
    let settings = saved(app);
    lock(&app.state::<AutoLockState>().0).set(settings, Instant::now());
}

/// The user did something in the window (the page reports keys, clicks and pointer moves).
pub fn input(app: &AppHandle) {
    lock(&app.state::<AutoLockState>().0).input(Instant::now());
}

pub fn current(app: &AppHandle) -> AutoLock {
    lock(&app.state::<AutoLockState>().0).settings()
}

pub async fn change(app: &AppHandle, settings: AutoLock) -> Result<(), String> {
    let settings = settings.checked()?;
    let json = serde_json::to_string(&settings).map_err(|e| e.to_string())?;
    app.state::<AppState>()
        .engine
        .set_ui_setting(SETTING, &json)
        .await
        .map_err(|e| e.to_string())?;
    lock(&app.state::<AutoLockState>().0).set(settings, Instant::now());
    Ok(())
}
