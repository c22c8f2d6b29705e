//! The OS saying that the screen locks or that the machine is about to sleep. Only listened to:
//! nothing here inhibits the OS's own lock or sleep.
//!
//! Linux: the session screensaver's `ActiveChanged(true)` on the session bus (the freedesktop,
//! GNOME, MATE, Cinnamon and Xfce names of it), logind's `Session.Lock` for this session and
//! `Manager.PrepareForSleep(true)` on the system bus. Windows: `WM_WTSSESSION_CHANGE` with
//! `WTS_SESSION_LOCK` for this session and `WM_POWERBROADCAST` with `PBT_APMSUSPEND`, to a hidden
//! window of our own. macOS: the distributed notification `com.apple.screenIsLocked` and
//! `NSWorkspaceWillSleepNotification`. What each signal means is decided here, the same on every
//! system (and unit-tested on each); the listeners are `oslock/{linux,windows,macos}.rs`.

use std::sync::Arc;

use crate::idle::OsSignal;

pub type OnSignal = Arc<dyn Fn(OsSignal) + Send + Sync>;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(test)]
mod tests;
#[cfg(windows)]
mod windows;

/// The screensaver interfaces whose `ActiveChanged(true)` means the screen locked.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const SCREENSAVERS: [&str; 5] = [
    "org.freedesktop.ScreenSaver",
    "org.gnome.ScreenSaver",
    "org.mate.ScreenSaver",
    "org.cinnamon.ScreenSaver",
    "org.xfce.ScreenSaver",
];

/// Linux: what one D-Bus signal means, if anything: `interface`, `member`, the object `path`, its first
/// boolean argument if it has one, and the path of this process's logind session if known.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn meaning(
    interface: &str,
    member: &str,
    path: &str,
    arg: Option<bool>,
    my_session: Option<&str>,
) -> Option<OsSignal> {
    match (interface, member, arg) {
        (i, "ActiveChanged", Some(true)) if SCREENSAVERS.contains(&i) => {
            Some(OsSignal::ScreenLocked)
        }
        ("org.freedesktop.login1.Manager", "PrepareForSleep", Some(true)) => {
            Some(OsSignal::Suspending)
        }
        ("org.freedesktop.login1.Session", "Lock", _) if my_session == Some(path) => {
            Some(OsSignal::ScreenLocked)
        }
        _ => None,
    }
}

#[cfg(target_os = "linux")]
pub fn watch(on: OnSignal) {
    let session = on.clone();
    tauri::async_runtime::spawn(async move {
        if let Err(e) = linux::session_bus(session).await {
            tracing::info!(error = %e, "no screensaver signals from the session bus");
        }
    });
    tauri::async_runtime::spawn(async move {
        if let Err(e) = linux::system_bus(on).await {
            tracing::info!(error = %e, "no logind signals from the system bus");
        }
    });
}

/// Windows: what one window message means, if anything. The values are the SDK's (checked
/// against `windows-sys` where it is built), so the rule is tested on every system.
#[cfg_attr(not(windows), allow(dead_code))]
pub fn windows_meaning(message: u32, wparam: usize) -> Option<OsSignal> {
    const WM_WTSSESSION_CHANGE: u32 = 0x02B1;
    const WTS_SESSION_LOCK: usize = 0x7;
    const WM_POWERBROADCAST: u32 = 0x0218;
    const PBT_APMSUSPEND: usize = 0x4;
    #[cfg(windows)]
    const _: () = {
        use windows_sys::Win32::UI::WindowsAndMessaging as w;
        assert!(WM_WTSSESSION_CHANGE == w::WM_WTSSESSION_CHANGE);
        assert!(WTS_SESSION_LOCK as u32 == w::WTS_SESSION_LOCK);
        assert!(WM_POWERBROADCAST == w::WM_POWERBROADCAST);
        assert!(PBT_APMSUSPEND as u32 == w::PBT_APMSUSPEND);
    };
    match (message, wparam) {
        (WM_WTSSESSION_CHANGE, WTS_SESSION_LOCK) => Some(OsSignal::ScreenLocked),
        (WM_POWERBROADCAST, PBT_APMSUSPEND) => Some(OsSignal::Suspending),
        _ => None,
    }
}

/// macOS: what one notification (by name) means, if anything.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub fn macos_meaning(name: &str) -> Option<OsSignal> {
    match name {
        "com.apple.screenIsLocked" => Some(OsSignal::ScreenLocked),
        "NSWorkspaceWillSleepNotification" => Some(OsSignal::Suspending),
        _ => None,
    }
}

#[cfg(windows)]
pub fn watch(on: OnSignal) {
    windows::watch(on);
}

#[cfg(target_os = "macos")]
pub fn watch(on: OnSignal) {
    macos::watch(on);
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
pub fn watch(_on: OnSignal) {}
