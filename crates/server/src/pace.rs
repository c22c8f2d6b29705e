//! How fast one socket is served (P9): a budget of messages and of bytes per second, each with a
//! burst. A message past the budget is held before it is handled, and the socket is not read
//! meanwhile, so a flooding client is slowed by TCP backpressure instead of taking the CPU (JSON
//! parsing, signature checks) from everyone else. Honest clients stay far below it: a chat's
//! setup is a few dozen small messages.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota};

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

pub const MESSAGES_PER_SECOND: NonZeroU32 = nz(200);
pub const MESSAGE_BURST: NonZeroU32 = nz(400);
/// In KiB; the burst holds the largest message (64 KiB) several times over.
pub const KIB_PER_SECOND: NonZeroU32 = nz(128);
pub const KIB_BURST: NonZeroU32 = nz(512);

pub struct Pace {
    messages: DefaultDirectRateLimiter,
    kib: DefaultDirectRateLimiter,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            messages: DefaultDirectRateLimiter::direct(
                Quota::per_second(MESSAGES_PER_SECOND).allow_burst(MESSAGE_BURST),
            ),
            kib: DefaultDirectRateLimiter::direct(
                Quota::per_second(KIB_PER_SECOND).allow_burst(KIB_BURST),
            ),
        }
    }
}

impl Pace {
    /// Waits until a message of `len` bytes fits the budget.
    pub async fn admit(&self, len: usize) {
        self.messages.until_ready().await;
        let kib = nz(u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX).max(1));
        // A message is never larger than the burst (the WebSocket limit is 64 KiB); if it were,
        // it would be charged the whole burst.
        if self.kib.until_n_ready(kib).await.is_err() {
            self.kib.until_n_ready(KIB_BURST).await.ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_passes_then_the_rate_holds() {
        let pace = Pace::default();
        let t0 = std::time::Instant::now();
        for _ in 0..MESSAGE_BURST.get() {
            pace.admit(10).await;
        }
        assert!(t0.elapsed() < std::time::Duration::from_millis(50));
        // Big messages spend the byte budget: 512 KiB of burst, then 128 KiB a second.
        let pace = Pace::default();
        for _ in 0..8 {
            pace.admit(64 * 1024).await;
        }
        let t1 = std::time::Instant::now();
        pace.admit(64 * 1024).await;
        let waited = t1.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(300),
            "{waited:?}"
        );
    }
}
