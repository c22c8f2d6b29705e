//! A real `anonchat-cli --json` process, driven line by line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::bin;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Cli {
    pub profile: String,
    pub home: PathBuf,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Lines read while waiting for something else, kept for later `expect`s.
    backlog: Vec<Value>,
}

impl Cli {
    /// Starts a client on `profile` (its folder under `home`) talking to `server`.
    pub async fn start(profile: &str, home: &std::path::Path, server: &str) -> Cli {
        Self::start_with_env(profile, home, server, &[]).await
    }

    pub async fn start_with_env(
        profile: &str,
        home: &std::path::Path,
        server: &str,
        env: &[(&str, &str)],
    ) -> Cli {
        Self::start_wrapped(profile, home, server, env, &[]).await
    }

    /// As [`Cli::start_with_env`], run under `wrapper` (e.g. `strace … --`) when it is not empty.
    pub async fn start_wrapped(
        profile: &str,
        home: &std::path::Path,
        server: &str,
        env: &[(&str, &str)],
        wrapper: &[String],
    ) -> Cli {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin("anonchat-cli"));
                c
            }
            None => Command::new(bin("anonchat-cli")),
        };
        let mut child = cmd
            .arg("--json")
            .arg("--profile")
            .arg(profile)
            .arg("--server")
            .arg(server)
            .env("ANONCHAT_HOME", home)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start anonchat-cli");
        let stdin = child.stdin.take().expect("cli stdin");
        let stdout = child.stdout.take().expect("cli stdout");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        let _ = tx.send(v);
                    }
                    Err(_) => eprintln!("cli printed a non-JSON line: {line}"),
                }
            }
        });
        let mut cli = Cli {
            profile: profile.to_string(),
            home: home.to_path_buf(),
            child,
            stdin,
            lines: rx,
            backlog: Vec::new(),
        };
        cli.expect_event("ready").await;
        cli
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("cli pid")
    }

    pub async fn send(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to cli");
        self.stdin.flush().await.expect("flush cli stdin");
    }

    /// Waits for a line matching `pred`, keeping the others for later.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.expect_within(WAIT, what, pred).await
    }

    /// As [`Cli::expect`], waiting up to `wait`.
    pub async fn expect_within(
        &mut self,
        wait: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) if pred(&v) => return v,
                Ok(Some(v)) => self.backlog.push(v),
                Ok(None) => panic!(
                    "{}: cli exited while waiting for {what}; saw {:?}",
                    self.profile, self.backlog
                ),
                Err(_) => panic!(
                    "{}: timed out waiting for {what}; saw {:?}",
                    self.profile, self.backlog
                ),
            }
        }
    }

    pub async fn expect_event(&mut self, name: &str) -> Value {
        let name2 = name.to_string();
        self.expect(name, move |v| v["event"] == name2.as_str())
            .await
    }

    /// Whether a line matching `pred` has been seen (without waiting).
    pub fn seen(&mut self, pred: impl Fn(&Value) -> bool) -> bool {
        while let Ok(v) = self.lines.try_recv() {
            self.backlog.push(v);
        }
        self.backlog.iter().any(pred)
    }

    /// Takes every line matching `pred` seen so far (without waiting).
    pub fn take_all(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        while let Ok(v) = self.lines.try_recv() {
            self.backlog.push(v);
        }
        let (taken, kept) = std::mem::take(&mut self.backlog)
            .into_iter()
            .partition(pred);
        self.backlog = kept;
        taken
    }

    /// Sends a command and waits for its reply; panics unless it succeeded.
    pub async fn ok(&mut self, cmd: Value) -> Value {
        let reply = self.call(cmd.clone()).await;
        assert_eq!(reply["ok"], true, "{}: {cmd} failed: {reply}", self.profile);
        reply
    }

    /// Sends a command and returns its reply, successful or not.
    pub async fn call(&mut self, cmd: Value) -> Value {
        let name = cmd["cmd"].as_str().expect("cmd name").to_string();
        self.send(cmd).await;
        let n = name.clone();
        self.expect(&format!("reply to {name}"), move |v| {
            v["reply"] == n.as_str()
        })
        .await
    }

    pub async fn register(&mut self, username: &str) {
        self.ok(json!({"cmd": "register", "username": username}))
            .await;
    }

    pub async fn connect(&mut self) {
        self.ok(json!({"cmd": "connect"})).await;
        self.expect_event("connected").await;
    }

    pub async fn quit(mut self) {
        self.send(json!({"cmd": "quit"})).await;
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
    }

    /// Waits for the process to end (after a signal the test sent) and returns how it ended.
    pub async fn wait(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the cli did not end")
            .expect("wait for the cli")
    }

    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Two registered, connected friends.
