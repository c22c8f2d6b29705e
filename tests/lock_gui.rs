//! Wipes the user did not have to ask for (issue 17): the desktop app in real WebKit with a real
//! server and a real CLI peer. With a short idle timeout an open chat ends (the peer is told) and
//! the window shows a fresh lock page saying why; a real screen locker on the test display
//! (gnome-screensaver, over the session bus) does the same, and with that setting off it does not.
//! The ephemeral notes go with the lock. logind's `Session.Lock` for the app's own session and
//! `PrepareForSleep(true)` on the system bus do it too (logind on a bus of the test's own: there is
//! no systemd here), each behind its setting; another session's lock and the wake-up do not.

use std::time::{Duration, Instant};

use anonchat_e2e::cli::Cli;
use anonchat_e2e::gui::{one_at_a_time, page, stage, Desktop, Logind, OTHER_SESSION, OWN_SESSION};
use anonchat_e2e::unique;
use serde_json::{json, Value};

/// bob rings, the app answers, bob's line shows; returns the session and when the user last
/// touched the app (the click on Answer).
async fn open_chat(app: &Desktop, bob: &mut Cli, app_name: &str) -> (Value, Instant) {
    let ring = bob.ok(json!({"cmd": "ring", "username": app_name})).await;
    app.wait(page::ring_dialog()).await;
    app.click("#ring-answer").await;
    let touched = Instant::now();
    bob.expect_event("session_open").await;
    bob.ok(json!({"cmd": "send", "session": ring["ring_id"], "text": "hello there"}))
        .await;
    app.wait(page::peer_line()).await;
    (ring["ring_id"].clone(), touched)
}

async fn ended_by_the_app(bob: &mut Cli, session: &Value) {
    let ended = bob.expect_event("session_ended").await;
    assert_eq!(ended["session"], *session);
    assert_eq!(ended["reason"], "peer_left", "the app said bye: {ended}");
}

fn settings(idle_seconds: u32, on_screen_lock: bool) -> Value {
    json!({"settings": {"idle_seconds": idle_seconds, "on_screen_lock": on_screen_lock, "on_suspend": true}})
}

