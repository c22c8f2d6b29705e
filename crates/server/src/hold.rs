//! Holding a gated answer until its release time (P5).
//!
//! Tokio's timers fire on millisecond ticks, and a parked worker wakes when its rounded-up timeout
//! ends — counted from when it parked, that is from when the work before it finished. So the
//! release of an answer held by `tokio::time::sleep_until` still moves a little with how long the
//! answer took, which is exactly what the floor is meant to hide. A kernel timer per answer
//! (timerfd in the runtime's epoll) fires on time when the server is idle, but under load its
//! readiness waits for the runtime's next I/O turn: measured at 5 000 lookups/s, answers held to
//! 1 ms left 3–4 ms late (p50). So one thread of its own releases every held answer: it sleeps until
//! the earliest release instant (woken early only by a new, earlier one) and then hands each due
//! answer back to its task. When it releases an answer does not depend on when the answer was
//! ready, nor on how busy the runtime is.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;

use std::time::Instant;

use tokio::sync::oneshot;

/// One held answer: its release instant, an arrival number (ties release in order), its task.
struct Held {
    at: Instant,
    seq: u64,
    release: oneshot::Sender<()>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

type Queue = mpsc::Sender<(Instant, oneshot::Sender<()>)>;

fn releaser() -> Option<&'static Queue> {
    static QUEUE: OnceLock<Option<Queue>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("hold".into())
                .spawn(move || release(rx))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// The releasing thread: until every sender is gone (never, in a running server).
fn release(rx: mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while held.peek().is_some_and(|Reverse(h)| h.at <= now) {
            if let Some(Reverse(h)) = held.pop() {
                // A task that went away (its socket closed) has nobody to release.
                let _ = h.release.send(());
            }
        }
        let next = match held.peek() {
            Some(Reverse(h)) => rx.recv_timeout(h.at.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, release)) => {
                seq += 1;
                held.push(Reverse(Held { at, seq, release }));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Waits until `deadline`.
pub async fn until(deadline: Instant) {
    if deadline <= Instant::now() {
        return;
    }
    let (tx, rx) = oneshot::channel();
    match releaser() {
        Some(queue) if queue.send((deadline, tx)).is_ok() => {
            let _ = rx.await;
        }
        // No thread could be started: tokio's timer, less precise but still a floor.
        _ => tokio::time::sleep_until(deadline.into()).await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn wakes_at_the_deadline_not_before() {
        for ms in [1u64, 3, 7] {
            let deadline = Instant::now() + Duration::from_millis(ms);
            super::until(deadline).await;
            let late = Instant::now().saturating_duration_since(deadline);
            assert!(Instant::now() >= deadline, "woke early");
            // Generous: this asserts the timer fired, not how precisely (that is the bench's).
            assert!(late < Duration::from_millis(500), "woke {late:?} late");
        }
    }

    #[tokio::test]
    async fn a_past_deadline_returns_at_once() {
        let deadline = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        super::until(deadline).await;
    }

    /// Answers held at once release in deadline order, each at its own instant, whatever order
    /// they were held in (a later one first must not hold back an earlier one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_held_at_once_release_each_at_its_own_instant() {
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for ms in [9u64, 2, 6, 4, 8] {
            let deadline = t0 + Duration::from_millis(ms);
            tasks.push(tokio::spawn(async move {
                super::until(deadline).await;
                (deadline, Instant::now())
            }));
        }
        for t in tasks {
            let (deadline, woke) = t.await.expect("task");
            assert!(woke >= deadline, "woke early");
            assert!(
                woke - deadline < Duration::from_millis(500),
                "woke {:?} late",
                woke - deadline
            );
        }
    }
}
