//! The desktop app in real WebKit (tauri-driver + WebKitWebDriver under Xvfb), against a real server and
//! a real CLI peer: onboarding → befriend → chat both ways → panic through the real global shortcut
//! (xdotool) and through the real tray menu (over D-Bus, as a tray host clicks it) → the UI is a blank
//! lock screen and the peer sees the chat end. The app's memory, read before and after each panic,
//! shows the chat's canaries there before and gone after.

use anonchat_e2e::cli::{keychain_has, Cli};
use anonchat_e2e::gui::{
    children, count_in_memory, every_control_reachable, one_at_a_time, page, stage, tab_to,
    tray_click, Desktop, Display, NotifyMonitor,
};
use anonchat_e2e::{bin, canary, unique, TempDir};
use serde_json::json;
use sha2::{Digest, Sha256};

const NO_CAMERA: &str = "No camera found. Connect a camera, or add the contact by username.";

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
    app.wait(page::ring_dialog()).await;
    if shot {
        app.shot("incoming-call").await;
    }
    app.click("#ring-answer").await;
    let open = bob.expect_event("session_open").await;
    assert_eq!(open["session"], ring["ring_id"]);
    app.wait(page::pane("chat")).await;

    let mine = canary();
    app.click("#chat-input").await;
    display.type_text(&mine);
    display.key("Return");
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
    app.wait(page::peer_line()).await;
    assert_eq!(
        app.peer_line_sha256().await,
        digest,
        "bob's text shown as sent"
    );
    app.wait(page::my_receipt("delivered")).await;
    if shot {
        app.shot("chat").await;
    }
    vec![mine, theirs]
}

/// Dumps the memory of the app and of every process it started (WebKit's web content and network
/// processes); returns the canary counts of the app process and of all the others.
fn canaries_in_memory(pid: u32, canaries: &[String], when: &str) -> (usize, usize) {
    let t0 = std::time::Instant::now();
    let app: usize = count_in_memory(pid, canaries).iter().sum();
    println!("reading the app's memory took {:?}", t0.elapsed());
    let web: usize = children(pid)
        .into_iter()
        .map(|c| count_in_memory(c, canaries).iter().sum::<usize>())
        .sum();
    println!("canaries {when}: app process {app}, WebKit processes {web}");
    (app, web)
}

