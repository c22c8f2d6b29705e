//! The server's wiring: state from the configuration, the ticker, and the HTTP/WebSocket listener.
//! `main.rs` only parses flags and waits for a signal; tests can run a server in-process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::accept::CappedAcceptor;
use crate::app::App;
use crate::client_ip::{ClientIp, ClientIpError};
use crate::http::router;
use crate::hub::{Hub, HubConfig};
use crate::limits::PerIp;
use crate::logs::Sink;
use crate::store::{Store, StoreError};
use crate::turn::TurnError;
use crate::Config;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("opening the database: {0}")]
    Store(#[from] StoreError),
    #[error("reading {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TURN configuration: {0}")]
    Turn(#[from] TurnError),
    #[error("--trusted-proxy: {0}")]
    TrustedProxy(#[from] ClientIpError),
    #[error("loading the TLS certificate and key: {0}")]
    Tls(std::io::Error),
    #[error("--redis-url: {0}")]
    Redis(#[from] crate::cluster::ClusterError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// A server ready to serve on a bound listener: the state is built (database open, secret read),
/// nothing is accepted yet.
pub struct Server {
    cfg: Config,
    listener: std::net::TcpListener,
    app: Arc<App>,
    store: Store,
    metrics_listener: Option<std::net::TcpListener>,
    tcp_cap: usize,
    frames: Option<tokio::sync::mpsc::UnboundedReceiver<crate::cluster::Incoming>>,
}

impl Server {
    pub async fn new(cfg: Config, listener: std::net::TcpListener) -> Result<Self, ServeError> {
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let store = Store::open(&cfg.database_url).await?;
        let secret = crate::config::load_or_create_secret(&cfg.secret_file).map_err(|source| {
            ServeError::File {
                path: cfg.secret_file.clone(),
                source,
            }
        })?;
        let client_ip = Arc::new(ClientIp::new(&cfg.trusted_proxy, cfg.ipv6_prefix)?);
        let metrics_listener = match cfg.metrics_listen {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let (cluster, frames) = match &cfg.redis_url {
            Some(url) => {
                let (c, rx) = crate::cluster::Cluster::connect(
                    &crate::cluster::Shape::new(url, cfg.redis_cluster),
                    &secret,
                    cfg.redis_allow_persistence,
                    Duration::from_secs(cfg.presence_ttl_secs),
                    metrics.clone(),
                )
                .await?;
                (Some(c), Some(rx))
            }
            None => (None, None),
        };
        let hub_config = HubConfig {
            ring_timeout: Duration::from_secs(cfg.ring_timeout_secs),
            wake_intents: !cfg.strict,
            quiet: cfg.strict,
            gate_per_minute: cfg.gate_per_minute,
            gate_burst: cfg.gate_burst,
            gate_floor: Duration::from_millis(cfg.gate_floor_ms),
            contact_pow_bits: cfg.contact_pow_bits,
            backoff_after: cfg.backoff_after,
            pow_after: cfg.pow_after,
            turn: crate::config::turn(&cfg)?,
            metrics,
            cluster,
        };
        let caps = crate::capacity::caps(crate::capacity::open_file_limit(), cfg.max_websockets)
            .unwrap_or(crate::capacity::Caps {
                tcp: usize::MAX,
                websockets: usize::MAX,
            });
        let app = Arc::new(App {
            hub: Hub::new(store.clone(), secret, hub_config),
            quiet: cfg.strict,
            origin: cfg.origin(bound),
            pow_bits: cfg.register_pow_bits,
            per_ip: PerIp::new(cfg.max_connections_per_ip),
            websockets: crate::capacity::Counter::new(caps.websockets),
            client_ip,
            pace: crate::pace::Budget {
                messages_per_second: cfg.socket_messages_per_second,
                message_burst: cfg.socket_message_burst,
                kib_per_second: cfg.socket_kib_per_second,
            },
            shutdown: CancellationToken::new(),
            spent: Mutex::new(HashMap::new()),
        });
        Ok(Self {
            cfg,
            listener,
            app,
            store,
            metrics_listener,
            tcp_cap: caps.tcp,
            frames,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref()?.local_addr().ok()
    }

    /// The origin devices sign when they authenticate.
    pub fn origin(&self) -> &str {
        &self.app.origin
    }

    /// Serves until `shutdown`, then closes sockets (5 s grace) and the database.
    pub async fn run(self, log_sink: Sink, shutdown: CancellationToken) -> Result<(), ServeError> {
        let Self {
            cfg,
            listener,
            app,
            store,
            metrics_listener,
            tcp_cap,
            frames,
        } = self;
        let ticker = tokio::spawn(tick(app.clone(), log_sink));
        if let Some(frames) = frames {
            let app = app.clone();
            tokio::spawn(async move { app.hub.follow(frames).await });
        }
        let metrics = metrics_listener.map(|l| tokio::spawn(serve_metrics(l, app.clone())));
        let handle = axum_server::Handle::new();
        let service = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
        // Counted per address from the accept on, and a deadline on every request's headers (and
        // on idle keep-alive connections): a half-open request cannot hold a slot for long (P9).
        let capped = CappedAcceptor::new(
            cfg.max_tcp_per_ip,
            app.client_ip.clone(),
            crate::capacity::Counter::new(tcp_cap),
        );
        let header_timeout = Duration::from_secs(cfg.header_timeout_secs.max(1));
        let server = {
            let handle = handle.clone();
            let tls = match (&cfg.tls_cert, &cfg.tls_key) {
                (Some(cert), Some(key)) => Some(
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                        .await
                        .map_err(ServeError::Tls)?,
                ),
                _ => None,
            };
            tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        // The TLS handshake has axum-server's own 10 s deadline.
                        let acceptor =
                            axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(capped);
                        let mut srv = axum_server::from_tcp(listener)
                            .acceptor(acceptor)
                            .handle(handle);
                        http1_with_deadlines(srv.http_builder(), header_timeout);
                        srv.serve(service).await
                    }
                    None => {
                        let mut srv = axum_server::from_tcp(listener)
                            .acceptor(capped)
                            .handle(handle);
                        http1_with_deadlines(srv.http_builder(), header_timeout);
                        srv.serve(service).await
                    }
                }
            })
        };
        let mut server = server;
        let early = tokio::select! {
            _ = shutdown.cancelled() => None,
            // The listener failed by itself: stop the rest and say why.
            r = &mut server => Some(r),
        };
        tracing::info!("shutting down");
        app.shutdown.cancel();
        handle.graceful_shutdown(Some(Duration::from_secs(5)));
        let _ = ticker.await;
        if let Some(m) = metrics {
            let _ = m.await;
        }
        let served = match early {
            Some(r) => r,
            None => server.await,
        };
        store.close().await;
        Ok(served.map_err(std::io::Error::other)??)
    }
}

/// `GET /metrics` on its own listener until shutdown.
async fn serve_metrics(listener: std::net::TcpListener, app: Arc<App>) {
    use axum::routing::get;
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let stop = app.shutdown.clone();
    let router = axum::Router::new().route(
        "/metrics",
        get(move || async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    crate::metrics::CONTENT_TYPE,
                )],
                app.hub.metrics().render(),
            )
        }),
    );
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "metrics listener failed");
    }
}

