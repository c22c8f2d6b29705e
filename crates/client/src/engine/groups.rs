//! Groups on the engine (DESIGN §10): the driver of each group's mesh (`group/mesh.rs`, the
//! rules) over pairwise sessions. It starts groups, rings invitees and members, checks every ring
//! and session against the admin's signed roster, passes rosters on, and fans texts out sealed
//! once per member. The server is not trusted (P8): it cannot add a member or a device, replay a
//! roster, or connect a ring nobody in the roster made.

use std::time::{Duration, Instant};

use anonchat_proto::group::Member;
use anonchat_proto::wire::ClientMsg;
use anonchat_proto::{Key32, Username};
use rand::RngCore;
use tokio_util::sync::CancellationToken;

use super::{lock, Engine, Inner};
use crate::events::{Event, GroupEndReason, MemberState};
use crate::group::mesh::{Do, GroupEnd, GroupEvent, Link, Mesh, MeshError};
use crate::session::Cmd;
use crate::ClientError;

mod book;
mod incoming;
mod send;
mod view;
pub(super) use book::{Group, Groups, RingTag};
pub use view::{GroupView, MemberView};

/// How often a group's rules are asked about rings that take too long.
const TICK: Duration = Duration::from_secs(1);
/// A refused `group_join` of a fresh pass is tried this many times, the first retry after this,
/// doubling (a rate limit refills within a minute).
const PASS_TRIES: u32 = 6;
const PASS_RETRY: Duration = Duration::from_secs(1);

/// A refused ring to a member is tried this many times, the first retry after this, doubling.
const RING_TRIES: u32 = 5;
const RING_RETRY: Duration = Duration::from_millis(100);

/// 32 random bytes: a group's id, or a pass.
fn fresh_key() -> Key32 {
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    Key32(k)
}

fn refused(e: MeshError) -> ClientError {
    ClientError::Refused(e.to_string())
}

fn no_group() -> ClientError {
    ClientError::Refused("no such group".into())
}

impl Engine {
    /// Starts a group with this device as its admin and rings `members` (friends) into it.
    /// Returns the group's id on this device (never sent anywhere).
    pub async fn group_start(&self, members: &[String], timer: u32) -> Result<String, ClientError> {
        self.inner.unlocked()?;
        let invitees = members
            .iter()
            .map(|m| Username::parse(m))
            .collect::<Result<Vec<_>, _>>()?;
        for who in &invitees {
            if self.inner.pinned(who).is_none() {
                return Err(ClientError::UnknownContact(who.to_string()));
            }
        }
        let (me, id) = {
            let guard = lock(&self.inner.identity);
            let i = guard
                .as_ref()
                .ok_or(ClientError::Profile(crate::error::ProfileError::NoIdentity))?;
            let me = Member {
                ak: i.ak_pub(),
                device: i.cert.clone(),
            };
            (me, fresh_key())
        };
        if !anonchat_proto::limits::TIMER_CHOICES.contains(&timer) {
            return Err(ClientError::Refused("no such timer".into()));
        }
        let mesh = Mesh::start(id, fresh_key(), me, timer, &|b| self.inner.sign_roster(b));
        let token = mesh.roster().pass_token();
        self.inner
            .signaling
            .request(ClientMsg::GroupJoin { token })
            .await?;
        let gid = self.inner.add_group(mesh, token);
        self.inner.emit_joined(&gid);
        for who in invitees {
            self.group_add(&gid, who.as_str()).await?;
        }
        Ok(gid)
    }

    /// The admin rings a friend into the group.
    pub async fn group_add(&self, group: &str, username: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let who = Username::parse(username)?;
        if self.inner.pinned(&who).is_none() {
            return Err(ClientError::UnknownContact(who.to_string()));
        }
        {
            let mut groups = lock(&self.inner.groups);
            let g = groups.groups.get_mut(group).ok_or_else(no_group)?;
            g.mesh.invite(&who, Instant::now()).map_err(refused)?;
        }
        let tag = RingTag::Invite {
            group: group.to_string(),
            who: who.clone(),
        };
        if let Err(e) = self.ring_to(&who, None, Some(tag)).await {
            self.inner.member_unreachable(group, &who);
            return Err(e);
        }
        Ok(())
    }

