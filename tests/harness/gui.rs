//! The real desktop app in real WebKit: an Xvfb display, `tauri-driver` (which runs WebKitWebDriver,
//! which starts the app), and a WebDriver session through `fantoccini`. Split by what each part
//! drives: the X display and its input (`display`), the app as a page object (`app`), its
//! processes and memory dumps (`memory`), the tray menu (`tray`), notifications (`notify`),
//! screenshots (`shot`), a system bus with logind on it (`logind`), the accessibility tree and the app run without WebDriver (`atspi`), and the named questions tests ask about the page (`page`).

use std::time::Duration;

mod app;
mod atspi;
mod display;
mod keys;
mod logind;
mod memory;
mod monitor;
mod notify;
pub mod page;
mod shot;
mod tray;

pub use app::Desktop;
pub use atspi::{
    controls, list_reaches, press, wait_for, wait_for_focus, wait_for_length, Control, PlainApp,
};
pub use display::{Display, KillOnDrop};
pub use keys::{every_control_reachable, tab_to};
pub use logind::{Logind, OTHER_SESSION, OWN_SESSION};
pub use memory::{
    app_pid, burner_pids, canaries_by_process, children, count_in_memory, processes_of,
    scrubbing_gaps, web_process_replaced, web_processes,
};
pub use notify::NotifyMonitor;
pub use tray::tray_click;

pub const WAIT: Duration = Duration::from_secs(20);

/// GUI tests take turns: each drives a WebKit app and its own display, and all share the one
/// session bus (tray, notifications, keychain) of the test run.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// What most desktop tests start from: a real server, a display, a home folder for the profiles,
/// `bob` (a CLI peer, registered and connected) with his name, and a notification daemon on the
/// session bus — bind it to a name (`_notifications`, not `_`), or it stops at once.
pub async fn stage(
    tag: &str,
) -> (
    crate::server::Server,
    Display,
    crate::TempDir,
    crate::cli::Cli,
    String,
    KillOnDrop,
) {
    let server = crate::server::Server::start().await;
    let display = Display::start();
    let notifications = display.notification_daemon();
    let home = crate::TempDir::new(tag);
    let bob_name = crate::unique("bob");
    let mut bob = crate::cli::Cli::start(&crate::unique("pb"), &home.0, &server.url()).await;
    bob.register(&bob_name).await;
    bob.connect().await;
    (server, display, home, bob, bob_name, notifications)
}
