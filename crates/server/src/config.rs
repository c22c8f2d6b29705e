//! Server configuration: flags, each with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "anonchat-server",
    version,
    about = "AnonChat directory and signaling server"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "ANONCHAT_LISTEN", default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, apart from the clients' (off
    /// unless set; keep it private: counts, never who).
    #[arg(long, env = "ANONCHAT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Database URL. SQLite is embedded: `sqlite://PATH` (created if missing).
    #[arg(
        long,
        env = "ANONCHAT_DATABASE_URL",
        default_value = "sqlite://anonchat-server.db"
    )]
    pub database_url: String,
    /// Share presence, rings, routes and abuse counters with other instances through Redis 7+
    /// (`redis://` or `rediss://`); with `--database-url postgres://…`, any number of instances
    /// can then serve behind one balancer. They must share the secret file too.
    #[arg(long, env = "ANONCHAT_REDIS_URL")]
    pub redis_url: Option<String>,
    /// `--redis-url` is a Redis Cluster: there, a comma-separated list of seed nodes.
    #[arg(long, env = "ANONCHAT_REDIS_CLUSTER", requires = "redis_url")]
    pub redis_cluster: bool,
    /// Start even if Redis writes snapshots or an append-only file (rings and presence would
    /// reach its disk; P2). Without it such a Redis is refused.
    #[arg(long, env = "ANONCHAT_REDIS_ALLOW_PERSISTENCE")]
    pub redis_allow_persistence: bool,
    /// With Redis: seconds a device's presence entry, and an instance's "alive" key, live unless
    /// refreshed (a third of this). A dead instance's devices stop counting as online, and its
    /// rings end for callees elsewhere, within this (at least 3).
    #[arg(long, env = "ANONCHAT_PRESENCE_TTL_SECS", default_value_t = 30)]
    pub presence_ttl_secs: u64,
    /// The origin clients reach this server at (`http(s)://host:port`), which devices sign when they
    /// authenticate. Defaults to the listen address. Set it when behind a proxy.
    #[arg(long, env = "ANONCHAT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The server's secret (32 random bytes, made on first start), from which every account's code
    /// seed is derived. Keep it with the database: a new secret changes every code.
    #[arg(
        long,
        env = "ANONCHAT_SECRET_FILE",
        default_value = "anonchat-server.secret"
    )]
    pub secret_file: PathBuf,
    /// PEM certificate chain: terminate TLS here (otherwise plain HTTP, e.g. behind a proxy).
    #[arg(long, env = "ANONCHAT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "ANONCHAT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Proof-of-work bits a registration must pay (each bit doubles the work).
    #[arg(long, env = "ANONCHAT_REGISTER_POW_BITS", default_value_t = 18)]
    pub register_pow_bits: u8,
    /// Most simultaneous WebSocket connections from one IP address.
    #[arg(long, env = "ANONCHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 32)]
    pub max_connections_per_ip: usize,
    /// Most WebSockets at once (devices connected). Unset: from the open-file limit, leaving room
    /// for the database and for short requests such as `/healthz`.
    #[arg(long, env = "ANONCHAT_MAX_WEBSOCKETS")]
    pub max_websockets: Option<usize>,
    /// Most simultaneous TCP connections from one IP address (IPv6: one prefix), counted from
    /// the moment they are accepted, finished requests or not. Trusted proxies are exempt.
    #[arg(long, env = "ANONCHAT_MAX_TCP_PER_IP", default_value_t = 64)]
    pub max_tcp_per_ip: usize,
    /// Seconds a connection may take to send a request's headers (and may sit idle between
    /// requests) before it is closed.
    #[arg(long, env = "ANONCHAT_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// A reverse proxy's address or network (repeat, or comma-separate): only from these is
    /// `X-Forwarded-For` believed, and they are not capped per address themselves.
    #[arg(long, env = "ANONCHAT_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxy: Vec<String>,
    /// Bits of an IPv6 address that name one client for the per-address limits (a /64 is what
    /// one subscriber gets).
    #[arg(long, env = "ANONCHAT_IPV6_PREFIX", default_value_t = 64)]
    pub ipv6_prefix: u8,
    /// Messages one socket is served per second; past it (and the burst) the socket is not read
    /// until the budget allows.
    #[arg(
        long,
        env = "ANONCHAT_SOCKET_MESSAGES_PER_SECOND",
        default_value_t = 200
    )]
    pub socket_messages_per_second: u32,
    #[arg(long, env = "ANONCHAT_SOCKET_MESSAGE_BURST", default_value_t = 400)]
    pub socket_message_burst: u32,
    /// KiB one socket is served per second (bursts of four seconds' worth).
    #[arg(long, env = "ANONCHAT_SOCKET_KIB_PER_SECOND", default_value_t = 128)]
    pub socket_kib_per_second: u32,
    /// Lookups, rings and friend requests allowed per minute, per IP, per device and per account.
    #[arg(long, env = "ANONCHAT_GATE_PER_MINUTE", default_value_t = 60)]
    pub gate_per_minute: u32,
    /// How many of those may come at once before the per-minute rate applies.
    #[arg(long, env = "ANONCHAT_GATE_BURST", default_value_t = 20)]
    pub gate_burst: u32,
    /// Every lookup, ring and friend request is answered no sooner than this after it arrived, so
    /// the work behind an answer ("no such user" or "offline") cannot be timed from outside.
    #[arg(long, env = "ANONCHAT_GATE_FLOOR_MS", default_value_t = 10)]
    pub gate_floor_ms: u64,
    /// Proof-of-work bits a lookup, ring or friend request pays when it must carry a stamp: always
    /// with a code, and after repeated "not found" answers.
    #[arg(long, env = "ANONCHAT_CONTACT_POW_BITS", default_value_t = 16)]
    pub contact_pow_bits: u8,
    /// "Not found" answers to one account (4× that to one IP address), within 15 minutes, before
    /// its requests must wait 1 s, 2 s, 4 s … (up to 5 minutes) after the latest. 0 turns it off.
    #[arg(long, env = "ANONCHAT_BACKOFF_AFTER", default_value_t = 5)]
    pub backoff_after: u32,
    /// "Not found" answers (as above) before every lookup, ring and friend request needs a
    /// proof-of-work stamp. 0 turns it off.
    #[arg(long, env = "ANONCHAT_POW_AFTER", default_value_t = 10)]
    pub pow_after: u32,
    /// How long a ring rings, and how long a friend's ring waits for an offline account to connect.
    #[arg(long, env = "ANONCHAT_RING_TIMEOUT_SECS", default_value_t = 30)]
    pub ring_timeout_secs: u64,
    /// STUN servers for clients (`stun:HOST:PORT`), repeatable or comma-separated.
    #[arg(long = "stun-url", env = "ANONCHAT_STUN_URLS", value_delimiter = ',')]
    pub stun_urls: Vec<String>,
    /// TURN servers (coturn) for clients (`turn:HOST:PORT?transport=udp`), repeatable or
    /// comma-separated. With a relay, clients hide their IP address from peers by default.
    #[arg(long = "turn-url", env = "ANONCHAT_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,
    /// A file holding the secret shared with coturn (its `static-auth-secret`), from which
    /// short-lived TURN credentials are made.
    #[arg(long, env = "ANONCHAT_TURN_SECRET_FILE")]
    pub turn_secret_file: Option<PathBuf>,
    /// How long a TURN credential is valid. Clients ask for a fresh one before a session when
    /// theirs is close to expiring.
    #[arg(long, env = "ANONCHAT_TURN_TTL_SECS", default_value_t = 3600)]
    pub turn_ttl_secs: u64,
    /// Strict server mode: no wake intents, and no log line about any account at all.
    #[arg(long, env = "ANONCHAT_STRICT")]
    pub strict: bool,
    /// Write the log to one file per day in this folder instead of standard error.
    #[arg(long, env = "ANONCHAT_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Days log files are kept (with `--log-dir`, older ones are deleted). 0: no log at all.
    #[arg(long, env = "ANONCHAT_LOG_RETENTION_DAYS", default_value_t = 7)]
    pub log_retention_days: u32,
    /// Log filter (tracing syntax). Logs never carry usernames, IPs or content.
    #[arg(long, env = "ANONCHAT_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// `bound` is the address actually listened on (the port may have been 0).
    pub fn origin(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => anonchat_proto::wire::normalize_origin(u),
            None => {
                let scheme = if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{bound}")
            }
        }
    }
}