    /// The admin removes a member: it can neither send nor receive in the group any more.
    pub async fn group_remove(&self, group: &str, username: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let who = Username::parse(username)?;
        let dos = {
            let mut groups = lock(&self.inner.groups);
            let g = groups.groups.get_mut(group).ok_or_else(no_group)?;
            g.mesh
                .remove(&who, fresh_key(), &|b| self.inner.sign_roster(b))
                .map_err(refused)?
        };
        self.inner.run_group(group, dos);
        Ok(())
    }

    /// The admin sets the group-wide auto-delete timer (a new signed roster everyone sees).
    pub async fn group_timer(&self, group: &str, seconds: u32) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let dos = {
            let mut groups = lock(&self.inner.groups);
            let g = groups.groups.get_mut(group).ok_or_else(no_group)?;
            g.mesh
                .set_timer(seconds, &|b| self.inner.sign_roster(b))
                .map_err(refused)?
        };
        self.inner.run_group(group, dos);
        Ok(())
    }

    /// Leaves the group: every link ends with `bye`, and this device's copy is wiped.
    pub async fn group_leave(&self, group: &str) -> Result<(), ClientError> {
        let dos = {
            let mut groups = lock(&self.inner.groups);
            let g = groups.groups.get_mut(group).ok_or_else(no_group)?;
            g.mesh.leave()
        };
        self.inner.run_group(group, dos);
        Ok(())
    }

    /// Every group this device is in, as a front-end shows it.
    pub fn groups(&self) -> Vec<GroupView> {
        if self.inner.unlocked().is_err() {
            return Vec::new();
        }
        let ids: Vec<String> = lock(&self.inner.groups).groups.keys().cloned().collect();
        ids.iter()
            .filter_map(|id| self.inner.group_view(id))
            .collect()
    }

    /// Panic: every group ends here as left; the wipes that follow end its links.
    pub(super) fn end_groups(&self) {
        let ids: Vec<String> = lock(&self.inner.groups).groups.keys().cloned().collect();
        for id in ids {
            self.inner.group_over(&id, GroupEnd::Left, false);
        }
    }
}

impl Inner {
    fn sign_roster(&self, bytes: &[u8]) -> anonchat_proto::Sig64 {
        lock(&self.identity)
            .as_ref()
            .map(|i| i.sign_ak(bytes))
            .unwrap_or(anonchat_proto::Sig64([0; 64]))
    }

