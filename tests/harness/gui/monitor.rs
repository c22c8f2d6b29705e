//! `dbus-monitor`, the way the GUI tests watch a bus: its output lines on a channel.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use super::WAIT;

/// A running `dbus-monitor`; killed on drop.
pub struct Monitor {
    child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Monitor {
    /// Starts `dbus-monitor BUS RULE` (`bus`: `--session`, or `--address` and an address) and
    /// returns once it monitors: it prints its own `NameAcquired` first.
    pub fn start(bus: &[&str], rule: &str) -> Monitor {
        let mut child = Command::new("dbus-monitor")
            .args(bus)
            .arg(rule)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-monitor (apt install dbus; scripts/test.sh does)");
        let out = child.stdout.take().expect("dbus-monitor stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let monitor = Monitor { child, lines };
        monitor.next_line_with("NameAcquired");
        monitor
    }

    /// The next line that mentions `what`; panics if none comes within `WAIT`.
    pub fn next_line_with(&self, what: &str) -> String {
        let t0 = Instant::now();
        loop {
            let left = WAIT.saturating_sub(t0.elapsed());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("dbus-monitor never showed {what:?}"));
            if line.contains(what) {
                return line;
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
