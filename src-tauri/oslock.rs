//! The OS saying that the screen locks or that the machine is about to sleep. Only listened to:
//! nothing here inhibits the OS's own lock or sleep.
//!
//! Linux: the session screensaver's `ActiveChanged(true)` on the session bus (the freedesktop,
//! GNOME, MATE, Cinnamon and Xfce names of it), logind's `Session.Lock` for this session and
//! `Manager.PrepareForSleep(true)` on the system bus. Windows (`WTS_SESSION_LOCK`,
//! `WM_POWERBROADCAST`) and macOS (`com.apple.screenIsLocked`, `NSWorkspaceWillSleepNotification`)
//! are not built yet: there only the idle timeout locks.

use std::sync::Arc;

use crate::idle::OsSignal;

pub type OnSignal = Arc<dyn Fn(OsSignal) + Send + Sync>;

/// The screensaver interfaces whose `ActiveChanged(true)` means the screen locked.
const SCREENSAVERS: [&str; 5] = [
    "org.freedesktop.ScreenSaver",
    "org.gnome.ScreenSaver",
    "org.mate.ScreenSaver",
    "org.cinnamon.ScreenSaver",
    "org.xfce.ScreenSaver",
];

/// What one D-Bus signal means, if anything: `interface`, `member`, the object `path`, its first
/// boolean argument if it has one, and the path of this process's logind session if known.
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

#[cfg(not(target_os = "linux"))]
pub fn watch(_on: OnSignal) {}

#[cfg(target_os = "linux")]
mod linux {
    use futures_util::StreamExt;
    use zbus::{Connection, MessageStream};

    use super::{meaning, OnSignal};

    async fn listen(
        conn: &Connection,
        rule: &str,
        my_session: Option<String>,
        on: OnSignal,
    ) -> zbus::Result<()> {
        let mut stream = MessageStream::for_match_rule(rule, conn, Some(16)).await?;
        while let Some(msg) = stream.next().await {
            let Ok(msg) = msg else { continue };
            let header = msg.header();
            let (Some(interface), Some(member), Some(path)) =
                (header.interface(), header.member(), header.path())
            else {
                continue;
            };
            let arg = msg.body().deserialize::<bool>().ok();
            if let Some(signal) = meaning(
                interface.as_str(),
                member.as_str(),
                path.as_str(),
                arg,
                my_session.as_deref(),
            ) {
                on(signal);
            }
        }
        Ok(())
    }

    pub async fn session_bus(on: OnSignal) -> zbus::Result<()> {
        let conn = Connection::session().await?;
        listen(&conn, "type='signal',member='ActiveChanged'", None, on).await
    }

    pub async fn system_bus(on: OnSignal) -> zbus::Result<()> {
        let conn = Connection::system().await?;
        // This process's session, so another user's lock does not end our chats.
        let my_session = conn
            .call_method(
                Some("org.freedesktop.login1"),
                "/org/freedesktop/login1",
                Some("org.freedesktop.login1.Manager"),
                "GetSessionByPID",
                &(std::process::id()),
            )
            .await
            .ok()
            .and_then(|r| {
                r.body()
                    .deserialize::<zbus::zvariant::OwnedObjectPath>()
                    .ok()
            })
            .map(|p| p.as_str().to_string());
        listen(
            &conn,
            "type='signal',sender='org.freedesktop.login1'",
            my_session,
            on,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screensavers_locking_mean_the_screen_locked_and_unlocking_means_nothing() {
        for i in SCREENSAVERS {
            assert_eq!(
                meaning(i, "ActiveChanged", "/", Some(true), None),
                Some(OsSignal::ScreenLocked)
            );
            assert_eq!(meaning(i, "ActiveChanged", "/", Some(false), None), None);
        }
        assert_eq!(
            meaning("org.example.Player", "ActiveChanged", "/", Some(true), None),
            None
        );
    }

    #[test]
    fn logind_sleep_and_our_own_sessions_lock_only() {
        let m = "org.freedesktop.login1.Manager";
        let s = "org.freedesktop.login1.Session";
        let mine = "/org/freedesktop/login1/session/_32";
        assert_eq!(
            meaning(
                m,
                "PrepareForSleep",
                "/org/freedesktop/login1",
                Some(true),
                None
            ),
            Some(OsSignal::Suspending)
        );
        assert_eq!(
            meaning(
                m,
                "PrepareForSleep",
                "/org/freedesktop/login1",
                Some(false),
                None
            ),
            None,
            "waking up"
        );
        assert_eq!(
            meaning(s, "Lock", mine, None, Some(mine)),
            Some(OsSignal::ScreenLocked)
        );
        assert_eq!(
            meaning(
                s,
                "Lock",
                "/org/freedesktop/login1/session/_33",
                None,
                Some(mine)
            ),
            None,
            "another session"
        );
        assert_eq!(meaning(s, "Lock", mine, None, None), None, "ours unknown");
    }
}
