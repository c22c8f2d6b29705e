//! A system bus of the test's own with logind's name on it. The container has no systemd, so no
//! real logind: a real `dbus-daemon` stands for the system bus (the app reaches it through
//! `DBUS_SYSTEM_BUS_ADDRESS`, as it would reach the machine's), and this process owns
//! `org.freedesktop.login1` on it, answers which session the app is in as logind does for an app
//! a desktop started in a systemd user scope, and sends logind's
//! `Session.Lock` and `Manager.PrepareForSleep` signals when a test says so.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use super::monitor::Monitor;
use crate::TempDir;

/// The session logind says the app runs in.
pub const OWN_SESSION: &str = "/org/freedesktop/login1/session/c7";
/// Another user's session on the same machine.
pub const OTHER_SESSION: &str = "/org/freedesktop/login1/session/c8";

struct Manager;

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    /// As logind answers an app a desktop launched into a systemd user scope (GNOME, KDE): the
    /// process is in no session…
    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::fdo::Result<zbus::zvariant::OwnedObjectPath> {
        Err(zbus::fdo::Error::Failed(format!(
            "PID {pid} does not belong to any known session"
        )))
    }

    /// …and "auto" names the user's graphical session.
    fn get_session(&self, id: &str) -> zbus::fdo::Result<zbus::zvariant::OwnedObjectPath> {
        match id {
            "auto" => Ok(OWN_SESSION.try_into().expect("a valid object path")),
            _ => Err(zbus::fdo::Error::Failed(format!("no session {id:?}"))),
        }
    }
}

/// The private system bus and the logind on it; both end on drop.
pub struct Logind {
    daemon: Child,
    /// The bus's match rules as clients add them.
    rules: Monitor,
    conn: zbus::Connection,
    /// `unix:path=…`, for the app's `DBUS_SYSTEM_BUS_ADDRESS`.
    pub address: String,
    _dir: TempDir,
}

impl Logind {
    pub async fn start() -> Logind {
        let dir = TempDir::new("system-bus");
        let socket = dir.0.join("system_bus_socket");
        let address = format!("unix:path={}", socket.display());
        let config = dir.0.join("system.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#
            ),
        )
        .expect("bus config");
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt install dbus; scripts/test.sh does)");
        // It prints its address once it listens.
        let mut first = String::new();
        std::io::BufReader::new(daemon.stdout.take().expect("daemon stdout"))
            .read_line(&mut first)
            .expect("dbus-daemon's address");
        assert!(first.starts_with("unix:"), "dbus-daemon said {first:?}");

        let conn = zbus::connection::Builder::address(address.as_str())
            .expect("bus address")
            .name("org.freedesktop.login1")
            .expect("logind's name")
            .serve_at("/org/freedesktop/login1", Manager)
            .expect("logind's manager")
            .build()
            .await
            .expect("on the private system bus");

        let monitor = Monitor::start(
            &["--address", &address],
            "type='method_call',interface='org.freedesktop.DBus',member='AddMatch'",
        );
        Logind {
            daemon,
            rules: monitor,
            conn,
            address,
            _dir: dir,
        }
    }

    /// Returns once some client asked the bus for logind's signals (the app's listener is on).
    pub fn wait_for_a_listener(&self) {
        self.rules.next_line_with("sender='org.freedesktop.login1'");
    }

    /// logind's `Session.Lock` on `session` (`loginctl lock-session` makes logind send it).
    pub async fn lock(&self, session: &str) {
        self.conn
            .emit_signal(
                None::<()>,
                session,
                "org.freedesktop.login1.Session",
                "Lock",
                &(),
            )
            .await
            .expect("Lock sent");
    }

    /// logind's `Manager.PrepareForSleep(start)`: `true` before the machine sleeps, `false` after.
    pub async fn prepare_for_sleep(&self, start: bool) {
        self.conn
            .emit_signal(
                None::<()>,
                "/org/freedesktop/login1",
                "org.freedesktop.login1.Manager",
                "PrepareForSleep",
                &(start,),
            )
            .await
            .expect("PrepareForSleep sent");
    }
}

impl Drop for Logind {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