    fn add_group(&self, mesh: Mesh, token: Key32) -> String {
        let mut b = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let gid: String = std::iter::once("g".to_string())
            .chain(b.iter().map(|x| format!("{x:02x}")))
            .collect();
        let stop = CancellationToken::new();
        lock(&self.groups).groups.insert(
            gid.clone(),
            Group {
                mesh,
                token,
                sessions: Default::default(),
                rings: Default::default(),
                stop: stop.clone(),
            },
        );
        if let Some(me) = self.me.upgrade() {
            let gid = gid.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(TICK);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = every.tick() => {}
                    }
                    let dos = lock(&me.groups)
                        .groups
                        .get_mut(&gid)
                        .map(|g| g.mesh.tick(Instant::now()));
                    match dos {
                        Some(dos) => me.run_group(&gid, dos),
                        None => return,
                    }
                }
            });
        }
        gid
    }

    /// `(member, session)` of each connected member.
    fn group_links(&self, group: &str) -> Result<Vec<(String, String)>, ClientError> {
        let groups = lock(&self.groups);
        let g = groups.groups.get(group).ok_or_else(no_group)?;
        Ok(g.mesh
            .recipients()
            .into_iter()
            .filter_map(|who| g.sessions.get(&who).map(|s| (who.to_string(), s.clone())))
            .collect())
    }

    pub(super) fn member_unreachable(&self, group: &str, who: &Username) {
        let dos = lock(&self.groups)
            .groups
            .get_mut(group)
            .map(|g| g.mesh.link_down(who))
            .unwrap_or_default();
        self.run_group(group, dos);
    }

    /// A command to a group link's session. Never dropped: a roster or a removal lost would leave
    /// a member on an old roster; a full queue is waited on, off this thread.
    fn session_cmd(&self, session: &str, cmd: Cmd) {
        let Some(tx) = lock(&self.calls).session(session).map(|s| s.tx.clone()) else {
            return;
        };
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(cmd)) = tx.try_send(cmd) {
            tokio::spawn(async move {
                let _ = tx.send(cmd).await;
            });
        }
    }

    /// Does what the group's rules said, in order.
    pub(super) fn run_group(&self, group: &str, dos: Vec<Do>) {
        for d in dos {
            match d {
                Do::Ring(member) => self.ring_member(group, member),
                Do::Hangup(who) => {
                    let (session, ring) = {
                        let mut groups = lock(&self.groups);
                        let Some(g) = groups.groups.get_mut(group) else {
                            continue;
                        };
                        (g.sessions.remove(&who), g.rings.remove(&who))
                    };
                    if let Some(s) = session {
                        lock(&self.groups).forget(&s);
                        self.session_cmd(&s, Cmd::Leave);
                    }
                    if let Some(r) = ring {
                        lock(&self.groups).forget(&r);
                        self.signaling_hangup(&r);
                    }
                }
                Do::SendRoster(who) => {
                    // The roster held now, and only to a member it names: one removed since
                    // this was decided must not get the roster with the fresh pass.
                    let found = {
                        let groups = lock(&self.groups);
                        groups.groups.get(group).and_then(|g| {
                            let roster = g.mesh.roster();
                            roster.member(&who)?;
                            g.sessions.get(&who).map(|s| (s.clone(), roster.clone()))
                        })
                    };
                    if let Some((s, roster)) = found {
                        let frame = incoming::roster_frame(&roster);
                        self.session_cmd(&s, Cmd::GroupSend(Box::new(frame)));
                    }
                }
                Do::Send(who, roster) => {
                    let session = lock(&self.groups)
                        .groups
                        .get(group)
                        .and_then(|g| g.sessions.get(&who).cloned());
                    if let Some(s) = session {
                        let frame = incoming::roster_frame(&roster);
                        self.session_cmd(&s, Cmd::GroupSend(Box::new(frame)));
                    }
                }
                Do::Tell(ev) => self.tell(group, ev),
                Do::End(why) => self.group_over(group, why, true),
            }
        }
        self.follow_pass(group);
    }

    /// The roster held now names another pass (the admin removed someone): this device holds
    /// the new token at the server and gives up the old one, which the removed member knows.
    fn follow_pass(&self, group: &str) {
        let moved = {
            let mut groups = lock(&self.groups);
            let Some(g) = groups.groups.get_mut(group) else {
                return;
            };
            let now = g.mesh.roster().pass_token();
            (now != g.token).then(|| (std::mem::replace(&mut g.token, now), now))
        };
        let (Some((old, new)), Some(me)) = (moved, self.me.upgrade()) else {
            return;
        };
        let group = group.to_string();
        // The old one first: a device holds at most four passes, and one in four groups would
        // otherwise be refused the new one and hold none.
        tokio::spawn(async move {
            let _ = me
                .signaling
                .request(ClientMsg::GroupLeave { token: old })
                .await;
            let mut wait = PASS_RETRY;
            for attempt in 1..=PASS_TRIES {
                // Not for a group that ended (or moved on to yet another pass) meanwhile: its
                // leave went out already, and a join now would hold a pass for nothing.
                let current = lock(&me.groups).groups.get(&group).map(|g| g.token);
                if current != Some(new) {
                    return;
                }
                match me
                    .signaling
                    .request(ClientMsg::GroupJoin { token: new })
                    .await
                {
                    Ok(_) => return,
                    Err(e) if attempt == PASS_TRIES => {
                        return me.emit(Event::Warning {
                            message: format!(
                                "the group's new pass was refused ({e}): members added from now \
                                 on may not reach this device"
                            ),
                        });
                    }
                    Err(_) => tokio::time::sleep(wait).await,
                }
                wait *= 2;
            }
        });
    }

    fn ring_member(&self, group: &str, member: Member) {
        if !self.member_vouched(&member) {
            return self.member_unreachable(group, member.username());
        }
        let Some(me) = self.me.upgrade() else { return };
        let Some(token) = lock(&self.groups).groups.get(group).map(|g| g.token) else {
            return;
        };
        let group = group.to_string();
        tokio::spawn(async move {
            let engine = Engine { inner: me };
            let who = member.username().clone();
            let tag = RingTag::Link {
                group: group.clone(),
                token,
                member: Box::new(member),
            };
            // The roster naming a newcomer can reach us just before the newcomer's pass reached
            // the server (the admin tells everyone once it joined, but a roster passed on over
            // another link may be quicker): a refused ring is tried again a few times while the
            // link is still ours to make.
            let mut wait = RING_RETRY;
            for attempt in 0..RING_TRIES {
                if engine.ring_to(&who, None, Some(tag.clone())).await.is_ok() {
                    return;
                }
                let ringing = lock(&engine.inner.groups)
                    .groups
                    .get(&group)
                    .is_some_and(|g| matches!(g.mesh.link(&who), Some(Link::Ringing { .. })));
                if !ringing || attempt + 1 == RING_TRIES {
                    break;
                }
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            engine.inner.member_unreachable(&group, &who);
        });
    }

    fn tell(&self, group: &str, ev: GroupEvent) {
        let (username, state) = match ev {
            GroupEvent::TimerSet(seconds) => {
                let sessions: Vec<String> = lock(&self.groups)
                    .groups
                    .get(group)
                    .map(|g| g.sessions.values().cloned().collect())
                    .unwrap_or_default();
                for s in sessions {
                    self.session_cmd(&s, Cmd::GroupTimer(seconds));
                }
                return self.emit(Event::GroupTimer {
                    group: group.to_string(),
                    seconds,
                });
            }
            GroupEvent::MemberAdded(u) => (u, MemberState::Added),
            GroupEvent::MemberConnected(u) => (u, MemberState::Connected),
            GroupEvent::MemberGone(u) => (u, MemberState::Gone),
        };
        let session = lock(&self.groups)
            .groups
            .get(group)
            .and_then(|g| g.sessions.get(&username).cloned())
            .filter(|_| state == MemberState::Connected);
        self.emit(Event::GroupMember {
            group: group.to_string(),
            username: username.to_string(),
            state,
            session,
        });
    }

    /// `hang_up`: end the links and rings still up (not during a panic, whose wipes do).
    fn group_over(&self, group: &str, why: GroupEnd, hang_up: bool) {
        let Some((g, ids)) = lock(&self.groups).remove(group) else {
            return;
        };
        g.stop.cancel();
        for id in ids.into_iter().filter(|_| hang_up) {
            // Links still up end with `bye` (their sessions wipe); rings still ringing stop.
            if lock(&self.calls).session(&id).is_some() {
                self.session_cmd(&id, Cmd::Leave);
            } else {
                self.signaling_hangup(&id);
            }
        }
        let _ = self
            .signaling
            .send(ClientMsg::GroupLeave { token: g.token });
        self.emit(Event::GroupEnded {
            group: group.to_string(),
            reason: match why {
                GroupEnd::Left => GroupEndReason::Left,
                GroupEnd::Removed => GroupEndReason::Removed,
                GroupEnd::Empty => GroupEndReason::Empty,
            },
        });
    }

    fn emit_joined(&self, group: &str) {
        let found = lock(&self.groups).groups.get(group).map(|g| {
            let r = g.mesh.roster();
            (
                r.admin.to_string(),
                r.members.iter().map(|m| m.username().to_string()).collect(),
                r.timer,
            )
        });
        if let Some((admin, members, timer)) = found {
            self.emit(Event::GroupJoined {
                group: group.to_string(),
                admin,
                members,
                timer,
            });
        }
    }
}
