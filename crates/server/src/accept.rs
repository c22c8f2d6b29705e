//! Every TCP connection is counted against its address from the moment it is accepted (P9): a
//! slowloris that never finishes its request holds a slot like any other connection, so one
//! address cannot hold more than its share. Trusted reverse proxies are not capped here (their
//! clients are counted by the address they forward, after the request is read).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::capacity::{Counter, Held};
use crate::client_ip::ClientIp;
use crate::limits::{PerIp, Slot};

#[derive(Clone)]
pub struct CappedAcceptor {
    per_ip: PerIp,
    client_ip: Arc<ClientIp>,
    /// All connections at once, below the open-file limit (capacity.rs).
    total: Counter,
}

impl CappedAcceptor {
    pub fn new(max_per_ip: usize, client_ip: Arc<ClientIp>, total: Counter) -> Self {
        Self {
            per_ip: PerIp::new(max_per_ip),
            client_ip,
            total,
        }
    }

    fn admit(&self, stream: TcpStream) -> io::Result<Counted> {
        let total = self
            .total
            .acquire()
            .ok_or_else(|| io::Error::other("at the connection cap"))?;
        // Signaling is many small messages: no Nagle delay on them.
        let _ = stream.set_nodelay(true);
        let ip = stream.peer_addr()?.ip();
        let slot = if self.client_ip.is_trusted(ip) {
            None
        } else {
            let key = self.client_ip.key(ip, None);
            Some(
                self.per_ip
                    .acquire(key)
                    .ok_or_else(|| io::Error::other("too many connections from this address"))?,
            )
        };
        Ok(Counted {
            inner: stream,
            _slot: slot,
            _total: total,
        })
    }
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for CappedAcceptor {
    type Stream = Counted;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Counted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // Refused: the stream is dropped, so the connection closes at once.
        std::future::ready(self.admit(stream).map(|s| (s, service)))
    }
}

/// A connection holding its address's slot until it closes.
pub struct Counted {
    inner: TcpStream,
    _slot: Option<Slot>,
    _total: Held,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
