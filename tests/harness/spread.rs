//! The whole suite spread over instances: with `ANONCHAT_E2E_INSTANCES=N` (N ≥ 2), every server a
//! test starts (unless pinned to one process) is N instances sharing a fresh PostgreSQL database,
//! a fresh Redis and one secret, behind an nginx balancer that hands each new connection to the
//! next instance — so the clients of one test sit on different instances, and a client that
//! reconnects may land elsewhere.

use crate::nginx::{free_port, Nginx};
use crate::postgres::Postgres;
use crate::redis::Redis;
use crate::server::{Server, ServerOpts};
use crate::TempDir;

/// The rest of a spread deployment, kept alive by its first instance.
pub struct Spread {
    pub others: Vec<Server>,
    pub database_url: String,
    _nginx: Nginx,
    _redis: Redis,
    _pg: Postgres,
    _shared: TempDir,
}

/// How many instances the suite runs on (`None`: one process, the embedded default).
pub fn instances() -> Option<usize> {
    std::env::var("ANONCHAT_E2E_INSTANCES")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n >= 2)
}

pub async fn start(n: usize, opts: ServerOpts, dir: TempDir) -> Server {
    let pg = Postgres::start();
    let database = pg.database("spread");
    let redis = Redis::start();
    let shared = TempDir::new("shared");
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let mut dirs = vec![dir];
    dirs.extend((1..n).map(|_| TempDir::new("instance")));
    let mut servers = Vec::new();
    for dir in dirs {
        let mut extra = vec![
            "--database-url".to_string(),
            database.clone(),
            "--redis-url".to_string(),
            redis.url(),
            "--secret-file".to_string(),
            shared.0.join("server.secret").display().to_string(),
        ];
        extra.extend(opts.extra.iter().cloned());
        let instance = ServerOpts {
            listen: "127.0.0.1:0".into(),
            log: opts.log.clone(),
            // A proxy the test puts in front of the balancer is what clients see.
            public_url: Some(opts.public_url.clone().unwrap_or_else(|| public.clone())),
            extra,
            wrapper: Vec::new(),
            single: true,
            env: opts.env.clone(),
        };
        servers.push(Server::spawn(instance, dir).await);
    }
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let nginx = Nginx::balance(port, &addrs);
    let first = servers.remove(0);
    let front = ([127, 0, 0, 1], port).into();
    first.front(
        front,
        Spread {
            others: servers,
            database_url: database,
            _nginx: nginx,
            _redis: redis,
            _pg: pg,
            _shared: shared,
        },
    )
}
