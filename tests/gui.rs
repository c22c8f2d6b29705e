//! The desktop app in real WebKit (tauri-driver + WebKitWebDriver under Xvfb), against a real server and
//! a real CLI peer: onboarding → befriend → chat both ways → panic through the real global shortcut
//! (xdotool) and through the real tray menu (over D-Bus, as a tray host clicks it) → the UI is a blank
//! lock screen and the peer sees the chat end. The app's memory, read before and after each panic,
//! shows the chat's canaries there before and gone after.

use anonchat_e2e::cli::{keychain_has, Cli};
use anonchat_e2e::gui::{children, count_in_memory, tray_click, Desktop, Display};
use anonchat_e2e::server::Server;
use anonchat_e2e::{canary, unique, TempDir};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Bob calls the app, the app answers, and both send a canary. Returns the canaries.
///
/// The canaries never travel through WebDriver (its commands and answers pass through the app's
/// process and would be found there): the app's is typed with real X key events (xdotool), and
/// bob's is checked on the page by its SHA-256.
async fn chat(
    app: &Desktop,
    display: &Display,
    bob: &mut Cli,
    app_name: &str,
    shot: bool,
) -> Vec<String> {
    let ring = bob.ok(json!({"cmd": "ring", "username": app_name})).await;
    app.until(
        "the incoming call",
        "!document.getElementById('ring').hidden",
    )
    .await;
    if shot {
        app.shot("incoming-call").await;
    }
    app.click("#ring-answer").await;
    let open = bob.expect_event("session_open").await;
    assert_eq!(open["session"], ring["ring_id"]);
    app.until("the chat", "!document.getElementById('chat').hidden")
        .await;

    let mine = canary();
    app.click("#chat-input").await;
    let typed = display.run("xdotool", &["type", "--delay", "5", &mine]);
    assert!(typed.status.success(), "xdotool type: {typed:?}");
    let sent = display.run("xdotool", &["key", "Return"]);
    assert!(sent.status.success(), "xdotool key: {sent:?}");
    let want = mine.clone();
    bob.expect("the app's message", move |v| {
        v["event"] == "message" && v["text"] == want.as_str()
    })
    .await;
    let theirs = canary();
    bob.ok(json!({"cmd": "send", "session": ring["ring_id"], "text": theirs}))
        .await;
    let digest: String = Sha256::digest(theirs.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    app.until(
        "bob's message",
        "document.querySelector('#messages li.theirs')",
    )
    .await;
    let on_page = app
        .eval_async(
            "const t = document.querySelector('#messages li.theirs').textContent; \
             const h = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(t)); \
             return [...new Uint8Array(h)].map(b => b.toString(16).padStart(2, '0')).join('');",
        )
        .await;
    assert_eq!(on_page, json!(digest), "bob's text shown as sent");
    app.until(
        "the delivery receipt",
        "document.querySelector('#messages li.mine .receipt').textContent === 'delivered'",
    )
    .await;
    if shot {
        app.shot("chat").await;
    }
    vec![mine, theirs]
}

/// Dumps the app's memory; returns the canary count in the app process, and prints WebKit's.
fn canaries_in_memory(pid: u32, canaries: &[String], when: &str) -> usize {
    let t0 = std::time::Instant::now();
    let app: usize = count_in_memory(pid, canaries).iter().sum();
    println!("reading the app's memory took {:?}", t0.elapsed());
    let web: usize = children(pid)
        .into_iter()
        .map(|c| count_in_memory(c, canaries).iter().sum::<usize>())
        .sum();
    println!("canaries {when}: app process {app}, WebKit processes {web}");
    app
}

async fn expect_wiped(app: &Desktop, bob: &mut Cli) {
    let ended = bob.expect_event("session_ended").await;
    assert_eq!(ended["reason"], "peer_left", "the app said bye: {ended}");
    println!("the peer saw the chat end");
    // A new document: the lock screen, and nothing of the chat anywhere in the page.
    app.until(
        "the lock screen, with no chat in the page",
        "location.search.startsWith('?locked=') && !document.getElementById('lock').hidden \
         && document.getElementById('main').hidden \
         && !document.documentElement.textContent.includes('CANARY')",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_befriend_chat_and_panic_by_shortcut_and_by_tray() {
    let server = Server::start().await;
    let display = Display::start();
    let home = TempDir::new("gui");
    let (app_name, bob_name) = (unique("desk"), unique("bob"));
    let app_profile = unique("pd");
    let mut bob = Cli::start(&unique("pb"), &home.0, &server.url()).await;
    bob.register(&bob_name).await;
    bob.connect().await;

    let app = Desktop::start(&display, &home.0, &app_profile, &server.url()).await;
    app.until("onboarding", "!document.getElementById('onboard').hidden")
        .await;
    app.shot("onboarding").await;
    app.type_into("#onboard-username", &app_name).await;
    app.click("#onboard-submit").await;
    app.until(
        "the main screen, connected",
        "!document.getElementById('main').hidden && document.getElementById('conn').textContent === 'connected'",
    )
    .await;
    assert_eq!(app.text("#me-name").await, app_name);
    assert!(
        keychain_has(&app_profile),
        "the app keeps its keys in the keychain"
    );

    // Befriend the CLI peer from the app.
    app.type_into("#add-username", &bob_name).await;
    app.click("#add-submit").await;
    let req = bob.expect_event("friend_request").await;
    assert_eq!(req["from"], app_name.as_str());
    bob.ok(json!({"cmd": "accept_friend", "username": app_name}))
        .await;
    app.until(
        "bob among the friends",
        &format!("document.querySelector('#friends li[data-user=\"{bob_name}\"]')"),
    )
    .await;
    app.shot("contacts").await;

    // Chat, then panic through the global shortcut.
    let canaries = chat(&app, &display, &mut bob, &app_name, true).await;
    let pid = app.pid();
    let before = canaries_in_memory(pid, &canaries, "before the shortcut panic");
    assert!(before > 0, "the dump finds the chat while it is open");
    let out = display.run("xdotool", &["key", "ctrl+shift+x"]);
    assert!(out.status.success(), "xdotool: {out:?}");
    println!("pressed the panic shortcut");
    expect_wiped(&app, &mut bob).await;
    let after = canaries_in_memory(pid, &canaries, "after the shortcut panic");
    assert_eq!(after, 0, "no canary left in the app process after panic");

    // Back from the tray, chat again, then panic through the tray menu.
    tray_click(pid, "Show AnonChat");
    app.until("the window back", "document.visibilityState === 'visible'")
        .await;
    app.shot("locked").await;
    app.click("#unlock").await;
    app.until("the main screen", "!document.getElementById('main').hidden")
        .await;
    let canaries = chat(&app, &display, &mut bob, &app_name, false).await;
    tray_click(pid, "Panic: wipe all chats");
    expect_wiped(&app, &mut bob).await;
    let after = canaries_in_memory(pid, &canaries, "after the tray panic");
    assert_eq!(
        after, 0,
        "no canary left in the app process after the tray panic"
    );

    // Settings render with the live state (mode, share QR, devices).
    tray_click(pid, "Show AnonChat");
    app.until("the window back", "document.visibilityState === 'visible'")
        .await;
    app.click("#unlock").await;
    app.click("#nav-settings").await;
    app.until(
        "settings with this device listed",
        "document.querySelectorAll('#devices li').length === 1 \
         && document.querySelector('#share-qr svg path') \
         && document.getElementById('conn').textContent === 'connected'",
    )
    .await;
    app.shot("settings").await;
    app.close().await;
}
