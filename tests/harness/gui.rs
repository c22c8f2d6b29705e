//! The real desktop app in real WebKit: an Xvfb display, `tauri-driver` (which runs WebKitWebDriver,
//! which starts the app), and a WebDriver session through `fantoccini`. Also memory dumps (`gcore`)
//! and the app's processes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::bin;

pub const WAIT: Duration = Duration::from_secs(20);

/// GUI tests take turns: each drives a WebKit app and its own display, and all share the one
/// session bus (tray, notifications, keychain) of the test run.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// An Xvfb display, killed on drop.
pub struct Display {
    child: Child,
    pub name: String,
}

impl Display {
    pub fn start() -> Display {
        for _ in 0..20 {
            let n = 100 + rand::random::<u16>() % 800;
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                continue;
            }
            let mut child = Command::new("Xvfb")
                .arg(format!(":{n}"))
                .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb (apt install xvfb; scripts/test.sh does)");
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            let t0 = Instant::now();
            while t0.elapsed() < WAIT {
                if socket.exists() {
                    return Display {
                        child,
                        name: format!(":{n}"),
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("Xvfb :{n} did not start");
        }
        panic!("no free X display number");
    }

    /// Types `text` with real X key events into the focused window.
    pub fn type_text(&self, text: &str) {
        let out = self.run("xdotool", &["type", "--delay", "5", text]);
        assert!(out.status.success(), "xdotool type: {out:?}");
    }

    /// Presses a key (xdotool names: Tab, Return, ctrl+shift+x) in the focused window.
    pub fn key(&self, k: &str) {
        let out = self.run("xdotool", &["key", k]);
        assert!(out.status.success(), "xdotool key {k}: {out:?}");
    }

    /// Runs an X client (xdotool, import) on this display.
    pub fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program)
            .args(args)
            .env("DISPLAY", &self.name)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }
}

impl Display {
    /// A notification daemon (dunst) on this display, as a desktop session has one; killed on drop.
    /// Without one, D-Bus would try to start whatever daemon is installed, outside this display.
    pub fn notification_daemon(&self) -> KillOnDrop {
        let child = Command::new("dunst")
            .env("DISPLAY", &self.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dunst (apt install dunst; scripts/test.sh does)");
        // Ready once it owns the name on the session bus (`gdbus wait` watches for that).
        let waited = Command::new("gdbus")
            .args(["wait", "--session", "--timeout", "20"])
            .arg("org.freedesktop.Notifications")
            .status()
            .expect("gdbus");
        assert!(waited.success(), "dunst did not take the notification name");
        KillOnDrop(child)
    }
}

/// A helper process, killed on drop.
pub struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        self.until("onboarding", "!document.getElementById('onboard').hidden")
            .await;
        self.type_into("#onboard-username", name).await;
        self.click("#onboard-submit").await;
        self.until(
            "the main screen, connected",
            "!document.getElementById('main').hidden \
             && document.getElementById('conn').textContent === 'connected'",
        )
        .await;
    }

    /// Asks `friend` (a CLI) for friendship from the UI as `me`; the friend accepts; returns once
    /// the app lists the friend.
    pub async fn befriend(&self, me: &str, friend: &mut crate::cli::Cli, friend_name: &str) {
        self.type_into("#add-username", friend_name).await;
        self.click("#add-submit").await;
        let req = friend.expect_event("friend_request").await;
        assert_eq!(req["from"], me);
        friend
            .ok(json!({"cmd": "accept_friend", "username": me}))
            .await;
        self.until(
            "the friend listed",
            &format!("document.querySelector('#friends li[data-user=\"{friend_name}\"]')"),
        )
        .await;
    }

    /// The app's own process (not WebKit's helpers).
    pub fn pid(&self) -> u32 {
        app_pid(&self.profile).expect("the app's process")
    }

    /// Runs the body of an async function in the page and returns what it returns.
    pub async fn eval_async(&self, body: &str) -> Value {
        let script = format!("return (async () => {{ {body} }})();");
        tokio::time::timeout(WAIT, self.client.execute(&script, vec![]))
            .await
            .expect("script timed out")
            .expect("script")
    }

    /// Waits until `js` (an expression) is truthy in the page.
    pub async fn until(&self, what: &str, js: &str) {
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
                "{}: timed out waiting for {what}",
                self.profile
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
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

fn proc_env_has(pid: &str, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle))
        .unwrap_or(false)
}

