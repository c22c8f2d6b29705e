//! The real server as a child process.

use std::net::SocketAddr;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{bin, TempDir};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
    /// With `ANONCHAT_E2E_INSTANCES`: the other instances, the balancer in front (at `addr`),
    /// Redis and PostgreSQL (spread.rs).
    spread: Option<Box<crate::spread::Spread>>,
    /// With `ANONCHAT_E2E_HOSTILE=1`: the tampering proxy in front (at `addr`), hostile.rs.
    hostile: Option<Box<crate::hostile::Hostile>>,
}

pub struct ServerOpts {
    pub listen: String,
    /// The server's log filter; its log goes to `server.log` in its folder.
    pub log: String,
    pub public_url: Option<String>,
    pub extra: Vec<String>,
    /// A command prefix to run the server under (e.g. `ip netns exec NS`).
    pub wrapper: Vec<String>,
    /// One process even when the suite runs spread over instances (the test restarts it on its
    /// own database, or is about one process).
    pub single: bool,
    /// Extra environment for the server process.
    pub env: Vec<(String, String)>,
}

impl ServerOpts {
    /// Flags that lift the per-account limit on rings and lookups, for benches that ring many
    /// times in a row.
    pub fn lifted_gate() -> Vec<String> {
        ["--gate-per-minute", "100000", "--gate-burst", "10000"]
            .map(String::from)
            .to_vec()
    }
}

impl Default for ServerOpts {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            log: "info".into(),
            public_url: None,
            extra: Vec::new(),
            wrapper: Vec::new(),
            single: false,
            env: Vec::new(),
        }
    }
}

fn log_file(dir: &TempDir) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.0.join("server.log"))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::inherit())
}

impl Server {
    /// Where the server keeps its rows, for a test to read (sqlx `Any`: `$1` placeholders).
    pub fn database_url(&self) -> String {
        match &self.spread {
            Some(s) => s.database_url.clone(),
            None => format!(
                "sqlite://{}?mode=ro",
                self.dir.0.join("server.db").display()
            ),
        }
    }

    /// Each instance's log (one entry for a single process).
    pub fn instance_logs(&self) -> Vec<String> {
        let mut logs =
            vec![std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default()];
        logs.extend(
            self.spread
                .iter()
                .flat_map(|s| s.others.iter().map(|o| o.log())),
        );
        logs
    }

    /// Everything the server (every instance of it) has logged so far.
    pub fn log(&self) -> String {
        let mut log = std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default();
        for other in self.spread.iter().flat_map(|s| s.others.iter()) {
            log += &other.log();
        }
        log
    }

    pub async fn start() -> Server {
        Self::start_with(ServerOpts::default(), TempDir::new("server")).await
    }

    /// Starts on `opts.listen` with its database in `dir` (reuse `dir` to restart the same server).
    /// With `ANONCHAT_E2E_INSTANCES=N` set, a server the test does not pin to one process is N
    /// instances on PostgreSQL and Redis behind a balancer at one address.
    pub async fn start_with(opts: ServerOpts, dir: TempDir) -> Server {
        let pinned = opts.single
            || !opts.wrapper.is_empty()
            || opts.extra.iter().any(|a| a == "--database-url");
        // A test that plays the server itself (its own proxy), restarts one at a fixed address, or
        // speaks TLS runs as it is under the hostile server.
        let hostile = crate::hostile::enabled()
            && !pinned
            && opts.public_url.is_none()
            && opts.listen == ServerOpts::default().listen
            && !opts.extra.iter().any(|a| a == "--tls-cert");
        match crate::spread::instances() {
            Some(n) if !pinned => crate::spread::start(n, opts, dir).await,
            _ if hostile => crate::hostile::start(opts, dir).await,
            _ => Self::spawn(opts, dir).await,
        }
    }

    /// One server process.
    pub(crate) async fn spawn(opts: ServerOpts, dir: TempDir) -> Server {
        let mut cmd = match opts.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin("anonchat-server"));
                c
            }
            None => Command::new(bin("anonchat-server")),
        };
        cmd.arg("--listen").arg(&opts.listen);
        // SQLite in the server's folder, unless the test gives a database (PostgreSQL).
        if !opts.extra.iter().any(|a| a == "--database-url") {
            cmd.arg("--database-url")
                .arg(format!("sqlite://{}/server.db", dir.0.display()));
        }
        // Instances of one deployment share a secret: a test may name the file.
        if !opts.extra.iter().any(|a| a == "--secret-file") {
            cmd.arg("--secret-file").arg(dir.0.join("server.secret"));
        }
        cmd.args(&opts.extra)
            .env("ANONCHAT_LOG", &opts.log)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file(&dir))
            .kill_on_drop(true);
        if let Some(u) = &opts.public_url {
            cmd.arg("--public-url").arg(u);
        }
        // Cheap registrations under test, unless the test sets its own.
        if !opts.extra.iter().any(|a| a == "--register-pow-bits") {
            cmd.arg("--register-pow-bits").arg("8");
        }
        let mut child = cmd.spawn().expect("start anonchat-server");
        let stdout = child.stdout.take().expect("server stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("server did not start in time")
            .expect("read server stdout")
            .expect("server exited before listening");
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected server banner: {line}"));
        // Keep draining stdout so the server never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            child,
            addr,
            dir,
            spread: None,
            hostile: None,
        }
    }

    /// Puts the hostile proxy's address in front and keeps it alive (hostile.rs).
    pub(crate) fn behind(mut self, addr: SocketAddr, hostile: crate::hostile::Hostile) -> Server {
        self.addr = addr;
        self.watched(hostile)
    }

    /// Keeps the hostile server's watch over this server's clients (hostile.rs).
    pub(crate) fn watched(mut self, hostile: crate::hostile::Hostile) -> Server {
        self.hostile = Some(Box::new(hostile));
        self
    }

    /// Puts the balancer's address in front and keeps the rest of the deployment alive.
    pub(crate) fn front(mut self, addr: SocketAddr, spread: crate::spread::Spread) -> Server {
        self.addr = addr;
        self.spread = Some(Box::new(spread));
        self
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("server pid")
    }

    /// SIGKILL, and give back the data folder for a restart.
    pub async fn kill(mut self) -> TempDir {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
        self.dir
    }

    /// SIGTERM: the graceful path.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.pid();
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.child.wait())
            .await
            .expect("server did not stop on SIGTERM")
            .expect("wait for server")
    }
}

/// The usernames the server's database (`Server::database_url`) has accounts for.
pub async fn accounts(db: &str) -> std::collections::BTreeSet<String> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db)
        .await
        .expect("the server's database");
    let names = sqlx::query("SELECT username FROM accounts")
        .fetch_all(&pool)
        .await
        .expect("accounts")
        .iter()
        .map(|r| r.get::<String, _>("username"))
        .collect();
    pool.close().await;
    names
}
