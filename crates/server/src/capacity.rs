//! How many connections the process can hold, from its open-file limit (issue 14). Past the limit
//! `accept` fails and new clients hang with no answer, and `/healthz` with them; so the server stops
//! short of it: TCP connections are capped below the limit (room for the database, the listeners and
//! the logs) and WebSockets further below (room for short requests such as `/healthz`). A socket
//! over its cap is refused at once: an HTTP 503 for an upgrade, a close for a bare connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Descriptors kept for everything that is not a client: the database, listeners, logs, the runtime.
const RESERVED: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// TCP connections at once (every accepted socket counts, upgraded or not).
    pub tcp: usize,
    /// WebSockets at once.
    pub websockets: usize,
}

/// The caps for an open-file limit of `nofile`, or for `websockets` when set (never above the TCP
/// cap). `None`: no known limit and none set — no caps.
pub fn caps(nofile: Option<u64>, websockets: Option<usize>) -> Option<Caps> {
    let tcp = match nofile {
        Some(n) => usize::try_from(n.saturating_sub(RESERVED)).unwrap_or(usize::MAX),
        None => usize::MAX,
    };
    // Short requests (health checks, registrations) need room of their own: an eighth of the TCP
    // cap, between 16 and 256 connections.
    let room = (tcp / 8).clamp(16, 256);
    let ws = match websockets {
        Some(w) => w.min(tcp),
        None if nofile.is_some() => tcp.saturating_sub(room),
        None => return None,
    };
    Some(Caps {
        tcp,
        websockets: ws,
    })
}

/// The process's open-file limit (the soft one, what `accept` runs into).
pub fn open_file_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .ok()
            .map(|(soft, _)| soft)
            .filter(|n| *n != nix::sys::resource::RLIM_INFINITY)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// A count of held things with a cap; each holder is a [`Held`] that gives its place back on drop.
#[derive(Clone)]
pub struct Counter {
    max: usize,
    n: Arc<AtomicUsize>,
}

pub struct Held(Arc<AtomicUsize>);

impl Counter {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            n: Arc::default(),
        }
    }

    /// A place, or `None` at the cap.
    pub fn acquire(&self) -> Option<Held> {
        self.n
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Held(self.n.clone()))
    }

    pub fn held(&self) -> usize {
        self.n.load(Ordering::Acquire)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_room_below_the_limit() {
        assert_eq!(
            caps(Some(256), None),
            Some(Caps {
                tcp: 192,
                websockets: 168
            })
        );
        assert_eq!(
            caps(Some(20_000), None),
            Some(Caps {
                tcp: 19_936,
                websockets: 19_680
            })
        );
        assert_eq!(
            caps(Some(100), None),
            Some(Caps {
                tcp: 36,
                websockets: 20
            })
        );
        // Set by hand: kept under the TCP cap; with no known limit, only what was set.
        assert_eq!(caps(Some(256), Some(500)).map(|c| c.websockets), Some(192));
        assert_eq!(caps(Some(256), Some(10)).map(|c| c.websockets), Some(10));
        assert_eq!(
            caps(None, Some(10)),
            Some(Caps {
                tcp: usize::MAX,
                websockets: 10
            })
        );
        assert_eq!(caps(None, None), None);
        assert_eq!(caps(Some(10), None).map(|c| c.tcp), Some(0));
    }

    #[test]
    fn a_counter_holds_up_to_its_cap_and_gives_places_back() {
        let c = Counter::new(2);
        let a = c.acquire().expect("first");
        let _b = c.acquire().expect("second");
        assert!(c.acquire().is_none());
        assert_eq!(c.held(), 2);
        drop(a);
        assert_eq!(c.held(), 1);
        assert!(c.acquire().is_some());
    }

    #[test]
    fn this_process_has_a_limit() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|n| n > 0));
        }
    }
}
