//! One chat's liveness and repair, as a pure machine: setup deadlines, keep-alive pings, silence
//! limits, the repair window and its ICE restarts. Time is passed in; [`Liveness::tick`] returns
//! what the driver must do, so every rule is tested with a fake clock.

use std::time::{Duration, Instant};

use crate::events::EndReason;

/// Pings go out this often once the channel is open.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
/// No frame for this long means the third ping went unanswered: the peer is gone.
pub const PEER_SILENCE: Duration = Duration::from_secs(5);
/// While attachment bytes are moving (or moved lately), a congested path may stall for a while
/// (SCTP backs off after losses): tolerate this much silence before calling the peer lost.
pub const BULK_SILENCE: Duration = Duration::from_secs(15);
/// A session that has not opened its channel by then fails.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// After the relay route closes, how long a session still being set up waits for its channel.
const ROUTE_GRACE: Duration = Duration::from_secs(2);
/// A chat whose path went quiet (past the silence limits above) is repaired with an ICE restart
/// through the server's route, which lasts the chat: it may stay quiet this much longer before it
/// ends and wipes. Without the route (the server or the peer's socket gone) it ends at once.
pub const RESTART_WINDOW: Duration = Duration::from_secs(10);
/// While the path stays quiet the caller offers a new restart this often (a restart offer or its
/// answer can be lost with the path it repairs, or land before a new path exists).
const RESTART_RETRY: Duration = Duration::from_secs(3);

/// What the driver does for a tick.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Do {
    /// Send a keep-alive ping.
    Ping,
    /// Tell the front-end the chat is being repaired (once per break).
    Reconnecting,
    /// Caller: offer an ICE restart through the route.
    OfferRestart,
    /// The chat is over.
    End(EndReason),
    /// Setup failed.
    Fail(SetupFailure),
}

/// Why a session never opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SetupFailure {
    /// [`SETUP_TIMEOUT`] passed; the driver says which step never happened.
    TimedOut,
    /// The route closed and the channel did not open within the grace after it.
    PeerLeft,
}

pub(super) struct Liveness {
    /// The caller offers ICE restarts; the callee answers them.
    caller: bool,
    started: Instant,
    open: bool,
    last_rx: Instant,
    last_ping: Instant,
    /// When attachment bytes last moved in either direction.
    bulk_at: Option<Instant>,
    /// The server still relays signals between the two devices (needed for an ICE restart).
    route_alive: bool,
    /// When the route closed during setup.
    route_closed_at: Option<Instant>,
    /// The open chat's path went quiet and is being repaired.
    reconnecting: bool,
    last_restart: Option<Instant>,
}

impl Liveness {
    pub(super) fn new(caller: bool, now: Instant) -> Self {
        Self {
            caller,
            started: now,
            open: false,
            last_rx: now,
            last_ping: now,
            bulk_at: None,
            route_alive: true,
            route_closed_at: None,
            reconnecting: false,
            last_restart: None,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.open
    }

    pub(super) fn is_caller(&self) -> bool {
        self.caller
    }

    pub(super) fn route_alive(&self) -> bool {
        self.route_alive
    }

    /// The data channel opened. True the first time only.
    pub(super) fn opened(&mut self, now: Instant) -> bool {
        if self.open {
            return false;
        }
        self.open = true;
        self.last_rx = now;
        true
    }

    /// The chat ended here.
    pub(super) fn closed(&mut self) {
        self.open = false;
    }

    /// Proof the peer is there: a frame that decrypted, or any attachment chunk.
    pub(super) fn heard(&mut self, now: Instant) {
        self.last_rx = now;
    }

    /// Something came through the channel: a break being repaired is over. True when there was
    /// one (the driver tells the front-end the chat resumed).
    pub(super) fn resumed(&mut self) -> bool {
        let was = std::mem::replace(&mut self.reconnecting, false);
        if was {
            self.last_restart = None;
        }
        was
    }

    /// Attachment bytes moved (a chunk came, or a transfer of ours finished).
    pub(super) fn bulk(&mut self, now: Instant) {
        self.bulk_at = Some(now);
    }

    /// The server dropped the route: no ICE restart is possible any more.
    pub(super) fn route_closed(&mut self, now: Instant) {
        self.route_alive = false;
        if !self.open {
            self.route_closed_at.get_or_insert(now);
        }
    }

    /// The peer offered an ICE restart (callee). True when the front-end must be told.
    pub(super) fn restart_offered(&mut self) -> bool {
        !std::mem::replace(&mut self.reconnecting, true)
    }

    /// `busy`: transfers in flight; `ice_connected`: the transport has a working pair.
    pub(super) fn tick(&mut self, now: Instant, busy: bool, ice_connected: bool) -> Vec<Do> {
        let since = |t: Instant| now.saturating_duration_since(t);
        if !self.open {
            if since(self.started) > SETUP_TIMEOUT {
                return vec![Do::Fail(SetupFailure::TimedOut)];
            }
            if self.route_closed_at.is_some_and(|t| since(t) > ROUTE_GRACE) {
                return vec![Do::Fail(SetupFailure::PeerLeft)];
            }
            return Vec::new();
        }
        let mut out = Vec::new();
        let bulk = busy || self.bulk_at.is_some_and(|t| since(t) < BULK_SILENCE);
        let silence = if bulk { BULK_SILENCE } else { PEER_SILENCE };
        let quiet = since(self.last_rx);
        if quiet > silence {
            if !self.route_alive || quiet > silence + RESTART_WINDOW {
                return vec![Do::End(EndReason::PeerLost)];
            }
            if !std::mem::replace(&mut self.reconnecting, true) {
                out.push(Do::Reconnecting);
            }
            // A restart that already found a path is left alone: the data channel's
            // retransmissions take a moment to come through it, and a new restart would tear the
            // path down again.
            let retry_due = self.last_restart.is_none_or(|t| since(t) >= RESTART_RETRY);
            let settling = self.last_restart.is_some() && ice_connected;
            if self.caller && retry_due && !settling {
                self.last_restart = Some(now);
                out.push(Do::OfferRestart);
            }
        }
        if since(self.last_ping) >= PING_INTERVAL {
            self.last_ping = now;
            out.push(Do::Ping);
        }
        out
    }
}

#[cfg(test)]
mod tests;
