//! How fast one socket is served (P9): a budget of messages and of bytes per second, each with a
//! burst. A message past the budget is held before it is handled, and the socket is not read
//! meanwhile, so a flooding client is slowed by TCP backpressure instead of taking the CPU (JSON
//! parsing, signature checks) from everyone else. Honest clients stay far below it: a chat's
//! setup is a few dozen small messages.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota};

/// Bytes are counted in units of this many.
const UNIT: usize = 64;

fn nz(n: u64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

/// A socket's budget (server flags).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub messages_per_second: u32,
    /// Messages that may come at once before the rate applies.
    pub message_burst: u32,
    pub kib_per_second: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            messages_per_second: 200,
            message_burst: 400,
            kib_per_second: 128,
        }
    }
}

pub struct Pace {
    messages: DefaultDirectRateLimiter,
    bytes: DefaultDirectRateLimiter,
    byte_burst: NonZeroU32,
}

impl Pace {
    pub fn new(b: Budget) -> Self {
        let per_second = u64::from(b.kib_per_second) * 1024 / UNIT as u64;
        // Four seconds' worth of bytes at once, and never less than the largest message.
        let byte_burst =
            nz((per_second * 4).max((anonchat_proto::limits::MAX_WS_MESSAGE / UNIT) as u64));
        Self {
            messages: DefaultDirectRateLimiter::direct(
                Quota::per_second(nz(u64::from(b.messages_per_second)))
                    .allow_burst(nz(u64::from(b.message_burst))),
            ),
            bytes: DefaultDirectRateLimiter::direct(
                Quota::per_second(nz(per_second)).allow_burst(byte_burst),
            ),
            byte_burst,
        }
    }

    /// Waits until a message of `len` bytes fits the budget.
    pub async fn admit(&self, len: usize) {
        self.messages.until_ready().await;
        let units = nz(len.div_ceil(UNIT).max(1) as u64).min(self.byte_burst);
        // `units` never exceeds the burst, so this cannot fail.
        let _ = self.bytes.until_n_ready(units).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn a_burst_passes_then_the_rate_holds() {
        let pace = Pace::new(Budget::default());
        let t0 = Instant::now();
        for _ in 0..400 {
            pace.admit(30).await;
        }
        assert!(
            t0.elapsed() < Duration::from_millis(100),
            "small messages: the burst"
        );
        let t1 = Instant::now();
        for _ in 0..20 {
            pace.admit(30).await;
        }
        assert!(
            t1.elapsed() >= Duration::from_millis(80),
            "then 200 a second"
        );
        // Big messages spend the byte budget: 512 KiB at once, then 128 KiB a second.
        let pace = Pace::new(Budget::default());
        for _ in 0..8 {
            pace.admit(64 * 1024).await;
        }
        let t2 = Instant::now();
        pace.admit(64 * 1024).await;
        assert!(
            t2.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t2.elapsed()
        );
    }
}
