//! What each system's signals mean.

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

#[test]
fn windows_this_sessions_lock_and_suspend_only() {
    assert_eq!(windows_meaning(0x02B1, 0x7), Some(OsSignal::ScreenLocked));
    assert_eq!(windows_meaning(0x02B1, 0x8), None, "unlock");
    assert_eq!(
        windows_meaning(0x02B1, 0x3),
        None,
        "a remote session connecting"
    );
    assert_eq!(windows_meaning(0x0218, 0x4), Some(OsSignal::Suspending));
    assert_eq!(windows_meaning(0x0218, 0x7), None, "resuming");
    assert_eq!(windows_meaning(0x0218, 0x12), None, "resumed automatically");
    assert_eq!(windows_meaning(0x0010, 0x7), None, "another message");
}

#[test]
fn macos_screen_lock_and_sleep_only() {
    assert_eq!(
        macos_meaning("com.apple.screenIsLocked"),
        Some(OsSignal::ScreenLocked)
    );
    assert_eq!(macos_meaning("com.apple.screenIsUnlocked"), None);
    assert_eq!(
        macos_meaning("NSWorkspaceWillSleepNotification"),
        Some(OsSignal::Suspending)
    );
    assert_eq!(macos_meaning("NSWorkspaceDidWakeNotification"), None);
}