pub async fn befriend(a: &mut Cli, a_name: &str, b: &mut Cli, b_name: &str) -> String {
    let sent = a.ok(json!({"cmd": "add_friend", "username": b_name})).await;
    let req = b.expect_event("friend_request").await;
    assert_eq!(req["from"], a_name);
    // A front-end that (re)loads finds the request waiting, and only until it is answered.
    let from_a = |v: &Value| {
        let list = v["requests"]
            .as_array()
            .expect("a list of requests")
            .clone();
        list.into_iter().find(|r| r["from"] == a_name)
    };
    let waiting = b.ok(json!({"cmd": "friend_requests"})).await;
    assert_eq!(
        from_a(&waiting),
        Some(json!({"from": a_name, "safety_number": req["safety_number"]}))
    );
    b.ok(
        json!({"cmd": "accept_friend", "username": a_name, "safety_number": req["safety_number"]}),
    )
    .await;
    let waiting = b.ok(json!({"cmd": "friend_requests"})).await;
    assert_eq!(from_a(&waiting), None, "answered: no longer waiting");
    let added_a = a.expect_event("friend_added").await;
    let added_b = b.expect_event("friend_added").await;
    let sn = sent["safety_number"]
        .as_str()
        .expect("safety number")
        .to_string();
    assert_eq!(req["safety_number"], sn.as_str());
    assert_eq!(added_a["safety_number"], sn.as_str());
    assert_eq!(added_b["safety_number"], sn.as_str());
    sn
}

/// `old` opens an enrollment, `new` joins with `code_or_link`, `old` approves after checking that
/// both show the same fingerprint. Returns the new device's id.
pub async fn enroll(old: &mut Cli, new: &mut Cli, username: &str, use_link: bool) -> String {
    let open = old.ok(json!({"cmd": "enroll_open"})).await;
    let code = open["code"].as_str().expect("code").to_string();
    assert_eq!(code.len(), 9, "8 characters shown as XXXX-XXXX: {code}");
    let link = open["link"].as_str().expect("link").to_string();
    assert!(link.starts_with("anonchat://enroll?"), "{link}");
    let given = if use_link { link } else { code };
    new.send(json!({"cmd": "enroll", "code": given})).await;
    let pending = new.expect_event("enroll_pending").await;
    assert_eq!(pending["username"], username);
    let req = old.expect_event("enroll_request").await;
    assert_eq!(
        req["fingerprint"], pending["fingerprint"],
        "both devices show the new device's fingerprint"
    );
    let device_id = req["device_id"].as_str().expect("device id").to_string();
    old.ok(
        json!({"cmd": "enroll_approve", "device_id": device_id, "fingerprint": req["fingerprint"]}),
    )
    .await;
    let done = new
        .expect("reply to enroll", |v| v["reply"] == "enroll")
        .await;
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["username"], username);
    assert_eq!(done["device_id"], device_id.as_str());
    device_id
}

/// A rings B, B answers; returns the session id once both sides report the channel open.
pub async fn open_session(a: &mut Cli, b: &mut Cli, b_name: &str) -> String {
    open_session_events(a, b, b_name).await.0
}

