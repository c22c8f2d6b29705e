//! Account keys in the real app (WebKit, WebDriver): a friend's rotated key is a warning that says
//! so, with the new safety number and a button to trust it; and the app rotates its own key from
//! Settings, which its friend then sees as a signed rotation.

use anonchat_e2e::cli::Cli;
use anonchat_e2e::gui::{one_at_a_time, Desktop, Display};
use anonchat_e2e::server::Server;
use anonchat_e2e::{unique, TempDir};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_shown_trusted_by_a_click_and_the_app_rotates_its_own() {
    let _turn = one_at_a_time().await;
    let server = Server::start().await;
    let display = Display::start();
    let _notifications = display.notification_daemon();
    let home = TempDir::new("gui");
    let app = Desktop::start(&display, &home.0, &unique("pd"), &server.url()).await;
    let desk = unique("desk");
    app.onboard(&desk).await;
    let bob_name = unique("bob");
    let mut bob = Cli::start(&unique("pb"), &home.0, &server.url()).await;
    bob.register(&bob_name).await;
    bob.connect().await;
    app.befriend(&desk, &mut bob, &bob_name).await;
    let safety_in_app = async || {
        app.engine(json!({"cmd": "safety_number", "username": bob_name}))
            .await
            .expect("the safety number")["safety_number"]
            .clone()
    };
    let before = safety_in_app().await;

    // Bob rotates: the app warns, says it is signed by the old key, and shows the new number.
    bob.ok(json!({"cmd": "rotate_account_key"})).await;
    let bob_sees = bob
        .ok(json!({"cmd": "safety_number", "username": desk}))
        .await["safety_number"]
        .clone();
    app.until(
        "the key-change warning",
        &format!(
            "(() => {{ const t = document.getElementById('add-status').textContent; \
             return t.includes('CHANGED') && t.includes('signed by their old one') \
             && t.includes({bob_sees}); }})()"
        ),
    )
    .await;
    assert_eq!(safety_in_app().await, before, "still the pinned key");
    app.click(&format!(
        "button[aria-label='Trust the new key of {bob_name}']"
    ))
    .await;
    app.until(
        "trusted",
        "document.getElementById('add-status').textContent.includes('trusted')",
    )
    .await;
    assert_eq!(safety_in_app().await, bob_sees);

    // The app rotates its own key from Settings (confirming the dialog).
    app.click("#nav-settings").await;
    // Settings have loaded when this device is listed.
    app.until(
        "the device list",
        "document.querySelectorAll('#devices li').length > 0",
    )
    .await;
    app.eval_async("window.confirm = () => true; return true;")
        .await;
    app.click("#device-rotate").await;
    let status = "return document.getElementById('settings-status').textContent;";
    let t0 = std::time::Instant::now();
    loop {
        let now = app.eval_async(status).await;
        if now
            .as_str()
            .is_some_and(|t| t.starts_with("New account key"))
        {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "not rotated; the status says {now}"
        );
        // Polling the page: the app reports the outcome only there.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let warned = bob.expect_event("key_changed").await;
    assert_eq!(warned["username"], desk.as_str());
    assert_eq!(warned["rotated"], true, "{warned}");
    assert_eq!(safety_in_app().await, warned["safety_number"]);
}
