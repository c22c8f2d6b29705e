//! One group call on this device, as a pure machine (the shape of `engine/calls.rs`): the roster
//! held, a link per other member, and who rings whom. Time is passed in; each transition returns
//! what the driver must do.
//!
//! The server is not trusted (P8): a roster is taken only when the admin's pinned key signed it
//! and it is newer than the one held; a link is let up only for the device the roster names; a
//! member the roster drops is hung up at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anonchat_proto::group::MAX_MEMBERS;
use anonchat_proto::group::{Member, Roster, RosterError};
use anonchat_proto::{DeviceCert, Key32, Sig64, Username};

/// How long a ring to another member may take before its link counts as gone.
pub const LINK_SETUP: Duration = Duration::from_secs(20);

/// Of each pair the member who was in the group first rings the other, once it holds a roster
/// naming the newcomer: the admin rings everyone (its invites), a member rings those added after
/// it. The newcomer's own first roster names only members older than it, so it rings nobody,
/// and no pair rings both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The other member rings us (it was in the group before us).
    Awaiting {
        since: Instant,
    },
    /// We ring it (or, the admin, invite it).
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
    /// Send this very roster to this member, not the one held when the driver gets to it. A
    /// newcomer gets the roster that admitted it, before anything else goes to it: a later one
    /// would name members admitted after it, and each side of such a pair would take the other
    /// for the older one and await its ring (a link never made). A removed member gets the roster
    /// that dropped it: the next one carries the fresh pass it must never learn.
    Send(Username, Box<Roster>),
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
    #[error("only the group's admin may do that")]
    NotAdmin,
    #[error("a group has {} members at most", anonchat_proto::group::MAX_MEMBERS)]
    Full,
    #[error("that member is not invited, or already in the group")]
    NotInvited,
}

/// The admin's account key signs a roster.
pub type Sign<'a> = &'a dyn Fn(&[u8]) -> Sig64;

