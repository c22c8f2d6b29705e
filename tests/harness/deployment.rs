//! The scaled-out shape: one PostgreSQL, one Redis and several server instances sharing them
//! (and one secret file), each on its own port — as behind a balancer, with the test choosing
//! which instance each client talks to.

use crate::nginx::{free_port, Nginx};
use crate::postgres::Postgres;
use crate::redis::{Redis, RedisCluster};
use crate::server::{Server, ServerOpts};
use crate::{unique, TempDir};

pub struct Deployment {
    /// With `clustered`: a Redis Cluster instead of the single `redis` (which then sits unused).
    pub cluster: Option<RedisCluster>,
    pub servers: Vec<Server>,
    /// A balancer in front of every instance (`balanced`), which clients then all use.
    pub balancer: Option<Nginx>,
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
        Self::start_inner(n, extra, None, false).await
    }

    /// As `start`, on a three-node Redis Cluster.
    pub async fn clustered(n: usize, extra: &[&str]) -> Deployment {
        Self::start_inner(n, extra, None, true).await
    }

    /// As `start`, on a Redis that speaks TLS only (`rediss://`); the instances trust its
    /// self-signed certificate through `SSL_CERT_FILE`, as they would a private CA.
    pub async fn over_tls(n: usize, extra: &[&str]) -> Deployment {
        let mut d = Self::start_inner(0, extra, None, false).await;
        d.redis = Redis::start_tls();
        for _ in 0..n {
            let s = d.instance().await;
            d.servers.push(s);
        }
        d
    }

    /// `n` instances behind an nginx balancer (fewest connections first), their public URL the
    /// balancer's: a client whose instance dies reconnects to another through it.
    pub async fn balanced(n: usize, extra: &[&str]) -> Deployment {
        let port = free_port();
        let public = Some(format!("http://127.0.0.1:{port}"));
        let mut d = Self::start_inner(n, extra, public, false).await;
        let addrs: Vec<_> = d.servers.iter().map(|s| s.addr).collect();
        d.balancer = Some(Nginx::balance(port, &addrs));
        d
    }

    async fn start_inner(
        n: usize,
        extra: &[&str],
        public: Option<String>,
        clustered: bool,
    ) -> Deployment {
        let pg = Postgres::start();
        let database_url = pg.database(&unique("db").replace('-', "_"));
        let redis = Redis::start();
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(url) = public {
            extra.extend(["--public-url".to_string(), url]);
        }
        let mut d = Deployment {
            cluster: clustered.then(RedisCluster::start),
            servers: Vec::new(),
            balancer: None,
            redis,
            pg,
            database_url,
            shared: TempDir::new("shared"),
            extra,
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
            match &self.cluster {
                Some(c) => c.urls(),
                None => self.redis.url(),
            },
            "--secret-file".to_string(),
            self.shared.0.join("server.secret").display().to_string(),
        ];
        if self.cluster.is_some() {
            extra.push("--redis-cluster".to_string());
        }
        extra.extend(self.extra.iter().cloned());
        let env = self
            .redis
            .tls_cert
            .iter()
            .map(|c| ("SSL_CERT_FILE".to_string(), c.display().to_string()))
            .collect();
        let opts = ServerOpts {
            env,
            listen: listen.to_string(),
            // "device connected" lines (no names in them) tell which instance a client is on.
            log: "info,anonchat_server::ws=debug".into(),
            extra,
            ..ServerOpts::default()
        };
        Server::start_with(opts, TempDir::new("instance")).await
    }

    pub fn url(&self, i: usize) -> String {
        self.servers[i].url()
    }

    /// Everything Redis holds now (every node of a cluster).
    pub fn redis_contents(&self) -> Vec<(String, i64, String)> {
        match &self.cluster {
            Some(c) => c.contents(),
            None => self.redis.contents(),
        }
    }

    /// The balancer's URL.
    pub fn front(&self) -> String {
        self.balancer.as_ref().expect("a balanced deployment").url()
    }

    /// Which instance logged `n` connected devices (with `ANONCHAT_LOG` at debug), if one did.
    pub fn instance_with_devices(&self, n: usize) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| s.log().matches("device connected").count() == n)
    }

    /// A client behind the balancer, registered and connected; returns it with the instance it
    /// landed on (told by the instances' logs: the one whose `device connected` lines grew by one, as
    /// `connected` devices are then connected in all).
    pub async fn connect_behind(
        &self,
        home: &TempDir,
        name: &str,
        connected: usize,
    ) -> (crate::cli::Cli, usize) {
        let d = self;
        let counts = || -> Vec<usize> {
            d.servers
                .iter()
                .map(|s| s.log().matches("device connected").count())
                .collect()
        };
        let before = counts();
        let mut c = crate::cli::Cli::start(&unique("pf"), &home.0, &d.front()).await;
        c.register(name).await;
        c.connect().await;
        // The instance logs "device connected" after it sent the answer the client waited for.
        let t0 = std::time::Instant::now();
        while counts().iter().sum::<usize>() < connected {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "the instances logged {:?} connections, not {connected}",
                counts()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let after = counts();
        assert_eq!(after.iter().sum::<usize>(), connected, "{after:?}");
        let on = (0..after.len())
            .find(|i| after[*i] == before[*i] + 1)
            .expect("the client's instance");
        (c, on)
    }
}
