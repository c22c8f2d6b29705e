//! Signed updates (issue 17), in real WebKit against a local update server: nothing asks the server
//! until the user checks; an update signed by the release key *for the version announced* is
//! offered and installed; one signed by another key, a tampered one, an old signed release passed
//! off as new, one whose signature names no version, and one with a garbage signature are each
//! refused with the installed app untouched. The check at start, once chosen, offers the update
//! without a click. Keys and signatures come from the Tauri CLI, as a release's do.

use anonchat_e2e::gui::{one_at_a_time, page, Desktop, Display};
use anonchat_e2e::server::Server;
use anonchat_e2e::updates::{SigningKey, UpdateServer};
use anonchat_e2e::{unique, TempDir};

const ARTIFACT: &str = "AnonChat_0.2.0_amd64.AppImage";

/// An AppImage as the updater sees one: an ELF file (these are not run, only installed).
fn appimage(label: &str) -> Vec<u8> {
    let mut b = b"\x7fELF\x02\x01\x01\0".to_vec();
    b.resize(64, 0);
    b.extend_from_slice(label.as_bytes());
    b
}

/// The user presses "Check now", and the check ends (the page shows its answer).
async fn check(app: &Desktop) {
    app.click("#update-check").await;
    app.wait(page::text_lacks("update-status", "Checking"))
        .await;
}