async fn expect_wiped(app: &Desktop, bob: &mut Cli) {
    let ended = bob.expect_event("session_ended").await;
    assert_eq!(ended["reason"], "peer_left", "the app said bye: {ended}");
    println!("the peer saw the chat end");
    // A new document: the lock screen, and nothing of the chat anywhere in the page.
    app.wait(page::fresh_lock_page_without("CANARY")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_befriend_chat_and_panic_by_shortcut_and_by_tray() {
    let _turn = one_at_a_time().await;
    let (server, display, home, mut bob, bob_name, _notifications) = stage("gui").await;
    let app_name = unique("desk");
    let app_profile = unique("pd");

    let app = Desktop::start(&display, &home.0, &app_profile, &server.url()).await;
    app.wait(page::screen("onboard")).await;
    app.shot("onboarding").await;
    app.onboard(&app_name).await;
    assert_eq!(app.text("#me-name").await, app_name);
    assert!(
        keychain_has(&app_profile),
        "the app keeps its keys in the keychain"
    );

    // One instance per profile: a second start says where the first one is and leaves it running.
    let second = std::process::Command::new(bin("anonchat"))
        .env("DISPLAY", &display.name)
        .env("ANONCHAT_HOME", &home.0)
        .env("ANONCHAT_PROFILE", &app_profile)
        .env("ANONCHAT_SERVER", server.url())
        .output()
        .expect("second start");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        second.status.success() && said.contains("already running"),
        "a second instance on the profile stops: {second:?}"
    );
    assert_eq!(
        app.text("#me-name").await,
        app_name,
        "the first one runs on"
    );

    // Befriend the CLI peer from the app.
    app.befriend(&app_name, &mut bob, &bob_name).await;
    app.shot("contacts").await;

    // Chat, then panic through the global shortcut.
    let canaries = chat(&app, &display, &mut bob, &app_name, true).await;
    let pid = app.pid();
    let (before, _) = canaries_in_memory(pid, &canaries, "before the shortcut panic");
    assert!(before > 0, "the dump finds the chat while it is open");
    display.key("ctrl+shift+x");
    println!("pressed the panic shortcut");
    expect_wiped(&app, &mut bob).await;
    // Under WebDriver the page's process lives on (WebKit would end the session with it); that
    // panic ends it too, and every process is clean, is `tests/panic_gui.rs`.
    let (after, _) = canaries_in_memory(pid, &canaries, "after the shortcut panic");
    assert_eq!(after, 0, "no canary left in the app process after panic");

    // Back from the tray, chat again, then panic through the tray menu.
    tray_click(pid, "Show AnonChat");
    app.wait(page::window_visible()).await;
    app.shot("locked").await;
    assert!(
        app.text("#lock-note")
            .await
            .contains("anyone at this computer can continue"),
        "without a passcode the lock page says so plainly"
    );
    app.click("#unlock").await;
    app.wait(page::screen("main")).await;
    let canaries = chat(&app, &display, &mut bob, &app_name, false).await;
    tray_click(pid, "Panic: wipe all chats");
    expect_wiped(&app, &mut bob).await;
    let (after, _) = canaries_in_memory(pid, &canaries, "after the tray panic");
    assert_eq!(
        after, 0,
        "no canary left in the app process after the tray panic"
    );

    // A ring while the window is hidden: a desktop notification that says only "Incoming chat" —
    // not who calls (the user has not allowed names), nothing of any chat.
    let notes = NotifyMonitor::start();
    let ring = bob.ok(json!({"cmd": "ring", "username": app_name})).await;
    let note = notes.next();
    println!("notification sent over D-Bus: {note:?}");
    assert!(
        note.iter().any(|s| s == "Incoming chat"),
        "the notification says there is a call: {note:?}"
    );
    assert!(
        note.iter()
            .all(|s| !s.contains(&bob_name) && !s.contains("CANARY")),
        "the notification names no one and carries no content: {note:?}"
    );
    let t0 = std::time::Instant::now();
    tray_click(pid, "Show AnonChat");
    println!("tray click took {:?}", t0.elapsed());
    app.wait(page::window_visible()).await;
    app.click("#unlock").await;
    println!("unlocked after {:?}", t0.elapsed());
    app.wait(page::ring_dialog()).await;
    app.click("#ring-decline").await;
    let ended = bob.expect_event("ring_ended").await;
    assert_eq!(ended["ring_id"], ring["ring_id"]);

    // Settings render with the live state (mode, share QR, devices).
    app.click("#nav-settings").await;
    app.wait(page::devices_listed(1) & page::share_qr_drawn() & page::main_connected())
        .await;
    app.shot("settings").await;
    app.close().await;
}

/// Presses Tab until `id` has the focus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_works_by_keyboard_alone() {
    let _turn = one_at_a_time().await;
    let (server, display, home, mut bob, bob_name, _notifications) = stage("gui-keys").await;
    let app_name = unique("kbd");
    // WebDriver only reads the page here; every action is a real key press.
    let app = Desktop::start(&display, &home.0, &unique("pk"), &server.url()).await;
    app.wait(page::screen("onboard")).await;
    every_control_reachable(&app, &display, "onboarding").await;
    tab_to(&app, &display, "onboard-username").await;
    display.type_text(&app_name);
    display.key("Return");
    app.wait(page::main_connected()).await;
    every_control_reachable(&app, &display, "contacts").await;

    // No camera on this machine (the real enumeration): scanning says so plainly.
    tab_to(&app, &display, "scan-open").await;
    display.key("Return");
    app.wait(page::text_is("add-status", NO_CAMERA)).await;
    assert!(app.is(page::hidden("scan")).await);

    // Add bob: type the name, Enter.
    tab_to(&app, &display, "add-username").await;
    display.type_text(&bob_name);
    display.key("Return");
    let req = bob.expect_event("friend_request").await;
    bob.ok(json!({"cmd": "accept_friend", "username": app_name, "safety_number": req["safety_number"]}))
        .await;
    app.wait(page::friend_listed(&bob_name)).await;

    // A call: the dialog takes the focus on Answer; Enter answers, and the focus is in the message
    // field; Enter sends.
    bob.ok(json!({"cmd": "ring", "username": app_name})).await;
    app.wait(page::ring_dialog()).await;
    assert_eq!(app.focused().await, "ring-answer");
    display.key("Return");
    bob.expect_event("session_open").await;
    app.wait(page::pane("chat") & page::focus_on("chat-input"))
        .await;
    every_control_reachable(&app, &display, "chat").await;
    // This server has no relay: the chat is direct, and the window says what that means.
    assert_eq!(
        app.text("#chat-route").await,
        "Direct connection: they can see your IP address."
    );
    tab_to(&app, &display, "chat-input").await;
    let text = format!("hello from the keyboard {}", unique("k"));
    display.type_text(&text);
    display.key("Return");
    let want = text.clone();
    bob.expect("the typed message", move |v| {
        v["event"] == "message" && v["text"] == want.as_str()
    })
    .await;

    // Settings, then panic from the keyboard.
    tab_to(&app, &display, "nav-settings").await;
    display.key("Return");
    app.wait(page::pane("settings")).await;
    every_control_reachable(&app, &display, "settings").await;
    // "Hide my IP" is on by default; without a relay the note says chats are direct anyway.
    // Space turns it off, in the engine too.
    assert!(app.is(page::checked("set-hide-ip")).await);
    assert!(app
        .text("#relay-note")
        .await
        .starts_with("This server offers no relay"));
    tab_to(&app, &display, "set-hide-ip").await;
    display.key("space");
    app.wait(page::text_is("settings-status", "Saved.")).await;
    let net = app
        .engine(json!({"cmd": "network"}))
        .await
        .expect("network");
    assert_eq!(net["hide_ip"], false, "{net}");
    tab_to(&app, &display, "panic-button").await;
    display.key("Return");
    let ended = bob.expect_event("session_ended").await;
    assert_eq!(ended["reason"], "peer_left");
    app.close().await;
}

