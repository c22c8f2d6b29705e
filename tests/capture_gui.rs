//! Capture protection where the system has it (issue 17 item 5), in real WebKit against a real
//! server and a real CLI peer: the setting in Settings, and the unprotected banner following the
//! peer's `hello` mid-chat.

use anonchat_e2e::cli::Cli;
use anonchat_e2e::gui::{one_at_a_time, page, Desktop, Display};
use anonchat_e2e::server::Server;
use anonchat_e2e::{unique, TempDir};
use serde_json::json;

/// Capture protection where the system has it (issue 17 item 5; a debug-build switch stands in for
/// Windows, whose window API is a no-op here): Settings shows it on; a peer turning its own off
/// mid-chat brings up the unprotected banner, and turning it back on takes it away; turning the
/// app's off in Settings tells the peer in the open chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_protection_is_a_setting_and_the_banner_follows_the_peer() {
    let _turn = one_at_a_time().await;
    let server = Server::start().await;
    let display = Display::start();
    let home = TempDir::new("gui-capture");
    let (app_name, bob_name) = (unique("cap"), unique("bob"));
    let protected = [("ANONCHAT_TEST_SCREEN_PROTECTION", "1")];
    let mut bob = Cli::start_with_env(&unique("pb"), &home.0, &server.url(), &protected).await;
    bob.register(&bob_name).await;
    bob.connect().await;
    let app =
        Desktop::start_with_env(&display, &home.0, &unique("pm"), &server.url(), &protected).await;
    app.onboard(&app_name).await;
    app.befriend(&app_name, &mut bob, &bob_name).await;
    app.click("#nav-settings").await;
    app.wait(page::pane("settings") & page::shown("capture-box") & page::checked("set-capture"))
        .await;

    // Both claim protection: no banner on either side.
    let ring = bob.ok(json!({"cmd": "ring", "username": app_name})).await;
    let session = ring["ring_id"].as_str().expect("ring id").to_string();
    app.wait(page::ring_dialog()).await;
    app.click("#ring-answer").await;
    let open = bob.expect_event("session_open").await;
    assert_eq!(open["peer_unprotected"], false, "{open}");
    app.wait(page::pane("chat") & page::hidden("chat-unprotected"))
        .await;
    bob.ok(json!({"cmd": "set_capture_protection", "on": false}))
        .await;
    app.wait(page::shown("chat-unprotected")).await;
    bob.ok(json!({"cmd": "set_capture_protection", "on": true}))
        .await;
    app.wait(page::hidden("chat-unprotected")).await;

    // The app's own, turned off in Settings: bob is told in the chat that is open.
    app.click("#nav-settings").await;
    app.wait(page::pane("settings")).await;
    app.click("#set-capture").await;
    let s = session.clone();
    bob.expect("told the app's window is unprotected", move |v| {
        v["event"] == "peer_caps" && v["session"] == s.as_str() && v["peer_unprotected"] == true
    })
    .await;
    app.wait(page::text_has("capture-note", "Off:")).await;
    let capture = app
        .engine(json!({"cmd": "capture"}))
        .await
        .expect("capture");
    assert_eq!(capture["on"], false, "{capture}");
    app.close().await;
}