/// As [`open_session`], with both sides' `session_open` events (A's, then B's).
pub async fn open_session_events(a: &mut Cli, b: &mut Cli, b_name: &str) -> (String, Value, Value) {
    let ring = a.ok(json!({"cmd": "ring", "username": b_name})).await;
    let id = ring["ring_id"].as_str().expect("ring id").to_string();
    let incoming = b.expect_event("incoming_ring").await;
    assert_eq!(incoming["ring_id"], id.as_str());
    // A front-end that (re)loads finds the ring waiting, and only until it is answered.
    let this_ring = |v: &Value| {
        let list = v["rings"].as_array().expect("a list of rings").clone();
        list.into_iter().find(|r| r["ring_id"] == id.as_str())
    };
    let waiting = b.ok(json!({"cmd": "incoming_rings"})).await;
    assert_eq!(
        this_ring(&waiting),
        Some(json!({"ring_id": id, "from": incoming["from"]}))
    );
    b.ok(json!({"cmd": "answer", "ring_id": id, "accept": true}))
        .await;
    let waiting = b.ok(json!({"cmd": "incoming_rings"})).await;
    assert_eq!(this_ring(&waiting), None, "answered: no longer waiting");
    let oa = session_opened(a, &id, b).await;
    let ob = session_opened(b, &id, a).await;
    assert_eq!(oa["session"], id.as_str());
    assert_eq!(ob["session"], id.as_str());
    (id, oa, ob)
}

/// Waits for `who`'s `session_open` for `id`, past the engine's own setup timeout, so a setup that
/// fails says how (the engine names the step that never happened) instead of only timing out.
pub async fn session_opened(who: &mut Cli, id: &str, other: &Cli) -> Value {
    let wait = anonchat_client::session::SETUP_TIMEOUT + Duration::from_secs(5);
    let id2 = id.to_string();
    let v = who
        .expect_within(wait, "session_open or session_failed", move |v| {
            (v["event"] == "session_open" || v["event"] == "session_failed")
                && v["session"] == id2.as_str()
        })
        .await;
    assert_eq!(
        v["event"], "session_open",
        "{}: {v}; the other side saw {:?}",
        who.profile, other.backlog
    );
    v
}

/// `from` sends a fresh canary in `session`; `to` must receive exactly that text.
pub async fn say(from: &mut Cli, to: &mut Cli, session: &str) -> String {
    let text = crate::canary();
    from.ok(json!({"cmd": "send", "session": session, "text": text}))
        .await;
    let want = text.clone();
    to.expect("message", move |v| {
        v["event"] == "message" && v["text"] == want.as_str()
    })
    .await;
    text
}

/// Two registered, connected clients with fresh names and profiles.
pub struct Pair {
    pub a: Cli,
    pub b: Cli,
    pub a_name: String,
    pub b_name: String,
    pub a_profile: String,
    pub b_profile: String,
    /// Where both profiles live; removed with the pair.
    pub home: crate::TempDir,
}

pub async fn pair(server_url: &str) -> Pair {
    pair_on(server_url, server_url).await
}

/// As [`pair`], `a` on one server (instance) and `b` on another.
pub async fn pair_on(a_url: &str, b_url: &str) -> Pair {
    let home = crate::TempDir::new("clients");
    let (a_name, b_name) = (crate::unique("alice"), crate::unique("bob"));
    let (a_profile, b_profile) = (crate::unique("pa"), crate::unique("pb"));
    let mut a = Cli::start(&a_profile, &home.0, a_url).await;
    let mut b = Cli::start(&b_profile, &home.0, b_url).await;
    a.register(&a_name).await;
    b.register(&b_name).await;
    a.connect().await;
    b.connect().await;
    Pair {
        a,
        b,
        a_name,
        b_name,
        a_profile,
        b_profile,
        home,
    }
}

/// Whether the Secret Service holds this profile's entry (asked with `secret-tool`).
pub fn keychain_has(profile: &str) -> bool {
    let user = format!("profile:{profile}");
    let listed = std::process::Command::new("secret-tool")
        .args(["search", "--all", "service", "anonchat", "username", &user])
        .output()
        .expect("secret-tool");
    let out = String::from_utf8_lossy(&listed.stdout).to_string()
        + &String::from_utf8_lossy(&listed.stderr);
    out.contains(&user)
}

/// The burner profiles (folders named as a burner's) under the `ANONCHAT_HOME` `home`.
pub fn burner_profiles(home: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(home.join("profiles"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with("burner-"))
                .collect()
        })
        .unwrap_or_default()
}