/// The ICE servers to hand out, with the TURN secret read from its file (surrounding whitespace
/// dropped, as coturn's config file would).
pub fn turn(cfg: &Config) -> Result<crate::turn::Turn, crate::serve::ServeError> {
    let secret = match &cfg.turn_secret_file {
        Some(p) => {
            let raw = zeroize::Zeroizing::new(std::fs::read(p).map_err(|source| {
                crate::serve::ServeError::File {
                    path: p.clone(),
                    source,
                }
            })?);
            Some(zeroize::Zeroizing::new(raw.trim_ascii().to_vec()))
        }
        None => None,
    };
    Ok(crate::turn::Turn::new(
        cfg.stun_urls.clone(),
        cfg.turn_urls.clone(),
        secret,
        std::time::Duration::from_secs(cfg.turn_ttl_secs),
    )?)
}

/// Reads the server secret, making it (readable by the owner only) on first start.
pub fn load_or_create_secret(
    path: &std::path::Path,
) -> std::io::Result<zeroize::Zeroizing<[u8; 32]>> {
    use std::io::Write;
    let mut secret = zeroize::Zeroizing::new([0u8; 32]);
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => secret.copy_from_slice(&bytes),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a 32-byte secret", path.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut *secret);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            opts.open(path)?.write_all(&*secret)?;
        }
        Err(e) => return Err(e),
    }
    Ok(secret)
}
