//! The local machine: what a crash, or a person at the keyboard, can get. A forced abort of the
//! CLI and of the desktop app with core dumps enabled leaves no core file (P3), shown beside a
//! control process that does dump under the same settings.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anonchat_e2e::cli::{befriend, open_session, say, Cli};
use anonchat_e2e::gui::{children, Display};
use anonchat_e2e::server::Server;
use anonchat_e2e::{bin, unique, TempDir};

/// `sh -c` that enters `dir`, lifts the core limit to unlimited, and execs the rest.
fn cores_on(dir: &Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "cd '{}' && ulimit -c unlimited && exec \"$@\"",
            dir.display()
        ),
        "sh".into(),
    ]
}

fn cores_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("core"))
                .collect()
        })
        .unwrap_or_default()
}

fn abort(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-ABRT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// The same settings make an ordinary process dump a core here: the check below can fail.
fn control_dumps(dir: &Path) {
    let mut args = cores_on(dir);
    args.extend(["sleep".into(), "30".into()]);
    let mut child = std::process::Command::new(&args[0])
        .args(&args[1..])
        .spawn()
        .expect("control");
    // Whether the signal meets `sh` or `sleep`, either dumps.
    abort(child.id());
    let status = child.wait().expect("wait");
    assert!(
        status.core_dumped(),
        "the control process dumps: {status:?}"
    );
    assert!(!cores_in(dir).is_empty(), "and its core is in {dir:?}");
    for c in cores_in(dir) {
        let _ = std::fs::remove_file(dir.join(c));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_cli_in_a_chat_leaves_no_core() {
    let cwd = TempDir::new("cores");
    control_dumps(&cwd.0);
    let server = Server::start().await;
    let home = TempDir::new("clients");
    let (a_name, b_name) = (unique("alice"), unique("bob"));
    let mut a = Cli::start(&unique("pa"), &home.0, &server.url()).await;
    let mut b = Cli::start_wrapped(
        &unique("pb"),
        &home.0,
        &server.url(),
        &[],
        &cores_on(&cwd.0),
    )
    .await;
    a.register(&a_name).await;
    b.register(&b_name).await;
    a.connect().await;
    b.connect().await;
    befriend(&mut a, &a_name, &mut b, &b_name).await;
    let session = open_session(&mut a, &mut b, &b_name).await;
    say(&mut a, &mut b, &session).await;

    let pid = b.pid();
    abort(pid);
    let status = b.wait().await;
    assert_eq!(status.signal(), Some(libc_sigabrt()), "{status:?}");
    assert!(!status.core_dumped(), "no core: {status:?}");
    assert!(cores_in(&cwd.0).is_empty(), "{:?}", cores_in(&cwd.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_desktop_app_leaves_no_core() {
    let _turn = anonchat_e2e::gui::one_at_a_time().await;
    let cwd = TempDir::new("cores");
    control_dumps(&cwd.0);
    let display = Display::start();
    let home = TempDir::new("app");
    let mut args = cores_on(&cwd.0);
    args.push(bin("anonchat").display().to_string());
    let mut app = tokio::process::Command::new(&args[0])
        .args(&args[1..])
        .env("DISPLAY", &display.name)
        .env("ANONCHAT_HOME", &home.0)
        .env("ANONCHAT_PROFILE", unique("pd"))
        .env("ANONCHAT_SERVER", "http://127.0.0.1:9")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the app");
    let pid = app.id().expect("pid");
    // Up once WebKit's processes run under it (the window's page is loading).
    let t0 = Instant::now();
    while children(pid).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the app did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    abort(pid);
    let status = app.wait().await.expect("wait");
    assert_eq!(status.signal(), Some(libc_sigabrt()), "{status:?}");
    assert!(!status.core_dumped(), "no core: {status:?}");
    assert!(cores_in(&cwd.0).is_empty(), "{:?}", cores_in(&cwd.0));
}

fn libc_sigabrt() -> i32 {
    6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_passcode_a_restarted_client_is_locked_and_guessing_slows_down() {
    let server = Server::start().await;
    let home = TempDir::new("clients");
    let profile = unique("pa");
    let mut a = Cli::start(&profile, &home.0, &server.url()).await;
    a.register(&unique("alice")).await;
    a.connect().await;
    let short = a
        .call(serde_json::json!({"cmd": "set_passcode", "passcode": "abc"}))
        .await;
    assert_eq!(short["ok"], false, "too short: {short}");
    a.ok(serde_json::json!({"cmd": "set_passcode", "passcode": "four words of passcode"}))
        .await;
    a.quit().await;

    let mut a = Cli::start(&profile, &home.0, &server.url()).await;
    let status = a.ok(serde_json::json!({"cmd": "lock_status"})).await;
    assert_eq!(status["locked"], true, "{status}");
    a.connect().await;
    for cmd in ["friends", "devices", "enroll_open", "code", "get_mode"] {
        let r = a.call(serde_json::json!({"cmd": cmd})).await;
        assert_eq!(r["ok"], false, "{cmd} while locked: {r}");
        assert!(
            r["error"].as_str().is_some_and(|e| e.contains("locked")),
            "{r}"
        );
    }
    for _ in 0..3 {
        let r = a
            .call(serde_json::json!({"cmd": "unlock", "passcode": "guess"}))
            .await;
        assert_eq!(r["error"], "wrong passcode", "{r}");
    }
    // Now even the right one waits: the Argon2 work is not done at all until then.
    let r = a
        .call(serde_json::json!({"cmd": "unlock", "passcode": "four words of passcode"}))
        .await;
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("try again in")),
        "{r}"
    );
    assert_eq!(
        a.ok(serde_json::json!({"cmd": "lock_status"})).await["locked"],
        true
    );
}
