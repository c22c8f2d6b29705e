//! The scaled-out shape: one PostgreSQL, one Redis and several server instances sharing them
//! (and one secret file), each on its own port — as behind a balancer, with the test choosing
//! which instance each client talks to.

use crate::postgres::Postgres;
use crate::redis::Redis;
use crate::server::{Server, ServerOpts};
use crate::{unique, TempDir};

pub struct Deployment {
    pub servers: Vec<Server>,
    pub redis: Redis,
    pub pg: Postgres,
    pub database_url: String,
    /// Holds the shared secret file.
    pub shared: TempDir,
    pub extra: Vec<String>,
}

impl Deployment {
    /// `n` instances on one fresh database and a fresh Redis; `extra` flags for every instance.
    pub async fn start(n: usize, extra: &[&str]) -> Deployment {
        let pg = Postgres::start();
        let database_url = pg.database(&unique("db").replace('-', "_"));
        let redis = Redis::start();
        let mut d = Deployment {
            servers: Vec::new(),
            redis,
            pg,
            database_url,
            shared: TempDir::new("shared"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for _ in 0..n {
            let s = d.instance().await;
            d.servers.push(s);
        }
        d
    }

    /// One more instance of this deployment (not added to `servers`).
    pub async fn instance(&self) -> Server {
        self.instance_on("127.0.0.1:0").await
    }

    /// An instance listening on `listen` (to restart one on the port it had).
    pub async fn instance_on(&self, listen: &str) -> Server {
        let mut extra = vec![
            "--database-url".to_string(),
            self.database_url.clone(),
            "--redis-url".to_string(),
            self.redis.url(),
            "--secret-file".to_string(),
            self.shared.0.join("server.secret").display().to_string(),
        ];
        extra.extend(self.extra.iter().cloned());
        let opts = ServerOpts {
            listen: listen.to_string(),
            extra,
            ..ServerOpts::default()
        };
        Server::start_with(opts, TempDir::new("instance")).await
    }

    pub fn url(&self, i: usize) -> String {
        self.servers[i].url()
    }
}
