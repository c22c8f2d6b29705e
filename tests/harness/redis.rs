//! A private Redis (Debian's redis-server 7) on loopback: its own port and folder, no
//! persistence (as the server demands), stopped when dropped. `run` again after `stop` restarts it
//! on the same port, empty — as a Redis restart is.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nginx::free_port;
use crate::TempDir;

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
    /// Extra `redis-server` arguments (e.g. `--save 60 1` to test the persistence check).
    pub args: Vec<String>,
    /// With `start_tls`: the certificate it serves (self-signed, for 127.0.0.1), TLS only.
    pub tls_cert: Option<std::path::PathBuf>,
}

impl Redis {
    pub fn start() -> Redis {
        Self::start_with(Vec::new())
    }

    pub fn start_with(args: Vec<String>) -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: TempDir::new("redis"),
            args,
            tls_cert: None,
        };
        r.run();
        r
    }

    /// TLS only (`rediss://`), with a self-signed certificate for 127.0.0.1.
    pub fn start_tls() -> Redis {
        let dir = TempDir::new("redis");
        let (cert, key) = crate::self_signed(&dir.0);
        let port = free_port();
        let args = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        let mut r = Redis {
            child: None,
            port,
            dir,
            args,
            tls_cert: Some(cert),
        };
        r.run();
        r
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls_cert.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts) the server; returns when it answers PING.
    pub fn run(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir.0)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(
            cmd.spawn()
                .expect("redis-server (Debian package redis-server)"),
        );
        let t0 = Instant::now();
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis-cli ARGS…`, its output (raw, one value per line).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut c = Command::new("redis-cli");
        if let Some(cert) = &self.tls_cert {
            c.arg("--tls").arg("--cacert").arg(cert);
        }
        c.args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Every key with its TTL in milliseconds (-1: none) and its value as `redis-cli` prints it
    /// (`DUMP`-free: strings, sets, hashes and sorted sets read as text).
    pub fn contents(&self) -> Vec<(String, i64, String)> {
        let keys = self.cli(&["--scan"]);
        let mut out = Vec::new();
        for key in keys.lines().filter(|k| !k.is_empty()) {
            let ttl: i64 = self.cli(&["PTTL", key]).trim().parse().unwrap_or(-3);
            let value = match self.cli(&["TYPE", key]).trim() {
                "string" => self.cli(&["GET", key]),
                "hash" => self.cli(&["HGETALL", key]),
                "zset" => self.cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
                "set" => self.cli(&["SMEMBERS", key]),
                other => format!("<{other}>"),
            };
            out.push((key.to_string(), ttl, value));
        }
        out
    }

    /// SIGKILL (its data is RAM only: gone).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private Redis Cluster of three primaries on loopback (no replicas, no persistence), ready
/// when every slot is served.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::start_with(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                    ]
                    .map(String::from)
                    .to_vec(),
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let t0 = Instant::now();
        while !nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the cluster did not form"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisCluster { nodes }
    }

    /// The seed nodes, for `--redis-url` with `--redis-cluster`.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(Redis::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every key of every node, as [`Redis::contents`].
    pub fn contents(&self) -> Vec<(String, i64, String)> {
        self.nodes.iter().flat_map(Redis::contents).collect()
    }
}
