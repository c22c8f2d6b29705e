//! Groups in the desktop app (real WebKit, tauri-driver under Xvfb) with two CLI members who are
//! friends of the app's user only: the group is started from the contacts list and walked by
//! keyboard alone — members connected, a text from each side, receipts from both, an image from a
//! member, a file and a photo from the app to both, a friend rung in and removed, and leaving.

use anonchat_e2e::cli::Cli;
use anonchat_e2e::gui::{every_control_reachable, one_at_a_time, page, tab_to, Desktop, Display};
use anonchat_e2e::server::Server;
use anonchat_e2e::{unique, TempDir};
use serde_json::{json, Value};

async fn member(home: &TempDir, server: &Server, name: &str) -> Cli {
    let mut c = Cli::start(&unique("pm"), &home.0, &server.url()).await;
    c.register(name).await;
    c.connect().await;
    c
}

/// The member takes the app's invite; returns its link session to the app's user.
async fn join(c: &mut Cli, app_name: &str) -> String {
    let ring = c.expect_event("incoming_ring").await;
    assert_eq!(ring["invite"], true, "{ring}");
    c.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
        .await;
    c.expect_event("group_joined").await;
    let who = app_name.to_string();
    let v: Value = c
        .expect("the app's user connected", move |v| {
            v["event"] == "group_member"
                && v["state"] == "connected"
                && v["username"] == who.as_str()
        })
        .await;
    v["session"].as_str().expect("session").to_string()
}

