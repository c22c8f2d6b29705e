//! Account keys in the real app (WebKit, WebDriver): a friend's rotated key is a warning that says
//! so, with the new safety number and a button to trust it; and the app rotates its own key from
//! Settings, which its friend then sees as a signed rotation.

use anonchat_e2e::gui::{one_at_a_time, page, stage, Desktop};
use anonchat_e2e::unique;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_shown_trusted_by_a_click_and_the_app_rotates_its_own() {
    let _turn = one_at_a_time().await;
    let (server, display, home, mut bob, bob_name, _notifications) = stage("gui-rotate").await;
    let app = Desktop::start(&display, &home.0, &unique("pd"), &server.url()).await;
    let desk = unique("desk");
    app.onboard(&desk).await;
    app.befriend(&desk, &mut bob, &bob_name).await;
    let safety_in_app = async || {
        app.engine(json!({"cmd": "safety_number", "username": bob_name}))
            .await
            .expect("the safety number")["safety_number"]
            .clone()
    };
    let before = safety_in_app().await;

    // Bob rotates: the app warns, says it is signed by the old key, and shows the new number.
    bob.ok(json!({"cmd": "rotate_account_key", "keep": []}))
        .await;
    let bob_sees = bob
        .ok(json!({"cmd": "safety_number", "username": desk}))
        .await["safety_number"]
        .clone();
    let bob_sees_text = bob_sees.as_str().expect("a safety number");
    app.wait(
        page::text_has("add-status", "CHANGED")
            & page::text_has("add-status", "signed by their old one")
            & page::text_has("add-status", bob_sees_text),
    )
    .await;
    assert_eq!(safety_in_app().await, before, "still the pinned key");
    app.click(&format!(
        "button[aria-label='Trust the new key of {bob_name}']"
    ))
    .await;
    app.wait(page::text_has("add-status", "trusted")).await;
    assert_eq!(safety_in_app().await, bob_sees);

    // The app rotates its own key from Settings (confirming the dialog).
    app.click("#nav-settings").await;
    // Settings have loaded when this device is listed.
    app.wait(page::devices_loaded()).await;
    app.auto_confirm().await;
    app.click("#device-rotate").await;
    app.wait(page::text_starts("settings-status", "New account key"))
        .await;
    let warned = bob
        .expect("key_changed, rotated", |v| {
            v["event"] == "key_changed" && v["rotated"] == true
        })
        .await;
    assert_eq!(warned["username"], desk.as_str());
    assert_eq!(safety_in_app().await, warned["safety_number"]);
}