/// The pid of the `anonchat` process running `profile`.
pub fn app_pid(profile: &str) -> Option<u32> {
    let exe = bin("anonchat");
    let needle = format!("ANONCHAT_PROFILE={profile}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().to_string();
        let is_app = std::fs::read_link(format!("/proc/{pid}/exe")).ok()? == exe;
        (is_app && proc_env_has(&pid, needle.as_bytes()))
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// Processes whose parent is `pid` (WebKit's web and network processes for the app).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // Field 4 (after the parenthesised name) is the parent pid.
            let after = stat.rsplit_once(')')?.1;
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then_some(p)
        })
        .collect()
}

/// How many times each of `needles` occurs in the memory of `pid`: every page that is present (or
/// swapped) in a readable mapping, read through `/proc/PID/mem` while the process runs. (`gcore`
/// would stop the app for about 20 s and write some 7 GB here, most of it address space WebKit's
/// JavaScript engine reserves but never touches; `/proc/PID/pagemap` says which pages exist.)
/// With `ANONCHAT_MEMDEBUG` set, each hit is printed with the bytes around it, to tell whose buffer
/// still holds it.
pub fn count_in_memory(pid: u32, needles: &[String]) -> Vec<usize> {
    use std::os::unix::fs::FileExt;
    const PAGE: u64 = 4096;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("/proc/PID/mem");
    let pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).expect("pagemap");
    let finders: Vec<_> = needles
        .iter()
        .map(|n| memchr::memmem::Finder::new(n.as_bytes()).into_owned())
        .collect();
    let mut counts = vec![0; needles.len()];
    // Runs of existing pages are read whole, so a match inside a run is found (chat strings are
    // far shorter than a page run boundary is likely to split).
    let mut scan = |bytes: &[u8]| {
        for (i, f) in finders.iter().enumerate() {
            for at in f.find_iter(bytes) {
                counts[i] += 1;
                if std::env::var_os("ANONCHAT_MEMDEBUG").is_some() {
                    eprint!("[pid {pid}] ");
                    let lo = at.saturating_sub(120);
                    let hi = (at + 80).min(bytes.len());
                    eprintln!(
                        "MEM {}",
                        String::from_utf8_lossy(&bytes[lo..hi]).escape_debug()
                    );
                }
            }
        }
    };
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let name = fields.get(5).copied().unwrap_or("");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        let pages = ((end - start) / PAGE) as usize;
        let mut entries = vec![0u8; pages * 8];
        if pagemap
            .read_exact_at(&mut entries, start / PAGE * 8)
            .is_err()
        {
            continue;
        }
        let exists = |i: usize| {
            let e = u64::from_le_bytes(entries[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            e & (3 << 62) != 0 // Present in RAM, or swapped out.
        };
        let mut i = 0;
        while i < pages {
            if !exists(i) {
                i += 1;
                continue;
            }
            let run_start = i;
            while i < pages && exists(i) {
                i += 1;
            }
            let mut run = vec![0u8; (i - run_start) * PAGE as usize];
            if mem
                .read_exact_at(&mut run, start + run_start as u64 * PAGE)
                .is_ok()
            {
                scan(&run);
            }
        }
    }
    counts
}

