//! Desktop notifications as the session bus carries them.

use std::time::Instant;

use super::monitor::Monitor;
use super::WAIT;

/// What desktop notifications the session bus carries: `dbus-monitor` on the
/// `org.freedesktop.Notifications.Notify` method, as a notification daemon would receive it.
pub struct NotifyMonitor(Monitor);

impl NotifyMonitor {
    pub fn start() -> NotifyMonitor {
        NotifyMonitor(Monitor::start(
            &["--session"],
            "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
        ))
    }

    /// The text arguments of the next `Notify` call (app name, icon, summary, body, …).
    pub fn next(&self) -> Vec<String> {
        let t0 = Instant::now();
        let mut strings = Vec::new();
        let mut inside = false;
        while t0.elapsed() < WAIT {
            let left = WAIT.saturating_sub(t0.elapsed());
            let Ok(line) = self.0.lines.recv_timeout(left) else {
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