/// bob's next line reaches the app's page, which still shows the chat (nothing ended it).
async fn still_open(app: &Desktop, bob: &mut Cli, session: &Value, text: &str) {
    bob.ok(json!({"cmd": "send", "session": session, "text": text}))
        .await;
    app.wait(page::text_has("messages", text) & page::screen("main"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_the_screen_lock_end_chats_and_lock_the_window() {
    let _turn = one_at_a_time().await;
    let (server, display, home, mut bob, bob_name, _notifications) = stage("lock-gui").await;
    let app_name = unique("desk");
    let app = Desktop::start(&display, &home.0, &unique("pl"), &server.url()).await;
    app.onboard(&app_name).await;
    app.befriend(&app_name, &mut bob, &bob_name).await;

    // On by default: 10 minutes, and on the OS's lock and sleep; the settings say so.
    app.click("#nav-settings").await;
    app.wait(
        page::pane("settings")
            & page::checked("set-lock-screen")
            & page::checked("set-lock-suspend"),
    )
    .await;
    assert_eq!(
        app.shell("auto_lock", json!({})).await,
        Ok(json!({"idle_seconds": 600, "on_screen_lock": true, "on_suspend": true}))
    );
    assert_eq!(
        app.text("#set-idle option:checked").await,
        "After 10 minutes"
    );
    app.shot("settings-lock").await;
    // A timeout out of range is refused with a clear error and changes nothing.
    let bad = app.shell("set_auto_lock", settings(1, true)).await;
    assert_eq!(
        bad.as_ref().map_err(|e| e["code"].clone()),
        Err(json!("bad_input")),
        "{bad:?}"
    );
    assert_eq!(
        app.shell("auto_lock", json!({}))
            .await
            .map(|v| v["idle_seconds"].clone()),
        Ok(json!(600))
    );

    // Idle: 3 s without input end the chat and lock the window (it stays shown).
    app.shell("set_auto_lock", settings(3, true))
        .await
        .expect("saved");
    let (session, touched) = open_chat(&app, &mut bob, &app_name).await;
    ended_by_the_app(&mut bob, &session).await;
    let after = touched.elapsed();
    println!("the idle wipe came {after:?} after the last input");
    // Input reports are at most one a second, so the last one counted may be up to 1 s older.
    assert!(
        after >= Duration::from_secs(2),
        "not before the timeout: {after:?}"
    );
    app.wait(
        page::fresh_lock_page_without("hello there")
            & page::text_has("lock-why", "without activity")
            & page::window_visible(),
    )
    .await;
    app.shot("locked-idle").await;

    // The screen locks: the same, whatever the idle timeout.
    app.click("#unlock").await;
    app.wait(page::screen("main")).await;
    app.click("#nav-notes").await;
    app.wait(page::pane("notes") & page::value_is("notes-text", ""))
        .await;
    app.shell("set_auto_lock", settings(0, true))
        .await
        .expect("saved");
    let locker = display.screen_locker();
    let (session, _) = open_chat(&app, &mut bob, &app_name).await;
    display.lock_screen();
    ended_by_the_app(&mut bob, &session).await;
    app.wait(
        page::fresh_lock_page_without("hello there") & page::text_has("lock-why", "screen locked"),
    )
    .await;
    drop(locker);

    // With that setting off, the screen locking leaves the chat open.
    app.click("#unlock").await;
    app.wait(page::screen("main")).await;
    app.shell("set_auto_lock", settings(0, false))
        .await
        .expect("saved");
    let locker = display.screen_locker();
    let (session, _) = open_chat(&app, &mut bob, &app_name).await;
    display.lock_screen();
    still_open(&app, &mut bob, &session, "still here").await;
    drop(locker);
    app.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logind_lock_and_sleep_end_chats_for_this_session_only() {
    let _turn = one_at_a_time().await;
    let (server, display, home, mut bob, bob_name, _notifications) = stage("logind-gui").await;
    let logind = Logind::start().await;
    let app_name = unique("desk");
    let app = Desktop::start_with_env(
        &display,
        &home.0,
        &unique("pl"),
        &server.url(),
        &[("DBUS_SYSTEM_BUS_ADDRESS", &logind.address)],
    )
    .await;
    logind.wait_for_a_listener();
    app.onboard(&app_name).await;
    app.befriend(&app_name, &mut bob, &bob_name).await;
    app.shell("set_auto_lock", settings(0, true))
        .await
        .expect("saved");

    // Another user's session locking, and the machine waking up, leave the chat open.
    let (session, _) = open_chat(&app, &mut bob, &app_name).await;
    logind.lock(OTHER_SESSION).await;
    logind.prepare_for_sleep(false).await;
    still_open(&app, &mut bob, &session, "still here").await;
    // This session locking ends it.
    logind.lock(OWN_SESSION).await;
    ended_by_the_app(&mut bob, &session).await;
    app.wait(
        page::fresh_lock_page_without("hello there") & page::text_has("lock-why", "screen locked"),
    )
    .await;

    // The machine about to sleep ends the next one.
    app.click("#unlock").await;
    app.wait(page::screen("main")).await;
    let (session, _) = open_chat(&app, &mut bob, &app_name).await;
    logind.prepare_for_sleep(true).await;
    ended_by_the_app(&mut bob, &session).await;
    app.wait(
        page::fresh_lock_page_without("hello there") & page::text_has("lock-why", "went to sleep"),
    )
    .await;

    // With both settings off, neither does.
    app.click("#unlock").await;
    app.wait(page::screen("main")).await;
    app.shell(
        "set_auto_lock",
        json!({"settings": {"idle_seconds": 0, "on_screen_lock": false, "on_suspend": false}}),
    )
    .await
    .expect("saved");
    let (session, _) = open_chat(&app, &mut bob, &app_name).await;
    logind.lock(OWN_SESSION).await;
    logind.prepare_for_sleep(true).await;
    still_open(&app, &mut bob, &session, "still here after").await;
    app.close().await;
}
