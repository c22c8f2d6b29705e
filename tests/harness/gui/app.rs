//! The app as a page object: started under `tauri-driver`, driven over WebDriver.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::page::{self, Q};
use super::shot::window_png;
use super::{app_pid, Display, WAIT};
use crate::bin;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `tauri-driver`: on PATH, or where `cargo install` puts it.
fn tauri_driver() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_home.map(|c| c.join("bin")))
        .chain([PathBuf::from("/root/.cargo/bin")]);
    for dir in candidates {
        let p = dir.join("tauri-driver");
        if p.exists() {
            return p;
        }
    }
    panic!("tauri-driver not found (cargo install tauri-driver --locked; scripts/test.sh does)")
}

/// How a control is told apart in the page: its id, its label, or `name:<group>` for a radio
/// button (Tab reaches a group once).
const CONTROL_KEY: &str = "const keyOf = (e) => e.type === 'radio' ? 'name:' + e.name \
     : (e.id || e.getAttribute('aria-label') || e.textContent.trim().slice(0, 40));";

/// The desktop app under WebDriver.
pub struct Desktop {
    driver: Child,
    pub client: Client,
    pub profile: String,
    /// The X display the app runs on.
    display: String,
    /// Where screenshots go (`ANONCHAT_SCREENSHOTS`), if anywhere.
    shots: Option<PathBuf>,
}

impl Desktop {
    /// Starts the app on `display` with profile `profile` under `home`, talking to `server`.
    pub async fn start(display: &Display, home: &Path, profile: &str, server: &str) -> Desktop {
        Self::start_with_env(display, home, profile, server, &[]).await
    }

