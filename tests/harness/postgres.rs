//! A private PostgreSQL (Debian's postgresql 15) on loopback: its own data folder and port, trust
//! authentication for one user, stopped and removed when dropped. As root it runs as the `postgres`
//! user (PostgreSQL refuses to run as root).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nginx::free_port;
use crate::TempDir;

pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

fn bin(name: &str) -> PathBuf {
    let dir = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("bin").join(name).exists())
                .max()
        })
        .expect("PostgreSQL server binaries (Debian package postgresql)");
    dir.join("bin").join(name)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args…`, as the postgres user when we are root.
fn command(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = TempDir::new("postgres");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir.0)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the data folder to postgres");
        }
        let data = dir.0.join("data");
        let out = command(bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "anonchat", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            child: None,
            port: free_port(),
            dir,
        };
        pg.run();
        pg
    }

    /// Starts (or restarts) the server on the same data and port; returns when it accepts.
    pub fn run(&mut self) {
        let child = command(bin("postgres"))
            .arg("-D")
            .arg(self.dir.0.join("data"))
            .arg("-k")
            .arg(&self.dir.0)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            let ready = self
                .client("pg_isready")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "postgres did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client tool (`pg_isready`, `createdb`, `psql`) pointed at this server as its one user.
    fn client(&self, tool: &str) -> Command {
        let mut c = Command::new(bin(tool));
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "anonchat",
        ]);
        c
    }

    /// Stops the server (fast shutdown), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGINT: PostgreSQL's fast shutdown. The child may be runuser: signal the process
            // group's postmaster through pg_ctl instead.
            let _ = command(bin("pg_ctl"))
                .arg("-D")
                .arg(self.dir.0.join("data"))
                .args(["stop", "-m", "fast", "-w"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = c.wait();
        }
    }

    /// A fresh database of its own, for one test: `postgres://anonchat@127.0.0.1:PORT/NAME`.
    pub fn database(&self, name: &str) -> String {
        let out = self
            .client("createdb")
            .arg(name)
            .output()
            .expect("createdb");
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("postgres://anonchat@127.0.0.1:{}/{name}", self.port)
    }

    /// `psql -c SQL` on `db`, the output as unaligned text.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .client("psql")
            .args(["-d", db, "-At", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
