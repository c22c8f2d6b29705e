//! Holding a gated answer until its release time (P5).
//!
//! Tokio's timers fire on millisecond ticks, and a parked worker wakes when its rounded-up timeout
//! ends — counted from when it parked, that is from when the work before it finished. So the
//! release of an answer held by `tokio::time::sleep_until` still moves a little with how long the
//! answer took, which is exactly what the floor is meant to hide. On Linux the answer waits instead
//! on a kernel timer set to the absolute release instant: it fires then, whatever came before.

use tokio::time::Instant;

/// Waits until `deadline`.
pub async fn until(deadline: Instant) {
    #[cfg(target_os = "linux")]
    if linux::until(deadline).await.is_ok() {
        return;
    }
    tokio::time::sleep_until(deadline).await;
}

#[cfg(target_os = "linux")]
mod linux {
    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;
    use tokio::time::Instant;

    pub async fn until(deadline: Instant) -> std::io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // `Instant` is CLOCK_MONOTONIC on Linux: the same instant, as the kernel's clock reads it.
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
        timer.set(
            Expiration::OneShot(now + TimeSpec::from_duration(left)),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        )?;
        // SAFETY: the TimerFd owns its descriptor, keeps it open until it is dropped together with
        // the AsyncFd, and always returns that same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }?;
        loop {
            let mut ready = fd.readable().await?;
            match ready.try_io(|t| t.get_ref().wait().map_err(std::io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use std::time::Duration;

        #[tokio::test]
        async fn wakes_at_the_deadline_not_before() {
            for ms in [1u64, 3, 7] {
                let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
                super::until(deadline).await.expect("timerfd");
                let late = tokio::time::Instant::now().saturating_duration_since(deadline);
                assert!(tokio::time::Instant::now() >= deadline, "woke early");
                // Generous: this asserts the timer fired, not how precisely (that is the bench's).
                assert!(late < Duration::from_millis(500), "woke {late:?} late");
            }
        }

        #[tokio::test]
        async fn a_past_deadline_returns_at_once() {
            let deadline = tokio::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(2)).await;
            super::until(deadline).await.expect("past deadline");
        }
    }
}
