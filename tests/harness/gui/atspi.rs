//! The app as a user runs it — started directly, without WebDriver — and driven the way assistive
//! technology drives it: AT-SPI (`atspi.py`) to find and press controls, X input to type. WebDriver
//! cannot follow a panic that ends WebKit's web process (WebKit closes its automation session
//! with that process), and the accessibility tree is what the OS exposes of every control.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::{app_pid, Display, WAIT};
use crate::bin;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/harness/gui/atspi.py");

fn atspi(pid: u32, args: &[&str]) -> std::process::Output {
    // Debian's python3 (where python3-pyatspi lives), not whichever python3 is first on PATH.
    Command::new("/usr/bin/python3")
        .arg(SCRIPT)
        .arg(pid.to_string())
        .args(args)
        .output()
        .expect("python3 with pyatspi (apt install python3-pyatspi; scripts/test.sh does)")
}

/// Runs `atspi.py PID what NAME SECONDS [extra]` until it succeeds or `WAIT` is over. Each try is
/// a fresh process: pyatspi caches the tree it walked, so one process started before the app's
/// tree was complete can wait on a stale copy (seen after an app restart).
fn retrying(pid: u32, what: &str, name: &str, extra: &[&str]) -> std::process::Output {
    let t0 = std::time::Instant::now();
    loop {
        let mut args = vec![what, name, "3"];
        args.extend_from_slice(extra);
        let out = atspi(pid, &args);
        if out.status.success() || t0.elapsed() >= WAIT {
            return out;
        }
    }
}

/// One control in the app's accessibility tree.
#[derive(Debug, Clone)]
pub struct Control {
    pub role: String,
    pub name: String,
    pub showing: bool,
}

/// Every control of the app `pid` in its accessibility tree.
pub fn controls(pid: u32) -> Vec<Control> {
    let out = atspi(pid, &["controls"]);
    assert!(out.status.success(), "AT-SPI tree of {pid}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| Control {
            role: v["role"].as_str().unwrap_or("").to_string(),
            name: v["name"].as_str().unwrap_or("").to_string(),
            showing: v["showing"].as_bool().unwrap_or(false),
        })
        .collect()
}

/// Waits until an enabled control of the app is named `name` (in view or scrolled off), and
/// activates it.
pub fn press(pid: u32, name: &str) {
    until_done(pid, "press", name, "pressing");
}

/// Waits until a showing control of the app is named `name`.
pub fn wait_for(pid: u32, name: &str) {
    until_done(pid, "wait", name, "waiting for");
}

/// Runs `atspi.py PID what NAME` until it succeeds; a failure says what the app showed instead.
fn until_done(pid: u32, what: &str, name: &str, doing: &str) {
    let out = retrying(pid, what, name, &[]);
    assert!(
        out.status.success(),
        "{doing} {name:?} over AT-SPI: {out:?}; showing: {:?}",
        showing_names(pid)
    );
}

/// The names of the controls the app shows, for a failure to say what was there instead.
fn showing_names(pid: u32) -> Vec<String> {
    controls(pid)
        .into_iter()
        .filter(|c| c.showing && !c.name.is_empty())
        .map(|c| c.name)
        .collect()
}

/// Waits until the field named `name` holds `n` characters: keys typed into it have landed (only
/// its length is read, never its text).
pub fn wait_for_length(pid: u32, name: &str, n: usize) {
    let n = n.to_string();
    let out = retrying(pid, "length", name, &[&n]);
    assert!(out.status.success(), "{name:?} over AT-SPI: {out:?}");
}

/// Waits until the control named `name` has the keyboard focus (typed keys go to it).
pub fn wait_for_focus(pid: u32, name: &str) {
    until_done(pid, "focused", name, "waiting for the focus on");
}

/// Waits until the list named `list` has at least `n` items; returns how many it has.
pub fn list_reaches(pid: u32, list: &str, n: usize) -> usize {
    let out = retrying(pid, "count", list, &[&n.to_string()]);
    assert!(
        out.status.success(),
        "the list {list:?} over AT-SPI: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The app started as a user starts it (incognito webview, no automation); killed on drop.
pub struct PlainApp {
    child: Child,
    pub pid: u32,
}

impl PlainApp {
    pub fn start(display: &Display, home: &Path, profile: &str, server: &str) -> PlainApp {
        let child = Command::new(bin("anonchat"))
            .env("DISPLAY", &display.name)
            .env("ANONCHAT_HOME", home)
            .env("ANONCHAT_PROFILE", profile)
            .env("ANONCHAT_SERVER", server)
            .env_remove("TAURI_WEBVIEW_AUTOMATION")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the app");
        let pid = child.id();
        let t0 = std::time::Instant::now();
        while app_pid(profile) != Some(pid) {
            assert!(t0.elapsed() < WAIT, "the app did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        PlainApp { child, pid }
    }
}

impl PlainApp {
    /// Onboards as `name` from the keyboard (the username field has the focus; Return submits),
    /// then `friend` asks for friendship and the app accepts it over AT-SPI.
    pub async fn onboard_and_befriend(
        &self,
        display: &Display,
        name: &str,
        friend: &mut crate::cli::Cli,
        friend_name: &str,
    ) {
        // The screen shows before its scripts run (ui/boot.js); keys typed before the page
        // focused the field were lost.
        wait_for_focus(self.pid, "Choose a username");
        display.type_text(name);
        display.key("Return");
        wait_for(self.pid, "Send request");
        friend
            .ok(serde_json::json!({"cmd": "add_friend", "username": name}))
            .await;
        press(self.pid, &format!("Accept {friend_name}"));
        friend.expect_event("friend_added").await;
    }

    /// `bob` rings, the app answers over AT-SPI, each side sends a canary (the app's typed into
    /// the chat's input, which has the focus once the chat shows); returns the session and both
    /// canaries once the app's list shows both lines.
    pub async fn answer_and_trade_canaries(
        &self,
        display: &Display,
        bob: &mut crate::cli::Cli,
        app_name: &str,
    ) -> (Value, Vec<String>) {
        use serde_json::json;
        let ring = bob.ok(json!({"cmd": "ring", "username": app_name})).await;
        press(self.pid, "Answer");
        bob.expect_event("session_open").await;
        // The chat shows (and its input took the focus in the same step) only once the app got
        // its own `session_open`, which may come after the peer's.
        wait_for(self.pid, "Leave");
        let mine = crate::canary();
        display.type_text(&mine);
        display.key("Return");
        let want = mine.clone();
        bob.expect("the app's line", move |v| {
            v["event"] == "message" && v["text"] == want.as_str()
        })
        .await;
        let theirs = crate::canary();
        bob.ok(json!({"cmd": "send", "session": ring["ring_id"], "text": theirs}))
            .await;
        list_reaches(self.pid, "Messages", 2);
        (ring["ring_id"].clone(), vec![mine, theirs])
    }

    /// Waits until the app exits; its status.
    pub fn exited(&mut self) -> std::process::ExitStatus {
        let t0 = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the app's status") {
                return status;
            }
            assert!(t0.elapsed() < WAIT, "the app did not exit");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for PlainApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
