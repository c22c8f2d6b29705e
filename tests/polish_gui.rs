//! The polish a privacy desktop app is expected to have (issue 17), in real WebKit: copied codes
//! and links leave the clipboard again (read off the X server with xclip); every control the OS
//! exposes over AT-SPI has a name, on every screen (what a screen reader announces, checked against
//! the running app, not only by Tab walking); the window is usable 360 px wide; light and dark follow
//! the OS.

use std::time::{Duration, Instant};

use anonchat_e2e::gui::{controls, one_at_a_time, page, Desktop, Display, WAIT};
use anonchat_e2e::server::Server;
use anonchat_e2e::{unique, TempDir};

/// What the X clipboard holds now ("" when nobody holds it).
fn clipboard(display: &Display) -> String {
    let out = display.run("xclip", &["-o", "-selection", "clipboard"]);
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::new()
    }
}

/// Every control in the accessibility tree of this screen has a name (hidden parts of the page
/// are not in the tree; scrolled-off ones are).
fn all_named(pid: u32, screen: &str) {
    let shown = controls(pid);
    let unnamed: Vec<_> = shown.iter().filter(|c| c.name.trim().is_empty()).collect();
    println!(
        "{screen}: {} controls over AT-SPI ({} in view), {} without a name",
        shown.len(),
        shown.iter().filter(|c| c.showing).count(),
        unnamed.len()
    );
    assert!(
        !shown.is_empty(),
        "{screen}: the accessibility tree shows controls"
    );
    assert!(
        unnamed.is_empty(),
        "{screen}: controls without a name: {unnamed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clipboard_is_cleared_every_control_is_named_and_360_px_work() {
    let _turn = one_at_a_time().await;
    let server = Server::start().await;
    let display = Display::start();
    let _notifications = display.notification_daemon();
    let home = TempDir::new("polish-gui");
    let app = Desktop::start_with_env(
        &display,
        &home.0,
        &unique("pq"),
        &server.url(),
        &[("ANONCHAT_TEST_CLIPBOARD_SECONDS", "3")],
    )
    .await;
    app.wait(page::screen("onboard")).await;
    let pid = app.pid();
    all_named(pid, "onboarding");
    app.onboard(&unique("desk")).await;
    all_named(pid, "contacts");
    app.click("#nav-notes").await;
    app.wait(page::pane("notes")).await;
    all_named(pid, "notes");
    app.click("#nav-settings").await;
    app.wait(page::pane("settings") & page::share_qr_drawn())
        .await;
    all_named(pid, "settings");

    // A copied link is on the clipboard, and leaves it after the (here shortened) while.
    app.click("#share-copy").await;
    let copied = Instant::now();
    app.wait(page::text_has("settings-status", "Copied")).await;
    let link = app.text("#share-link").await;
    assert!(
        link.starts_with("anonchat:") || link.contains("://"),
        "{link}"
    );
    assert_eq!(clipboard(&display), link, "the link is on the clipboard");
    while !clipboard(&display).is_empty() {
        assert!(copied.elapsed() < WAIT, "the link stayed on the clipboard");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = copied.elapsed();
    println!("the clipboard was cleared {after:?} after the copy");
    assert!(
        after >= Duration::from_secs(2),
        "not before its time: {after:?}"
    );

    // 360 px wide: one column, nothing sticking out, the panic button in reach.
    app.client
        .set_window_size(360, 700)
        .await
        .expect("resize the window");
    app.wait(page::fits_width(400)).await;
    app.click("#nav-contacts").await;
    app.wait(page::fits_width(400)).await;
    app.shot("narrow").await;
    app.close().await;
}

/// Light and dark follow the OS: the GTK theme's dark variant (what a desktop's dark style sets)
/// reaches the page, which draws itself dark; the default theme draws it light.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_and_dark_follow_the_os() {
    let _turn = one_at_a_time().await;
    let server = Server::start().await;
    let display = Display::start();
    for (theme, dark) in [("Adwaita:dark", true), ("Adwaita", false)] {
        let home = TempDir::new("scheme-gui");
        let app = Desktop::start_with_env(
            &display,
            &home.0,
            &unique("ps"),
            &server.url(),
            &[("GTK_THEME", theme)],
        )
        .await;
        app.wait(page::screen("onboard") & page::colour_scheme(dark))
            .await;
        if dark {
            app.shot("onboarding-dark").await;
        }
        app.close().await;
    }
}