fn png(c: [u8; 3]) -> Vec<u8> {
    let i = image::RgbImage::from_pixel(40, 30, image::Rgb(c));
    let mut out = std::io::Cursor::new(Vec::new());
    i.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The next attachment of `kind` the app sends on `link`, once complete: its bytes.
async fn received(c: &mut Cli, link: &str, kind: &str) -> Vec<u8> {
    let (s, k) = (link.to_string(), kind.to_string());
    let offer = c
        .expect("the app's attachment", move |v| {
            v["event"] == "file_incoming" && v["session"] == s.as_str() && v["kind"] == k.as_str()
        })
        .await;
    let id = offer["id"].as_u64().expect("id");
    let s = link.to_string();
    c.expect("its last byte", move |v| {
        v["event"] == "file_received" && v["session"] == s.as_str() && v["id"] == id
    })
    .await;
    let got = c
        .ok(json!({"cmd": "attachment", "session": link, "id": id}))
        .await;
    anonchat_proto::bytes::decode_b64(got["base64"].as_str().expect("base64")).expect("base64")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_started_from_the_contacts_list_and_walked_by_keyboard() {
    let _turn = one_at_a_time().await;
    let server = Server::start().await;
    let display = Display::start();
    let home = TempDir::new("gui-group");
    let (app_name, bob_name, carol_name, dave_name) = (
        unique("app"),
        unique("bob"),
        unique("carol"),
        unique("dave"),
    );
    let mut bob = member(&home, &server, &bob_name).await;
    let mut carol = member(&home, &server, &carol_name).await;
    let mut dave = member(&home, &server, &dave_name).await;
    let (camera, pic, doc) = (
        home.0.join("camera.png"),
        home.0.join("pic.png"),
        home.0.join("notes.txt"),
    );
    std::fs::write(&camera, png([200, 30, 30])).unwrap();
    std::fs::write(&pic, png([30, 200, 30])).unwrap();
    std::fs::write(&doc, "group notes").unwrap();
    let app = Desktop::start_with_env(
        &display,
        &home.0,
        &unique("pa"),
        &server.url(),
        &[("ANONCHAT_SYNTHETIC_CAMERA", camera.to_str().unwrap())],
    )
    .await;
    app.onboard(&app_name).await;
    for (c, name) in [
        (&mut bob, &bob_name),
        (&mut carol, &carol_name),
        (&mut dave, &dave_name),
    ] {
        app.befriend(&app_name, c, name).await;
    }

    // Start a group by keyboard: the picker opens on the first friend; Space ticks each.
    tab_to(&app, &display, "group-new").await;
    display.key("Return");
    app.wait(page::shown("group-form")).await;
    for name in [&bob_name, &carol_name] {
        tab_to(&app, &display, &format!("group-pick-{name}")).await;
        display.key("space");
        app.wait(page::checked(&format!("group-pick-{name}"))).await;
    }
    tab_to(&app, &display, "group-start").await;
    display.key("Return");
    app.wait(page::pane("group")).await;
    let bob_link = join(&mut bob, &app_name).await;
    let carol_link = join(&mut carol, &app_name).await;
    // bob and carol are not friends: the roster introduces them, and they connect too.
    let carol2 = carol_name.clone();
    bob.expect("carol connected at bob's", move |v| {
        v["event"] == "group_member"
            && v["state"] == "connected"
            && v["username"] == carol2.as_str()
    })
    .await;
    app.wait(
        page::group_member(&bob_name, "connected")
            & page::group_member(&carol_name, "connected")
            & page::group_member(&app_name, "me"),
    )
    .await;
    // Linux cannot keep screenshots out: the banner names both members' screens.
    app.wait(
        page::text_has("group-unprotected", &bob_name)
            & page::text_has("group-unprotected", &carol_name),
    )
    .await;

    // A text from bob shows with his name; the app's text reaches both, with both receipts.
    let from_bob = format!("hello from bob {}", unique("t"));
    let bob_gid = bob.ok(json!({"cmd": "groups"})).await["groups"][0]["group"].clone();
    bob.ok(json!({"cmd": "group_send", "group": bob_gid, "text": from_bob}))
        .await;
    app.wait(page::text_has("group-messages", &from_bob)).await;
    tab_to(&app, &display, "group-input").await;
    let mine = format!("hello from the app {}", unique("t"));
    display.type_text(&mine);
    display.key("Return");
    for (c, link) in [(&mut bob, &bob_link), (&mut carol, &carol_link)] {
        let (want, s) = (mine.clone(), link.clone());
        c.expect("the app's group text", move |v| {
            v["event"] == "message" && v["text"] == want.as_str() && v["session"] == s.as_str()
        })
        .await;
    }
    app.wait(page::last_group_line_has("✓ 2/2")).await;

    // An image from bob shows inline, decoded; a file picked in the page and a photo with the
    // app's camera reach both members byte-exact, each counted as both copies arrive.
    bob.ok(json!({"cmd": "group_send_file", "group": bob_gid, "path": pic}))
        .await;
    app.wait(page::group_image(40)).await;
    let pick = app
        .client
        .find(fantoccini::Locator::Css("#group-file-pick"))
        .await
        .expect("file input");
    pick.send_keys(doc.to_str().unwrap())
        .await
        .expect("pick a file");
    for (c, link) in [(&mut bob, &bob_link), (&mut carol, &carol_link)] {
        assert_eq!(received(c, link, "file").await, b"group notes");
    }
    app.wait(page::last_group_line_has("notes.txt") & page::last_group_line_has("✓ 2/2"))
        .await;
    tab_to(&app, &display, "group-photo-send").await;
    display.key("Return");
    for (c, link) in [(&mut bob, &bob_link), (&mut carol, &carol_link)] {
        let jpeg = received(c, link, "photo").await;
        assert!(jpeg.starts_with(&[0xff, 0xd8]), "a JPEG");
    }
    app.wait(page::last_group_line_has("Photo") & page::last_group_line_has("✓ 2/2"))
        .await;

    // The starter rings dave in by keyboard (the only friend not in the group yet)…
    tab_to(&app, &display, "group-add").await;
    display.key("Return");
    join(&mut dave, &app_name).await;
    let dave2 = dave_name.clone();
    bob.expect("dave connected at bob's", move |v| {
        v["event"] == "group_member" && v["state"] == "connected" && v["username"] == dave2.as_str()
    })
    .await;
    app.wait(page::group_member(&dave_name, "connected")).await;
    // …and removes him: he is out, and the others see him gone.
    app.click(&format!(
        "#group-members li[data-user=\"{dave_name}\"] button"
    ))
    .await;
    let ended = dave.expect_event("group_ended").await;
    assert_eq!(ended["reason"], "removed", "{ended}");
    let dave2 = dave_name.clone();
    carol
        .expect("dave gone at carol's", move |v| {
            v["event"] == "group_member" && v["state"] == "gone" && v["username"] == dave2.as_str()
        })
        .await;
    app.wait(page::not_in_group(&dave_name)).await;
    assert!(
        app.is(page::hidden("chat")).await,
        "no 1:1 chat opened for a link"
    );
    every_control_reachable(&app, &display, "group").await;
    app.shot("group").await;

    // Leave by keyboard: both members see the app's user go; the app is back on the welcome pane.
    tab_to(&app, &display, "group-leave").await;
    display.key("Return");
    app.wait(page::pane("welcome") & page::text_has("add-status", "You left the group"))
        .await;
    for c in [&mut bob, &mut carol] {
        let who = app_name.clone();
        c.expect("the app's user gone", move |v| {
            v["event"] == "group_member" && v["state"] == "gone" && v["username"] == who.as_str()
        })
        .await;
    }
    app.close().await;
}