/// Adding a contact by showing their share QR to the camera. The app's camera is a synthetic
/// source behind nokhwa's capture trait (there is none here); it shows the image file the test
/// writes, read again each time the camera opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanning_a_contact_qr_with_the_camera() {
    let _turn = one_at_a_time().await;
    let (server, display, home, mut bob, bob_name, _notifications) = stage("gui-scan").await;
    let app_name = unique("cam");
    bob.ok(json!({"cmd": "set_mode", "mode": "strict"})).await;
    let qr_png = |text: &str| anonchat_client::qr::png(text).expect("QR");
    // First the camera sees a QR code that is not an AnonChat contact.
    let camera = home.0.join("camera.png");
    std::fs::write(&camera, qr_png("https://example.org/menu")).unwrap();

    let camera_env = camera.to_str().unwrap();
    let app = Desktop::start_with_env(
        &display,
        &home.0,
        &unique("pc"),
        &server.url(),
        &[("ANONCHAT_SYNTHETIC_CAMERA", camera_env)],
    )
    .await;
    app.onboard(&app_name).await;

    // Previews come through while it looks; a code that is not a contact's is not acted on;
    // Escape cancels and the preview is dropped.
    app.click("#scan-open").await;
    app.wait(page::scan_previewing()).await;
    app.shot("contacts-scan").await;
    assert_eq!(app.text("#scan-status").await, "Looking for a code…");
    assert_eq!(app.focused().await, "scan-cancel");
    display.key("Escape");
    app.wait(page::scan_closed()).await;
    assert_eq!(app.focused().await, "scan-open");

    // Now bob's share QR (with his live Strict code) is in front of the camera.
    let code = bob.ok(json!({"cmd": "code"})).await;
    let link = code["link"].as_str().expect("link").to_string();
    std::fs::write(&camera, qr_png(&link)).unwrap();
    display.key("Return");
    app.wait(page::text_is(
        "add-status",
        &format!("Request sent to {bob_name}."),
    ))
    .await;
    let req = bob.expect_event("friend_request").await;
    assert_eq!(req["from"], app_name.as_str());
    assert!(app.is(page::hidden("scan")).await);
    app.close().await;
}

