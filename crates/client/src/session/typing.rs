//! Typing notices, throttled in the engine rather than in each front-end: however often a
//! front-end reports a keystroke, at most one `typing` frame goes to the peer per interval.

use std::time::{Duration, Instant};

/// At most one typing frame this often.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);

#[derive(Default)]
pub(super) struct Typing {
    last: Option<Instant>,
}

impl Typing {
    /// Whether a keystroke at `now` sends a frame (and, if so, counts as the latest).
    pub(super) fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= TYPING_EVERY);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_per_interval_however_fast_the_keys() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut t = Typing::default();
        let sent: Vec<u64> = (0..=4000)
            .step_by(100)
            .filter(|&ms| t.due(at(ms)))
            .collect();
        assert_eq!(sent, vec![0, 2000, 4000]);
    }

    #[test]
    fn after_a_pause_the_next_key_sends_at_once() {
        let t0 = Instant::now();
        let mut t = Typing::default();
        assert!(t.due(t0));
        assert!(!t.due(t0 + Duration::from_millis(1999)));
        assert!(t.due(t0 + Duration::from_secs(60)));
    }
}
