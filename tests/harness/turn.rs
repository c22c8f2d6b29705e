//! A real coturn (`turnserver`) for the tests, with coturn's REST credential scheme
//! (`use-auth-secret`): the AnonChat server mints credentials from the same shared secret.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

pub struct Coturn {
    child: Child,
    pub port: u16,
    pub ip: String,
    /// The folder with the shared-secret file and coturn's log.
    pub dir: TempDir,
    pub secret_file: std::path::PathBuf,
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}

/// A STUN Binding request; coturn answers it once it listens.
fn stun_answers(port: u16) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(&rand::random::<[u8; 12]>());
    if sock.send_to(&req, ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(sock.recv_from(&mut buf), Ok((n, _)) if n >= 20 && buf[0] == 0x01 && buf[1] == 0x01)
}

impl Coturn {
    /// coturn on loopback with the shared secret `secret`, ready when this returns.
    pub fn start(secret: &str) -> Coturn {
        let port = free_udp_port();
        // Relay ports from a range of their own, so tests running side by side don't collide.
        let base = 20000 + (rand::random::<u16>() % 400) * 100;
        let turn = Self::spawn(
            &[],
            "127.0.0.1",
            port,
            (base, base + 99),
            secret,
            &["--allow-loopback-peers"],
        );
        let t0 = Instant::now();
        while !stun_answers(port) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "coturn did not answer STUN"
            );
        }
        turn
    }

    /// `turnserver` under `wrapper` (may be empty) on `ip:port`, relaying from `ports`, with coturn's
    /// REST credential scheme over `secret` and a verbose log in its own folder.
    fn spawn(
        wrapper: &[String],
        ip: &str,
        port: u16,
        ports: (u16, u16),
        secret: &str,
        extra: &[&str],
    ) -> Coturn {
        let dir = TempDir::new("coturn");
        let secret_file = dir.0.join("turn.secret");
        std::fs::write(&secret_file, secret).expect("secret file");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("turnserver");
                c
            }
            None => Command::new("turnserver"),
        };
        let child = cmd
            .args([
                "-n",
                &format!("--listening-ip={ip}"),
                &format!("--relay-ip={ip}"),
            ])
            .arg(format!("--listening-port={port}"))
            .arg(format!("--min-port={}", ports.0))
            .arg(format!("--max-port={}", ports.1))
            .args([
                "--use-auth-secret",
                &format!("--static-auth-secret={secret}"),
            ])
            .args([
                "--realm=anonchat",
                "--no-tls",
                "--no-dtls",
                "--no-tcp-relay",
            ])
            .args(["--no-cli", "--simple-log", "--verbose"])
            .args(extra)
            .arg(format!("--log-file={}", dir.0.join("turn.log").display()))
            .arg(format!("--pidfile={}", dir.0.join("turn.pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnserver (apt-get install coturn)");
        Coturn {
            child,
            port,
            ip: ip.to_string(),
            dir,
            secret_file,
        }
    }

    pub fn url(&self) -> String {
        format!("turn:{}:{}?transport=udp", self.ip, self.port)
    }

    /// The AnonChat server's flags for this coturn: it as STUN server and as TURN relay, with
    /// credentials minted from `secret_file` (normally this coturn's own, [`Coturn::secret_file`]).
    pub fn server_args(&self, secret_file: &std::path::Path) -> Vec<String> {
        vec![
            "--stun-url".into(),
            format!("stun:{}:{}", self.ip, self.port),
            "--turn-url".into(),
            self.url(),
            "--turn-secret-file".into(),
            secret_file.display().to_string(),
        ]
    }

    /// coturn inside a network namespace (`wrapper`: `ip netns exec NS`), on address `ip`.
    /// As in docs/deploy/turnserver.conf, it refuses to relay to private and loopback addresses:
    /// a relay on the internet must not be a way into its own network. (Without that, coturn here
    /// tears an allocation down when a peer's private host candidate turns out unroutable.)
    pub fn start_in(wrapper: &[String], ip: &str, secret: &str) -> Coturn {
        let turn = Self::spawn(
            wrapper,
            ip,
            3478,
            (49152, 49300),
            secret,
            &[
                "--no-multicast-peers",
                "--denied-peer-ip=10.0.0.0-10.255.255.255",
                "--denied-peer-ip=127.0.0.0-127.255.255.255",
                "--denied-peer-ip=::1",
            ],
        );
        let t0 = Instant::now();
        loop {
            let probe = Command::new(&wrapper[0])
                .args(&wrapper[1..])
                .args(["timeout", "1", "turnutils_stunclient", "-p", "3478", ip])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if probe.is_ok_and(|s| s.success()) {
                return turn;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "coturn did not answer STUN"
            );
        }
    }

    /// What coturn logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("turn.log")).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