pub struct Mesh {
    me: Username,
    roster: Roster,
    links: BTreeMap<Username, Link>,
    /// Members whose joining the admin announced (once each: a member repeating `group_joined`
    /// makes no one resend anything).
    announced: std::collections::BTreeSet<Username>,
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
            announced: Default::default(),
            over: false,
        };
        let mut out = Vec::new();
        // Everyone in our first roster was here before us: they ring us (the admin already did).
        mesh.add_links(&mut out, now, false);
        out.push(Do::Tell(GroupEvent::TimerSet(mesh.roster.timer)));
        Ok((mesh, out))
    }

    /// The admin starts a group: a roster of itself alone, which grows as invitees answer. `group`
    /// is the group's fresh random id, `pass` its first random pass.
    pub fn start(group: Key32, pass: Key32, me: Member, timer: u32, sign: Sign) -> Self {
        let admin = me.username().clone();
        let members = vec![me];
        let sig = sign(&Roster::signing_bytes(
            &group, 0, &pass, &admin, timer, &members,
        ));
        Self {
            me: admin.clone(),
            roster: Roster {
                v: anonchat_proto::VERSION,
                group,
                epoch: 0,
                pass,
                admin,
                timer,
                members,
                sig,
            },
            links: BTreeMap::new(),
            announced: Default::default(),
            over: false,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roster.admin == self.me
    }

    /// The admin rings `who` into the group (the driver rings; the link is ours to set up).
    pub fn invite(&mut self, who: &Username, now: Instant) -> Result<(), MeshError> {
        if !self.is_admin() || self.over {
            return Err(MeshError::NotAdmin);
        }
        let live = self.links.values().filter(|l| **l != Link::Gone).count();
        if live + 1 >= MAX_MEMBERS {
            return Err(MeshError::Full);
        }
        match self.links.get(who) {
            Some(l) if *l != Link::Gone => Err(MeshError::NotInvited),
            _ if who == &self.me => Err(MeshError::NotInvited),
            _ => {
                self.links.insert(who.clone(), Link::Ringing { since: now });
                Ok(())
            }
        }
    }

    /// An invitee answered and its session is open: the admin adds its device to a new roster and
    /// sends it that roster. The others get it once the newcomer has joined the pass
    /// ([`Mesh::joined`]), so their rings to it are not refused.
    pub fn admit(&mut self, member: Member, sign: Sign) -> Result<Vec<Do>, MeshError> {
        let who = member.username().clone();
        if !self.is_admin() || self.over {
            return Err(MeshError::NotAdmin);
        }
        if !matches!(self.links.get(&who), Some(Link::Ringing { .. })) {
            return Err(MeshError::NotInvited);
        }
        // Admitted (again): its joining is news once more.
        self.announced.remove(&who);
        let mut members = self.roster.members.clone();
        members.retain(|m| m.username() != &who);
        members.push(member);
        members.sort_by(|a, b| a.username().cmp(b.username()));
        self.publish(members, self.roster.timer, self.roster.pass, sign);
        self.links.insert(who.clone(), Link::Connected);
        Ok(vec![
            Do::Tell(GroupEvent::MemberAdded(who.clone())),
            Do::Tell(GroupEvent::MemberConnected(who.clone())),
            Do::Send(who, Box::new(self.roster.clone())),
        ])
    }

    /// The admin heard that `who` holds the roster naming it and joined the pass: the others get
    /// that roster now (and ring it). Once per member: a member that says it again (a hostile one
    /// flooding the others through the admin) gets nothing resent.
    pub fn joined(&mut self, who: &Username) -> Vec<Do> {
        if !self.is_admin()
            || self.over
            || self.roster.member(who).is_none()
            || !self.announced.insert(who.clone())
        {
            return Vec::new();
        }
        self.recipients()
            .into_iter()
            .filter(|u| u != who)
            .map(Do::SendRoster)
            .collect()
    }

    /// The admin removes `who`: it is told with a roster that no longer names it, then hung up;
    /// the others get a roster one epoch later with the fresh pass `pass`, and hang up on it too.
    /// The removed member never sees that pass, so it cannot join the token the others hold now
    /// and ring them through the server's gate (nor learn by ringing who is still in).
    pub fn remove(
        &mut self,
        who: &Username,
        pass: Key32,
        sign: Sign,
    ) -> Result<Vec<Do>, MeshError> {
        if !self.is_admin() || self.over {
            return Err(MeshError::NotAdmin);
        }
        let was = self.links.get(who).copied();
        if was.is_none() || who == &self.me {
            return Err(MeshError::NotInRoster);
        }
        let mut out = Vec::new();
        if self.roster.member(who).is_some() {
            let mut members = self.roster.members.clone();
            members.retain(|m| m.username() != who);
            let (timer, old) = (self.roster.timer, self.roster.pass);
            self.publish(members.clone(), timer, old, sign);
            if was == Some(Link::Connected) {
                out.push(Do::Send(who.clone(), Box::new(self.roster.clone())));
            }
            self.publish(members, timer, pass, sign);
        }
        self.links.remove(who);
        self.announced.remove(who);
        if was != Some(Link::Gone) {
            out.push(Do::Hangup(who.clone()));
            out.push(Do::Tell(GroupEvent::MemberGone(who.clone())));
        }
        out.extend(self.recipients().into_iter().map(Do::SendRoster));
        self.check_empty(&mut out);
        Ok(out)
    }

    /// The admin sets the group-wide auto-delete timer: a new roster, to everyone.
    pub fn set_timer(&mut self, timer: u32, sign: Sign) -> Result<Vec<Do>, MeshError> {
        if !self.is_admin() || self.over {
            return Err(MeshError::NotAdmin);
        }
        if !anonchat_proto::limits::TIMER_CHOICES.contains(&timer) {
            return Err(MeshError::Roster(RosterError::Proto(
                anonchat_proto::ProtoError::Malformed("timer".into()),
            )));
        }
        self.publish(self.roster.members.clone(), timer, self.roster.pass, sign);
        let mut out = vec![Do::Tell(GroupEvent::TimerSet(timer))];
        out.extend(self.recipients().into_iter().map(Do::SendRoster));
        Ok(out)
    }

    fn publish(&mut self, members: Vec<Member>, timer: u32, pass: Key32, sign: Sign) {
        let r = &self.roster;
        let epoch = r.epoch + 1;
        let sig = sign(&Roster::signing_bytes(
            &r.group, epoch, &pass, &r.admin, timer, &members,
        ));
        self.roster = Roster {
            v: anonchat_proto::VERSION,
            group: r.group,
            epoch,
            pass,
            admin: r.admin.clone(),
            timer,
            members,
            sig,
        };
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

    /// Links for members that have none yet: `ring` for members newer than us (see [`Link`]).
    fn add_links(&mut self, out: &mut Vec<Do>, now: Instant, ring: bool) {
        for m in &self.roster.members {
            let who = m.username();
            if who == &self.me || self.links.contains_key(who) {
                continue;
            }
            let link = if ring {
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
        // The admin signs rosters and takes none (members pass the newest on to everyone).
        if self.over || self.is_admin() {
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
        self.add_links(&mut out, now, true);
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