    /// As [`Desktop::start`], with extra environment variables for the app.
    pub async fn start_with_env(
        display: &Display,
        home: &Path,
        profile: &str,
        server: &str,
        env: &[(&str, &str)],
    ) -> Desktop {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (port, native) = (free_port(), free_port());
        let driver = Command::new(tauri_driver())
            // Its own process group, so the driver, WebKitWebDriver and the app end together.
            .process_group(0)
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("DISPLAY", &display.name)
            .env("ANONCHAT_HOME", home)
            .env("ANONCHAT_PROFILE", profile)
            .env("ANONCHAT_SERVER", server)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tauri-driver");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < WAIT, "tauri-driver did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            json!({"application": bin("anonchat")}),
        );
        let client = ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("WebDriver session with the app");
        Desktop {
            driver,
            client,
            profile: profile.to_string(),
            display: display.name.clone(),
            shots: std::env::var_os("ANONCHAT_SCREENSHOTS").map(PathBuf::from),
        }
    }

    /// Onboards as `name` through the UI and waits until the app is connected.
    pub async fn onboard(&self, name: &str) {
        self.wait(page::screen("onboard")).await;
        self.type_into("#onboard-username", name).await;
        self.click("#onboard-submit").await;
        self.wait(page::main_connected()).await;
    }

    /// Asks `friend` (a CLI) for friendship from the UI as `me`; the friend accepts; returns once
    /// the app lists the friend.
    pub async fn befriend(&self, me: &str, friend: &mut crate::cli::Cli, friend_name: &str) {
        self.type_into("#add-username", friend_name).await;
        self.click("#add-submit").await;
        let req = friend.expect_event("friend_request").await;
        assert_eq!(req["from"], me);
        friend
            .ok(json!({"cmd": "accept_friend", "username": me, "safety_number": req["safety_number"]}))
            .await;
        self.wait(page::friend_listed(friend_name)).await;
    }

    /// The app's own process (not WebKit's helpers).
    pub fn pid(&self) -> u32 {
        app_pid(&self.profile).expect("the app's process")
    }

    /// Runs the body of an async function in the page and returns what it returns.
    async fn eval_async(&self, body: &str) -> Value {
        let script = format!("return (async () => {{ {body} }})();");
        tokio::time::timeout(WAIT, self.client.execute(&script, vec![]))
            .await
            .expect("script timed out")
            .expect("script")
    }

    /// Sends `command` through the page's door to the engine (`execute`, the list the CLI drives),
    /// as the page's own script would: the reply's fields, or the error as `{code, message}`.
    pub async fn engine(&self, command: Value) -> Result<Value, Value> {
        let body = format!(
            "return await window.__TAURI__.core.invoke('execute', {{command: {command}}})\
             .then((ok) => ({{ok}}), (err) => ({{err}}));"
        );
        let v = self.eval_async(&body).await;
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(v["err"].clone()),
        }
    }

    /// Invokes the shell's own command `name` (one only the desktop has) as the page would.
    pub async fn shell(&self, name: &str, args: Value) -> Result<Value, Value> {
        let body = format!(
            "return await window.__TAURI__.core.invoke({}, {args})\
             .then((ok) => ({{ok: ok === undefined ? null : ok}}), (err) => ({{err}}));",
            Value::from(name)
        );
        let v = self.eval_async(&body).await;
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(v["err"].clone()),
        }
    }

    /// Waits until the page answers `q` with yes.
    pub async fn wait(&self, q: Q) {
        self.until(&q.what, &q.js).await;
    }

    /// The page's answer to `q` now.
    pub async fn is(&self, q: Q) -> bool {
        self.eval_async(&format!("return !!({});", q.js)).await == Value::Bool(true)
    }

    /// The SHA-256 (hex) of the peer's first line as the page shows it: a canary is checked
    /// without its text ever passing through WebDriver.
    pub async fn peer_line_sha256(&self) -> String {
        let v = self
            .eval_async(
                "const t = document.querySelector('#messages li.theirs').textContent; \
                 const h = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(t)); \
                 return [...new Uint8Array(h)].map(b => b.toString(16).padStart(2, '0')).join('');",
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Picks `value` in the select `id`, as the user would (its change handler runs).
    pub async fn choose(&self, id: &str, value: &str) {
        let (id, value) = (Value::from(id), Value::from(value));
        self.eval_async(&format!(
            "const s = document.getElementById({id}); s.value = {value}; \
             s.dispatchEvent(new Event('change')); return true;"
        ))
        .await;
    }

    /// The focused control's key (see [`CONTROL_KEY`]), or "" when nothing is focused.
    pub async fn focused(&self) -> String {
        self.eval_async(&format!(
            "{CONTROL_KEY} const e = document.activeElement; \
             return (!e || e === document.body) ? '' : keyOf(e);"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The keys of every visible, enabled control a user can Tab to, and the ones among them a
    /// screen reader has no name for.
    pub async fn controls(&self) -> (Vec<String>, Vec<String>) {
        let v = self
            .eval_async(&format!(
                "{CONTROL_KEY} const seen = new Set(); const unnamed = []; \
                 for (const e of document.querySelectorAll('button, input, select, textarea, a[href], [tabindex]')) {{ \
                   if (e.disabled || e.tabIndex < 0 || !e.getClientRects().length) continue; \
                   const name = e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') \
                     || (e.labels && e.labels.length && e.labels[0].textContent.trim()) \
                     || (e.tagName === 'BUTTON' && e.textContent.trim()); \
                   if (!name) unnamed.push(e.id || e.outerHTML.slice(0, 60)); \
                   seen.add(keyOf(e)); \
                 }} \
                 return {{ controls: [...seen], unnamed }};"
            ))
            .await;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        (strings(&v["controls"]), strings(&v["unnamed"]))
    }

    /// Every `confirm()` dialog the page opens from now on is answered yes.
    pub async fn auto_confirm(&self) {
        self.eval_async("window.confirm = () => true; return true;")
            .await;
    }

    /// Waits until `js` (an expression) is truthy in the page.
    async fn until(&self, what: &str, js: &str) {
        let script = format!("return !!({js});");
        let t0 = Instant::now();
        loop {
            // The page can be between documents (panic replaces it): treat errors as "not yet".
            let asked =
                tokio::time::timeout(Duration::from_secs(2), self.client.execute(&script, vec![]))
                    .await;
            if let Ok(Ok(Value::Bool(true))) = asked {
                return;
            }
            assert!(
                t0.elapsed() < WAIT,
                "{}: timed out waiting for {what} (last answer: {asked:?})",
                self.profile
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Clicks what `css` names. The page rebuilds lists as engine events come (a group's members,
    /// the contacts): the element found can be replaced before the click reaches it, and WebKit's
    /// driver then says it no longer exists — nothing was clicked, so it is found again.
    pub async fn click(&self, css: &str) {
        let t0 = Instant::now();
        loop {
            let el = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"));
            match el.click().await {
                Ok(_) => return,
                Err(e)
                    if (e.is_stale_element_reference() || e.is_no_such_element())
                        && t0.elapsed() < WAIT => {}
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// Saves a screenshot of the window as `<name>.png` when `ANONCHAT_SCREENSHOTS` is set.
    pub async fn shot(&self, name: &str) {
        let Some(dir) = &self.shots else { return };
        // Read off the X server: WebKitWebDriver never answers a screenshot of a window that was
        // hidden and shown again from the tray (and then answers nothing more).
        let png = window_png(&self.display).expect("screenshot of the app window");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