/// The user checks, is offered 0.2.0, installs, and is told it is not signed; nothing changed.
async fn refused(app: &Desktop, what: &str, installed: &std::path::Path, before: &[u8]) {
    check(app).await;
    app.wait(
        page::text_is("update-version", "AnonChat 0.2.0 is available.")
            & page::shown("update-offer"),
    )
    .await;
    app.click("#update-install").await;
    app.wait(page::text_has(
        "update-status",
        "not signed by AnonChat's release key for version 0.2.0",
    ))
    .await;
    let status = app.text("#update-status").await;
    println!("{what}: {status}");
    assert_eq!(
        std::fs::read(installed).expect("the installed app"),
        before,
        "{what}: the installed app is untouched"
    );
    assert!(app.is(page::hidden("update-restart")).await, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_update_signed_for_its_version_is_installed() {
    let _turn = one_at_a_time().await;
    let server = Server::start().await;
    let display = Display::start();
    let home = TempDir::new("update-gui");
    let keys = TempDir::new("update-keys");
    let release = SigningKey::generate(&keys.0, "release.key");
    let stranger = SigningKey::generate(&keys.0, "stranger.key");
    let updates = UpdateServer::start();

    // The app "installed" as an AppImage at $APPIMAGE: the updater replaces that file.
    let installed = home.0.join("AnonChat.AppImage");
    let old = appimage("AnonChat 0.1.0");
    std::fs::write(&installed, &old).expect("installed app");
    let new = appimage("AnonChat 0.2.0");
    let new_file = keys.0.join(ARTIFACT);
    std::fs::write(&new_file, &new).expect("new release");
    let old_release = keys.0.join("AnonChat_0.1.5_amd64.AppImage");
    std::fs::write(&old_release, appimage("AnonChat 0.1.5")).expect("older release");

    let endpoint = updates.url("latest.json");
    let env = [
        ("ANONCHAT_TEST_UPDATE_PUBKEY", release.public.as_str()),
        ("ANONCHAT_UPDATE_ENDPOINT", endpoint.as_str()),
        ("APPIMAGE", installed.to_str().expect("utf-8 path")),
    ];
    let profile = unique("up");
    let app = Desktop::start_with_env(&display, &home.0, &profile, &server.url(), &env).await;
    app.onboard(&unique("upd")).await;
    app.click("#nav-settings").await;
    app.wait(page::pane("settings") & page::text_has("update-reveals", "A check asks 127.0.0.1"))
        .await;
    assert!(
        !app.is(page::checked("set-update-check")).await,
        "checking at start is off until the user turns it on"
    );
    assert!(
        updates.requests().is_empty(),
        "nothing asked the update server before the user did: {:?}",
        updates.requests()
    );

    // Nothing newer.
    updates.announce("0.1.0", ARTIFACT, &release.sign(&new_file, Some("0.1.0")));
    updates.put(ARTIFACT, new.clone());
    check(&app).await;
    app.wait(page::text_is("update-status", "AnonChat is up to date."))
        .await;

    // An answer far longer than any manifest is refused before it fills memory: nothing offered.
    let long = format!(r#"{{"version":"0.2.0","notes":"{}"}}"#, "x".repeat(1 << 20));
    updates.put("latest.json", long);
    check(&app).await;
    app.wait(page::text_has(
        "update-status",
        "larger than 64 KiB: refused",
    ))
    .await;
    assert!(app.is(page::hidden("update-offer")).await);

    // Signed by someone else's key.
    updates.announce("0.2.0", ARTIFACT, &stranger.sign(&new_file, Some("0.2.0")));
    refused(&app, "another key", &installed, &old).await;

    // Tampered on the way: the right signature, one byte changed.
    updates.announce("0.2.0", ARTIFACT, &release.sign(&new_file, Some("0.2.0")));
    let mut tampered = new.clone();
    *tampered.last_mut().expect("bytes") ^= 1;
    updates.put(ARTIFACT, tampered);
    refused(&app, "tampered", &installed, &old).await;
    updates.put(ARTIFACT, new.clone());

    // An older release, genuinely signed, announced as 0.2.0 (a downgrade).
    updates.announce(
        "0.2.0",
        "old.AppImage",
        &release.sign(&old_release, Some("0.1.5")),
    );
    updates.put(
        "old.AppImage",
        std::fs::read(&old_release).expect("older release"),
    );
    refused(&app, "old release as new", &installed, &old).await;

    // Signed by the release key, but the signature names no version.
    updates.announce("0.2.0", ARTIFACT, &release.sign(&new_file, None));
    refused(&app, "no signed version", &installed, &old).await;

    // No signature at all (garbage where it should be).
    updates.announce("0.2.0", ARTIFACT, "unsigned");
    refused(&app, "unsigned", &installed, &old).await;

    // Released as a release is (scripts/updater-manifest.mjs signs for 0.2.0 and writes the
    // manifest): offered and installed.
    let bundle = keys.0.join("bundle/appimage");
    std::fs::create_dir_all(&bundle).expect("bundle dir");
    std::fs::write(bundle.join(ARTIFACT), &new).expect("bundled release");
    let manifest = release.release_manifest(&bundle, "0.2.0", &updates.url(""));
    updates.put("latest.json", manifest);
    check(&app).await;
    app.wait(page::text_is(
        "update-version",
        "AnonChat 0.2.0 is available.",
    ))
    .await;
    app.shot("update-offered").await;
    app.click("#update-install").await;
    app.wait(page::text_lacks("update-status", "Downloading"))
        .await;
    let status = app.text("#update-status").await;
    assert!(status.contains("AnonChat 0.2.0 is installed"), "{status}");
    assert!(app.is(page::shown("update-restart")).await);
    assert_eq!(
        std::fs::read(&installed).expect("the installed app"),
        new,
        "the signed update replaced the app"
    );
    println!("signed for 0.2.0: {status}");

    // What a check told the update server.
    let asked = updates.requests();
    let check = asked
        .iter()
        .find(|r| r.line.contains("latest.json"))
        .expect("a check");
    println!("a check sends: {} {:?}", check.line, check.headers);
    for h in &check.headers {
        let name = h.split(':').next().unwrap_or("").to_ascii_lowercase();
        assert!(
            ["host", "user-agent", "accept", "accept-encoding"].contains(&name.as_str()),
            "a check carries only what HTTP needs: {h}"
        );
    }

    // Checking at start, once chosen: the next start is offered the update without a click.
    app.click("#set-update-check").await;
    app.wait(page::text_is("update-status", "Saved.")).await;
    app.close().await;
    let before = updates.requests().len();
    let app = Desktop::start_with_env(&display, &home.0, &profile, &server.url(), &env).await;
    app.wait(
        page::main_connected()
            & page::shown("update-note")
            & page::text_has("update-note-text", "AnonChat 0.2.0 is available"),
    )
    .await;
    assert!(updates.requests().len() > before, "the start asked");
    app.close().await;
}
