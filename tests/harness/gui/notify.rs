//! Desktop notifications as the session bus carries them.

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::WAIT;

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
