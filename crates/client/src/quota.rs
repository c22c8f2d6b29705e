//! What one chat may hold and how fast a peer may send (a hostile peer must not exhaust this
//! device): a token bucket over the peer's frames, a flood verdict that ends the chat, and the
//! caps on the chat log and on attachment bytes. Pure: time is passed in.

use std::time::{Duration, Instant};

/// Per-chat caps (settable in the profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatLimits {
    /// Lines of chat kept; older ones are wiped first.
    pub max_lines: usize,
    /// Bytes of text kept (both directions).
    pub max_log_bytes: usize,
    /// Attachment bytes held or arriving at once (both directions' received and sent copies).
    pub max_bytes: u64,
    /// Attachments held at once.
    pub max_items: usize,
}

pub const DEFAULT_MAX_LINES: usize = 5_000;
pub const DEFAULT_MAX_CHAT_BYTES: u64 = 512 * 1024 * 1024;

impl Default for ChatLimits {
    fn default() -> Self {
        Self {
            max_lines: DEFAULT_MAX_LINES,
            max_log_bytes: 8 * 1024 * 1024,
            max_bytes: DEFAULT_MAX_CHAT_BYTES,
            max_items: 64,
        }
    }
}

/// Frames a peer may send per second on average, and in one burst. A person typing, receipts,
/// typing notices and timers stay far below (a benchmark's 1 000 echoed texts with their receipts
/// fit the burst); pongs only answer our own pings and are not counted.
pub const FRAMES_PER_SEC: f64 = 300.0;
pub const FRAME_BURST: f64 = 2_500.0;
/// Frames dropped over the rate within [`FLOOD_WINDOW`] that make it a flood: the chat ends.
pub const FLOOD_DROPS: u32 = 5_000;
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Over the rate: drop it (`first`: the first drop of this window, worth a warning).
    Drop {
        first: bool,
    },
    /// The peer keeps flooding: end the chat.
    Flood,
}

#[derive(Debug)]
pub struct FrameRate {
    tokens: f64,
    at: Instant,
    drops: u32,
    window: Instant,
}

impl FrameRate {
    pub fn new(now: Instant) -> Self {
        Self {
            tokens: FRAME_BURST,
            at: now,
            drops: 0,
            window: now,
        }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * FRAMES_PER_SEC).min(FRAME_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        if now.saturating_duration_since(self.window) > FLOOD_WINDOW {
            self.window = now;
            self.drops = 0;
        }
        self.drops += 1;
        if self.drops >= FLOOD_DROPS {
            Admit::Flood
        } else {
            Admit::Drop {
                first: self.drops == 1,
            }
        }
    }
}

/// Whether a chat log of `lines` lines and `bytes` bytes is over its caps (then its oldest line
/// is wiped, and the question asked again).
pub fn log_over(limits: &ChatLimits, lines: usize, bytes: usize) -> bool {
    lines > limits.max_lines || bytes > limits.max_log_bytes
}

/// Whether an offered attachment of `size` fits beside what the chat holds; otherwise why not.
pub fn admit_attachment(
    limits: &ChatLimits,
    held_bytes: u64,
    held_items: usize,
    size: u64,
) -> Result<(), String> {
    if held_items >= limits.max_items {
        return Err(format!(
            "this chat already holds {} attachments, as many as this side keeps",
            limits.max_items
        ));
    }
    if held_bytes.saturating_add(size) > limits.max_bytes {
        return Err(format!(
            "this chat already holds {} MB of attachments; this side keeps at most {} MB per chat",
            held_bytes / 1_000_000,
            limits.max_bytes / 1_000_000
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_then_a_flood_ends_it() {
        let t0 = Instant::now();
        let mut r = FrameRate::new(t0);
        for _ in 0..FRAME_BURST as usize {
            assert_eq!(r.admit(t0), Admit::Yes);
        }
        assert_eq!(r.admit(t0), Admit::Drop { first: true });
        assert_eq!(r.admit(t0), Admit::Drop { first: false });
        // 10 ms later three frames' worth has come back.
        let t1 = t0 + Duration::from_millis(10);
        for _ in 0..3 {
            assert_eq!(r.admit(t1), Admit::Yes);
        }
        for _ in 2..FLOOD_DROPS - 1 {
            assert!(matches!(r.admit(t1), Admit::Drop { .. }));
        }
        assert_eq!(r.admit(t1), Admit::Flood);
    }

    #[test]
    fn drops_spread_over_windows_are_no_flood() {
        let t0 = Instant::now();
        let mut r = FrameRate::new(t0);
        for _ in 0..FRAME_BURST as usize {
            r.admit(t0);
        }
        let mut t = t0;
        for _ in 0..5 {
            for _ in 0..FLOOD_DROPS / 2 {
                assert_ne!(r.admit(t), Admit::Flood);
            }
            t += FLOOD_WINDOW + Duration::from_millis(1);
            // Refilled by then; spend it again.
            while r.admit(t) == Admit::Yes {}
        }
    }

    #[test]
    fn a_steady_person_is_never_dropped() {
        let t0 = Instant::now();
        let mut r = FrameRate::new(t0);
        for i in 0..10_000u64 {
            // 250 frames a second for 40 s.
            assert_eq!(r.admit(t0 + Duration::from_millis(4 * i)), Admit::Yes);
        }
    }

    #[test]
    fn the_log_is_over_past_either_cap() {
        let l = ChatLimits {
            max_lines: 3,
            max_log_bytes: 100,
            ..ChatLimits::default()
        };
        assert!(!log_over(&l, 3, 100));
        assert!(log_over(&l, 4, 40), "lines");
        assert!(log_over(&l, 2, 101), "bytes");
    }

    #[test]
    fn attachments_past_the_chat_caps_are_refused_with_a_reason() {
        let l = ChatLimits {
            max_bytes: 1_000_000_000,
            max_items: 2,
            ..ChatLimits::default()
        };
        assert!(admit_attachment(&l, 0, 0, 1_000_000_000).is_ok());
        let e = admit_attachment(&l, 600_000_000, 1, 500_000_000).unwrap_err();
        assert!(e.contains("600 MB") && e.contains("1000 MB"), "{e}");
        assert!(admit_attachment(&l, 0, 2, 1)
            .unwrap_err()
            .contains("2 attachments"));
    }
}