/// Expiries twice a second; log pruning hourly.
async fn tick(app: Arc<App>, log_sink: Sink) {
    let stop = app.shutdown.clone();
    let mut every = tokio::time::interval(Duration::from_millis(500));
    let mut hourly = tokio::time::interval(Duration::from_secs(3600));
    let mut probe = tokio::time::interval(Duration::from_secs(10));
    // With Redis: presence entries refreshed, dead owners' rings ended (hub/remote.rs).
    let mut shared =
        tokio::time::interval(app.hub.shared_every().unwrap_or(Duration::from_secs(3600)));
    loop {
        tokio::select! {
            _ = every.tick() => app.hub.tick(crate::clock::Now::read()),
            _ = shared.tick() => app.hub.tick_shared().await,
            _ = probe.tick() => {
                let started = Instant::now();
                let ok = app.hub.store().ping().await.is_ok();
                let metrics = app.hub.metrics();
                metrics.store_seconds.observe(started.elapsed().as_secs_f64());
                if !ok {
                    metrics.store_errors.inc();
                }
            }
            _ = hourly.tick() => {
                if let Sink::Files { dir, keep_days } = &log_sink {
                    let _ = crate::logs::prune(dir, *keep_days, std::time::SystemTime::now());
                }
            }
            _ = stop.cancelled() => break,
        }
    }
}

/// HTTP/1.1 only (WebSockets need it; HTTP/2 would be a second set of slow-client paths to bound),
/// with a deadline on every request's headers.
fn http1_with_deadlines(
    b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    *b = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
        .http1_only();
    b.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
}
