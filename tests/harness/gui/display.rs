//! The X11 side: an Xvfb display, keys and text typed into it, a notification daemon on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::monitor::Monitor;
use super::WAIT;

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
        self.session_service(&["dunst"], "org.freedesktop.Notifications")
    }

    /// A real screen locker on this display (gnome-screensaver, which says so on the session bus
    /// with `org.gnome.ScreenSaver.ActiveChanged`); killed on drop.
    pub fn screen_locker(&self) -> KillOnDrop {
        self.session_service(
            &["gnome-screensaver", "--no-daemon"],
            "org.gnome.ScreenSaver",
        )
    }

    /// Starts `command` on this display; ready once it owns `name` on the session bus (`gdbus
    /// wait` watches for that). Killed on drop.
    fn session_service(&self, command: &[&str], name: &str) -> KillOnDrop {
        let (program, args) = command.split_first().expect("a program");
        let child = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} (scripts/test.sh installs it): {e}"));
        let waited = Command::new("gdbus")
            .args(["wait", "--session", "--timeout", "20", name])
            .status()
            .expect("gdbus");
        assert!(
            waited.success(),
            "{program} did not take {name} on the session bus"
        );
        KillOnDrop(child)
    }

    /// Locks the screen with the locker, as the user's lock key would; returns once the locker
    /// told the session bus (`ActiveChanged(true)`, watched by `dbus-monitor`).
    pub fn lock_screen(&self) {
        let monitor = Monitor::start(
            &["--session"],
            "type='signal',interface='org.gnome.ScreenSaver',member='ActiveChanged'",
        );
        let out = self.run("gnome-screensaver-command", &["--lock"]);
        assert!(
            out.status.success(),
            "gnome-screensaver-command --lock: {out:?}"
        );
        monitor.next_line_with("boolean true");
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