/// Clicks an item of the app's tray menu the way a tray host does: over D-Bus, through the menu the
/// app exports (`com.canonical.dbusmenu` of its StatusNotifierItem), found by the item's label.
pub fn tray_click(app_pid: u32, label: &str) {
    let path = "/org/ayatana/NotificationItem/tray_icon_tray_app_main/Menu";
    let gdbus = |args: &[&str]| -> String {
        let out = Command::new("gdbus")
            .arg("call")
            .arg("--session")
            .args(args)
            .output()
            .expect("gdbus");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let names = gdbus(&[
        "--dest",
        "org.freedesktop.DBus",
        "--object-path",
        "/org/freedesktop/DBus",
        "--method",
        "org.freedesktop.DBus.ListNames",
    ]);
    for name in names
        .split('\'')
        .filter(|n| n.starts_with(':'))
        .map(str::to_string)
        .collect::<Vec<_>>()
    {
        let pid = gdbus(&[
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
            "--method",
            "org.freedesktop.DBus.GetConnectionUnixProcessID",
            &name,
        ]);
        if !pid.contains(&format!("uint32 {app_pid},")) {
            continue;
        }
        let layout = gdbus(&[
            "--dest",
            &name,
            "--object-path",
            path,
            "--method",
            "com.canonical.dbusmenu.GetLayout",
            // Other connections of the app (a blocking notification client, say) may never
            // answer; only the tray's matters.
            "--timeout",
            "2",
            "--",
            "0",
            "-1",
            "[]",
        ]);
        // Items look like `(2, {'label': <'Panic: wipe all chats'>, …}, [])`.
        let wanted = format!("'label': <'{label}'>");
        let Some(at) = layout.find(&wanted) else {
            continue;
        };
        let id: String = layout[..at]
            .rsplit('(')
            .next()
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let out = gdbus(&[
            "--dest",
            &name,
            "--object-path",
            path,
            "--method",
            "com.canonical.dbusmenu.Event",
            "--",
            &id,
            "clicked",
            "<int32 0>",
            "0",
        ]);
        assert!(out.contains("()"), "dbusmenu Event: {out}");
        return;
    }
    panic!("the app exports no tray menu item labelled {label:?}");
}

/// What desktop notifications the session bus carries: `dbus-monitor` on the
/// `org.freedesktop.Notifications.Notify` method, as a notification daemon would receive it.
pub struct NotifyMonitor {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl NotifyMonitor {
    pub fn start() -> NotifyMonitor {
        use std::io::BufRead;
        let mut child = Command::new("dbus-monitor")
            .args([
                "--session",
                "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-monitor (apt install dbus)");
        let out = child.stdout.take().expect("dbus-monitor stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // It prints its own NameAcquired signal once it is on the bus and monitoring.
        let t0 = Instant::now();
        loop {
            let left = WAIT.saturating_sub(t0.elapsed());
            let line = lines.recv_timeout(left).expect("dbus-monitor started");
            if line.contains("NameAcquired") {
                break;
            }
        }
        NotifyMonitor { child, lines }
    }

    /// The text arguments of the next `Notify` call (app name, icon, summary, body, …).
    pub fn next(&self) -> Vec<String> {
        let t0 = Instant::now();
        let mut strings = Vec::new();
        let mut inside = false;
        while t0.elapsed() < WAIT {
            let left = WAIT.saturating_sub(t0.elapsed());
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            if line.starts_with("method call") {
                if inside {
                    break;
                }
                inside = line.contains("member=Notify");
                continue;
            }
            if !inside {
                continue;
            }
            // Arguments follow, indented: `   string "…"`, `   uint32 0`, `   array [`, …
            let arg = line.trim_start();
            if let Some(s) = arg.strip_prefix("string \"") {
                strings.push(s.trim_end_matches('"').to_string());
            }
            // The last argument, the timeout, ends the call.
            if arg.starts_with("int32 ") {
                return strings;
            }
        }
        assert!(!strings.is_empty(), "no Notify call within {WAIT:?}");
        strings
    }
}

impl Drop for NotifyMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The largest mapped top-level window on `display` (the app's; there is no window manager) as PNG.
fn window_png(display: &str) -> anyhow::Result<Vec<u8>> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, ImageFormat, MapState};
    let (conn, screen) = x11rb::connect(Some(display))?;
    let root = conn.setup().roots[screen].root;
    let mut best = None;
    for w in conn.query_tree(root)?.reply()?.children {
        if conn.get_window_attributes(w)?.reply()?.map_state != MapState::VIEWABLE {
            continue;
        }
        let g = conn.get_geometry(w)?.reply()?;
        let area = u32::from(g.width) * u32::from(g.height);
        if best.is_none_or(|(_, _, _, a)| area > a) {
            best = Some((w, g.width, g.height, area));
        }
    }
    let (w, width, height, _) = best.ok_or_else(|| anyhow::anyhow!("no window is mapped"))?;
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, w, 0, 0, width, height, !0)?
        .reply()?;
    // 24-bit depth, 32 bits per pixel, little-endian: B, G, R, unused.
    let rgb: Vec<u8> = img
        .data
        .chunks_exact(4)
        .flat_map(|px| [px[2], px[1], px[0]])
        .collect();
    let image = image::RgbImage::from_raw(u32::from(width), u32::from(height), rgb)
        .ok_or_else(|| anyhow::anyhow!("short image"))?;
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}
