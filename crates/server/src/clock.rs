//! The clocks, read at the edges (the socket reader, the inbox, the ticker) and passed into the
//! logic as one `Now`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix milliseconds now (0 if the clock is before 1970): Redis keys' deadlines, which every
/// instance must read alike.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One reading of both clocks, taken where a request or event arrives (the socket's reader, the
/// inbox from other instances, the ticker) and passed into everything that answers it, so the
/// answers are functions of it and tests can hand in any time they like.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic: deadlines, ages and the gate's floor.
    pub at: std::time::Instant,
    /// Unix seconds: signed timestamps' freshness, tombstones, TURN credentials, enrollments.
    pub unix: u64,
}

impl Now {
    pub fn read() -> Self {
        Self {
            at: std::time::Instant::now(),
            unix: unix_now(),
        }
    }
}
