//! One chat's text log and its auto-delete timer, as a pure core: lines kept in RAM within the
//! chat's caps (the oldest go first), each with the instant its timer runs out. Time is passed in;
//! every change returns the ids the front-end must drop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anonchat_proto::frames::SecretText;

use crate::quota::{self, ChatLimits};

/// One line of the chat, as `history` returns it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    pub id: u64,
    pub mine: bool,
    pub text: SecretText,
    #[serde(skip)]
    pub expires: Option<Instant>,
}

pub(super) struct ChatLog {
    lines: VecDeque<Line>,
    /// Text bytes in `lines`.
    bytes: usize,
    limits: ChatLimits,
    /// Auto-delete timer in seconds (0: off); either side may set it.
    timer: u32,
}

impl ChatLog {
    pub(super) fn new(limits: ChatLimits) -> Self {
        Self {
            lines: VecDeque::new(),
            bytes: 0,
            limits,
            timer: 0,
        }
    }

    pub(super) fn limits(&self) -> &ChatLimits {
        &self.limits
    }

    pub(super) fn set_timer(&mut self, seconds: u32) {
        self.timer = seconds;
    }

    /// When an item made at `now` expires under the current timer.
    pub(super) fn expiry_from(&self, now: Instant) -> Option<Instant> {
        (self.timer > 0).then(|| now + Duration::from_secs(u64::from(self.timer)))
    }

    /// Keeps a line made at `now`; returns the ids of the oldest lines wiped to stay within the
    /// chat's caps (front-ends hear of them as expired, so their copies go too).
    pub(super) fn push(&mut self, id: u64, mine: bool, text: SecretText, now: Instant) -> Vec<u64> {
        let expires = self.expiry_from(now);
        self.bytes += text.as_str().len();
        self.lines.push_back(Line {
            id,
            mine,
            text,
            expires,
        });
        let mut wiped = Vec::new();
        while quota::log_over(&self.limits, self.lines.len(), self.bytes) {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.text.as_str().len();
            wiped.push(old.id);
        }
        wiped
    }

    /// The earliest instant a line expires.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.lines.iter().filter_map(|l| l.expires).min()
    }

    /// Wipes every line whose timer ran out by `now`; returns their ids.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<u64> {
        let mut gone = Vec::new();
        self.lines.retain(|l| {
            let out = l.expires.is_some_and(|e| e <= now);
            if out {
                gone.push(l.id);
            }
            !out
        });
        self.bytes = self.lines.iter().map(|l| l.text.as_str().len()).sum();
        gone
    }

    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn lines(&self) -> Vec<Line> {
        self.lines.iter().cloned().collect()
    }

    /// Wipes every line (the texts zeroize as they drop) and gives the memory back.
    pub(super) fn clear(&mut self) {
        self.lines.clear();
        self.lines.shrink_to_fit();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests;
