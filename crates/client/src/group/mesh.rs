//! One group call on this device, as a pure machine (the shape of `engine/calls.rs`): the roster
//! held, a link per other member, and who rings whom. Time is passed in; each transition returns
//! what the driver must do.
//!
//! The server is not trusted (P8): a roster is taken only when the admin's pinned key signed it
//! and it is newer than the one held; a link is let up only for the device the roster names; a
//! member the roster drops is hung up at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anonchat_proto::group::{Member, Roster, RosterError};
use anonchat_proto::{DeviceCert, Key32, Username};

/// How long a ring to another member may take before its link counts as gone.
pub const LINK_SETUP: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The other member rings us (its username sorts before ours).
    Awaiting {
        since: Instant,
    },
    /// We ring it.
    Ringing {
        since: Instant,
    },
    Connected,
    /// Left, was removed, or never came: nothing more goes to it.
    Gone,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Do {
    /// Ring this member's device, with the roster as the introduction.
    Ring(Member),
    /// End the link to this member and wipe what it sent.
    Hangup(Username),
    /// Send the held roster to this connected member (it changed, or the link just came up).
    SendRoster(Username),
    /// Tell the front-end.
    Tell(GroupEvent),
    /// The group is over here: end every link and wipe the group's chat.
    End(GroupEnd),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    MemberConnected(Username),
    MemberGone(Username),
    MemberAdded(Username),
    TimerSet(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupEnd {
    /// This device left (or panicked).
    Left,
    /// The admin's roster no longer names this device.
    Removed,
    /// No other member is connected or on its way: the last two left.
    Empty,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error("the roster does not name this device")]
    NotMine,
    #[error("that device is not the one the group's roster names")]
    NotInRoster,
}

pub struct Mesh {
    me: Username,
    roster: Roster,
    links: BTreeMap<Username, Link>,
    over: bool,
}

impl Mesh {
    /// Joins with the roster the admin sent: `admin` is the friend who rang us into the group and
    /// `admin_ak` the key pinned for it (the roster must name that friend as its admin and be
    /// signed by that key); `mine` is this device's certificate, which the roster must name.
    pub fn join(
        roster: Roster,
        admin: &Username,
        admin_ak: &Key32,
        mine: &DeviceCert,
        now: Instant,
    ) -> Result<(Self, Vec<Do>), MeshError> {
        if &roster.admin != admin {
            return Err(MeshError::Roster(RosterError::OtherAdmin));
        }
        roster
            .verify(admin_ak)
            .map_err(|e| MeshError::Roster(e.into()))?;
        let me = mine.username.clone();
        if roster.member(&me).map(|m| &m.device) != Some(mine) {
            return Err(MeshError::NotMine);
        }
        let mut mesh = Self {
            me,
            roster,
            links: BTreeMap::new(),
            over: false,
        };
        let mut out = Vec::new();
        mesh.add_links(&mut out, now);
        out.push(Do::Tell(GroupEvent::TimerSet(mesh.roster.timer)));
        Ok((mesh, out))
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    pub fn link(&self, who: &Username) -> Option<Link> {
        self.links.get(who).copied()
    }

    pub fn is_over(&self) -> bool {
        self.over
    }

    /// The members a group message goes to now: the connected ones, in username order.
    pub fn recipients(&self) -> Vec<Username> {
        self.links
            .iter()
            .filter(|(_, l)| **l == Link::Connected)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Links for members that have none yet. Of each pair, the member whose username sorts first
    /// rings: each pair rings once, and never both at the same time.
    fn add_links(&mut self, out: &mut Vec<Do>, now: Instant) {
        for m in &self.roster.members {
            let who = m.username();
            if who == &self.me || self.links.contains_key(who) {
                continue;
            }
            let link = if &self.me < who {
                out.push(Do::Ring(m.clone()));
                Link::Ringing { since: now }
            } else {
                Link::Awaiting { since: now }
            };
            self.links.insert(who.clone(), link);
        }
    }

    /// A newer roster from the admin (over a link, so decrypted from a member's Olm session).
    pub fn on_roster(&mut self, next: Roster, now: Instant) -> Result<Vec<Do>, MeshError> {
        if self.over {
            return Ok(Vec::new());
        }
        next.follows(&self.roster)?;
        let mut out = Vec::new();
        if next.member(&self.me).map(|m| &m.device)
            != self.roster.member(&self.me).map(|m| &m.device)
        {
            self.roster = next;
            self.end(&mut out, GroupEnd::Removed);
            return Ok(out);
        }
        let timer_changed = next.timer != self.roster.timer;
        let before = std::mem::replace(&mut self.roster, next);
        // Dropped, or named with another device (the admin re-invited it): the old link goes.
        let dropped: Vec<Username> = self
            .links
            .keys()
            .filter(|u| {
                before.member(u).map(|m| &m.device) != self.roster.member(u).map(|m| &m.device)
            })
            .cloned()
            .collect();
        for who in dropped {
            if self.links.remove(&who) != Some(Link::Gone) {
                out.push(Do::Hangup(who.clone()));
                out.push(Do::Tell(GroupEvent::MemberGone(who)));
            }
        }
        let known: Vec<Username> = self.links.keys().cloned().collect();
        self.add_links(&mut out, now);
        for m in &self.roster.members {
            let who = m.username();
            if who != &self.me && !known.contains(who) {
                out.push(Do::Tell(GroupEvent::MemberAdded(who.clone())));
            }
        }
        if timer_changed {
            out.push(Do::Tell(GroupEvent::TimerSet(self.roster.timer)));
        }
        for who in self.recipients() {
            out.push(Do::SendRoster(who));
        }
        self.check_empty(&mut out);
        Ok(out)
    }

    /// A pairwise session came up with `device`: only the device the roster names for a member
    /// with a link that is not gone.
    pub fn link_up(&mut self, device: &DeviceCert) -> Result<Vec<Do>, MeshError> {
        let who = &device.username;
        let named = self.roster.member(who).map(|m| &m.device) == Some(device);
        match self.links.get_mut(who) {
            Some(link) if named && !self.over && *link != Link::Gone => {
                let mut out = Vec::new();
                if *link != Link::Connected {
                    *link = Link::Connected;
                    out.push(Do::Tell(GroupEvent::MemberConnected(who.clone())));
                    // A member that joined late may hold an older roster: the admin's newest goes
                    // to it from everyone (it takes only a newer one).
                    out.push(Do::SendRoster(who.clone()));
                }
                Ok(out)
            }
            _ => Err(MeshError::NotInRoster),
        }
    }

    /// The link to `who` ended (it left, panicked, was killed or lost the network).
    pub fn link_down(&mut self, who: &Username) -> Vec<Do> {
        let mut out = Vec::new();
        if let Some(link) = self.links.get_mut(who) {
            if *link != Link::Gone {
                *link = Link::Gone;
                out.push(Do::Tell(GroupEvent::MemberGone(who.clone())));
                self.check_empty(&mut out);
            }
        }
        out
    }

    /// Rings that took too long count as gone (ours are hung up).
    pub fn tick(&mut self, now: Instant) -> Vec<Do> {
        let late: Vec<(Username, bool)> = self
            .links
            .iter()
            .filter_map(|(u, l)| match l {
                Link::Awaiting { since } | Link::Ringing { since }
                    if now.saturating_duration_since(*since) >= LINK_SETUP =>
                {
                    Some((u.clone(), matches!(l, Link::Ringing { .. })))
                }
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (who, ours) in late {
            if ours {
                out.push(Do::Hangup(who.clone()));
            }
            out.extend(self.link_down(&who));
        }
        out
    }

    /// This device leaves (or a panic).
    pub fn leave(&mut self) -> Vec<Do> {
        let mut out = Vec::new();
        self.end(&mut out, GroupEnd::Left);
        out
    }

    fn check_empty(&mut self, out: &mut Vec<Do>) {
        if !self.over && self.links.values().all(|l| *l == Link::Gone) {
            self.end(out, GroupEnd::Empty);
        }
    }

    fn end(&mut self, out: &mut Vec<Do>, why: GroupEnd) {
        if self.over {
            return;
        }
        self.over = true;
        for (who, link) in std::mem::take(&mut self.links) {
            if link != Link::Gone {
                out.push(Do::Hangup(who));
            }
        }
        out.push(Do::End(why));
    }
}

#[cfg(test)]
mod tests;