/// Media in the app, with a CLI peer: an image shown inline from memory, a view-once image opened
/// once (and the peer told), a photo from the app's camera, a file picked in the page, and an
/// auto-delete timer that counts down and wipes on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_in_the_chat() {
    let _turn = one_at_a_time().await;
    let started = std::time::SystemTime::now();
    let (server, display, home, mut bob, bob_name, _notifications) = stage("gui-media").await;
    let app_name = unique("med");
    let img = |c: [u8; 3]| {
        let i = image::RgbImage::from_pixel(40, 30, image::Rgb(c));
        let mut out = std::io::Cursor::new(Vec::new());
        i.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let (camera, pic, once, doc) = (
        home.0.join("camera.png"),
        home.0.join("pic.png"),
        home.0.join("once.png"),
        home.0.join("notes.txt"),
    );
    std::fs::write(&camera, img([200, 30, 30])).unwrap();
    std::fs::write(&pic, img([30, 200, 30])).unwrap();
    std::fs::write(&once, img([30, 30, 200])).unwrap();
    std::fs::write(&doc, "some notes").unwrap();
    let app = Desktop::start_with_env(
        &display,
        &home.0,
        &unique("pm"),
        &server.url(),
        &[("ANONCHAT_SYNTHETIC_CAMERA", camera.to_str().unwrap())],
    )
    .await;
    app.onboard(&app_name).await;
    app.befriend(&app_name, &mut bob, &bob_name).await;
    let ring = bob.ok(json!({"cmd": "ring", "username": app_name})).await;
    let session = ring["ring_id"].as_str().unwrap().to_string();
    app.wait(page::ring_dialog()).await;
    app.click("#ring-answer").await;
    bob.expect_event("session_open").await;
    app.wait(page::pane("chat")).await;

    // An image from bob: inline, from an object URL, decoded.
    let sent = bob
        .ok(json!({"cmd": "send_file", "session": session, "path": pic}))
        .await;
    let id = sent["id"].as_u64().unwrap();
    app.wait(page::image_shown(id, 40)).await;

    // A view-once image: a button, a viewer, then gone on both sides.
    let sent = bob
        .ok(json!({"cmd": "send_file", "session": session, "path": once, "view_once": true}))
        .await;
    let id = sent["id"].as_u64().unwrap();
    app.wait(page::item_button(id)).await;
    assert!(
        app.is(page::no_image(id)).await,
        "a view-once image is not shown before it is opened"
    );
    app.click(&format!("{} button", page::item(id))).await;
    app.wait(page::viewer_open()).await;
    bob.expect("told it was opened", move |v| {
        v["event"] == "view_once_opened" && v["id"] == id
    })
    .await;
    app.click("#viewer-close").await;
    app.wait(page::viewer_closed()).await;

    // A photo with the app's camera, and a file picked in the page.
    app.click("#photo-send").await;
    let photo = bob.expect_event("file_incoming").await;
    assert_eq!(photo["kind"], "photo");
    let pid = photo["id"].as_u64().unwrap();
    bob.expect("the photo", move |v| {
        v["event"] == "file_received" && v["id"] == pid
    })
    .await;
    let pick = app
        .client
        .find(fantoccini::Locator::Css("#file-pick"))
        .await
        .expect("file input");
    pick.send_keys(doc.to_str().unwrap())
        .await
        .expect("pick a file");
    let file = bob.expect_event("file_incoming").await;
    assert_eq!(file["name"], "notes.txt");
    let fid = file["id"].as_u64().unwrap();
    bob.expect("the file", move |v| {
        v["event"] == "file_received" && v["id"] == fid
    })
    .await;
    let got = bob
        .ok(json!({"cmd": "attachment", "session": session, "id": fid}))
        .await;
    assert_eq!(
        anonchat_proto::bytes::decode_b64(got["base64"].as_str().unwrap()).unwrap(),
        b"some notes"
    );
    app.shot("chat-media").await;

    // P3 for the app: a canary text and an image carrying a canary reach the page, and then no
    // file under $HOME, the profile folder or what appeared in $TMPDIR during the test holds them.
    let (text_canary, image_canary) = (canary(), canary());
    bob.ok(json!({"cmd": "send", "session": session, "text": text_canary}))
        .await;
    let fixtures = TempDir::new("gui-media-fixtures");
    let marked = fixtures.0.join("marked.png");
    let mut bytes = img([90, 90, 90]);
    bytes.extend_from_slice(image_canary.as_bytes());
    std::fs::write(&marked, &bytes).unwrap();
    let sent = bob
        .ok(json!({"cmd": "send_file", "session": session, "path": marked}))
        .await;
    let id = sent["id"].as_u64().unwrap();
    app.wait(page::image_shown(id, 40)).await;
    let needles = [text_canary.clone(), image_canary.clone()];
    let in_memory = count_in_memory(app.pid(), &needles);
    assert!(
        in_memory[0] > 0 && in_memory[1] > 0,
        "the app holds both (so the search can find them): {in_memory:?}"
    );
    // The profile folder and $HOME, and what appeared in $TMPDIR (home.0 is under it: once).
    let mut written = files_since(&home.0, started);
    if let Some(h) = std::env::var_os("HOME") {
        written.extend(files_since(std::path::Path::new(&h), started));
    }
    written.extend(
        files_since(&std::env::temp_dir(), started)
            .into_iter()
            .filter(|f| !f.starts_with(&home.0)),
    );
    let mut searched = 0;
    for f in written.iter().filter(|f| !f.starts_with(&fixtures.0)) {
        searched += 1;
        let bytes = std::fs::read(f).unwrap_or_default();
        for n in &needles {
            assert!(
                memchr::memmem::find(&bytes, n.as_bytes()).is_none(),
                "{n} on disk in {}",
                f.display()
            );
        }
    }
    // The search does see a canary on disk where there is one: the fixture bob sent from.
    let fixture = std::fs::read(&marked).unwrap();
    assert!(memchr::memmem::find(&fixture, image_canary.as_bytes()).is_some());
    println!("searched {searched} files written during the test: no canary");

    // Auto-delete: chosen in the app, agreed with bob, counted down, wiped on both sides.
    app.choose("chat-timer", "5").await;
    let set = bob.expect_event("timer_set").await;
    assert_eq!(
        (set["seconds"].as_u64(), set["by_peer"].as_bool()),
        (Some(5), Some(true))
    );
    let sent = bob
        .ok(json!({"cmd": "send", "session": session, "text": "gone soon"}))
        .await;
    let id = sent["id"].as_u64().unwrap();
    app.wait(page::countdown(id, &[5, 4])).await;
    bob.expect("expiry on bob's side", move |v| {
        v["event"] == "expired"
            && v["ids"]
                .as_array()
                .is_some_and(|ids| ids.contains(&json!(id)))
    })
    .await;
    app.wait(page::item_gone(id)).await;
    app.close().await;
}

/// Files under `root` modified since `since` (the app's own writes during a test).
fn files_since(root: &std::path::Path, since: std::time::SystemTime) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(files_since(&p, since));
        } else if meta.is_file() && meta.modified().is_ok_and(|m| m >= since) {
            out.push(p);
        }
    }
    out
}
