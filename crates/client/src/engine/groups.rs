//! Groups on the engine (DESIGN §10): the driver of each group's mesh (`group/mesh.rs`, the
//! rules) over pairwise sessions. It starts groups, rings invitees and members, checks every ring
//! and session against the admin's signed roster, passes rosters on, and fans texts out sealed
//! once per member. The server is not trusted (P8): it cannot add a member or a device, replay a
//! roster, or connect a ring nobody in the roster made.

use std::time::{Duration, Instant};

use anonchat_proto::frames::{PeerFrame, SecretText};
use anonchat_proto::group::{pass_token, Member, Roster, RosterError};
use anonchat_proto::wire::ClientMsg;
use anonchat_proto::{Key32, Username};
use rand::RngCore;
use tokio_util::sync::CancellationToken;

use super::{lock, Engine, Inner};
use crate::attachments::NewAttachment;
use crate::error::SessionError;
use crate::events::{Event, GroupEndReason, MemberState};
use crate::group::mesh::{Do, GroupEnd, GroupEvent, Link, Mesh, MeshError};
use crate::session::{Cmd, GroupFrame, Sent};
use crate::ClientError;

mod book;
mod view;
pub(super) use book::{Group, Groups, RingTag};
pub use view::{GroupView, MemberView};

/// How often a group's rules are asked about rings that take too long.
const TICK: Duration = Duration::from_secs(1);
/// A refused ring to a member is tried this many times, the first retry after this, doubling.
const RING_TRIES: u32 = 5;
const RING_RETRY: Duration = Duration::from_millis(100);

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
            let mut id = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut id);
            (me, Key32(id))
        };
        if !anonchat_proto::limits::TIMER_CHOICES.contains(&timer) {
            return Err(ClientError::Refused("no such timer".into()));
        }
        let mesh = Mesh::start(id, me, timer, &|b| self.inner.sign_roster(b));
        let token = Key32(pass_token(&id));
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
                .remove(&who, &|b| self.inner.sign_roster(b))
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

    /// A text to every connected member, sealed once per member in its own session. Returns each
    /// member's id of it (receipts name it per member).
    pub async fn group_send(
        &self,
        group: &str,
        text: SecretText,
    ) -> Result<Vec<(String, Sent)>, ClientError> {
        self.inner.unlocked()?;
        let links = self.group_links(group)?;
        let mut sent = Vec::with_capacity(links.len());
        for (who, session) in links {
            if let Ok(s) = self.send_text(&session, text.clone()).await {
                sent.push((who, s));
            }
        }
        Ok(sent)
    }

    /// A file from disk to every connected member (read once; each member's copy travels in its
    /// own session).
    pub async fn group_send_file(
        &self,
        group: &str,
        path: &std::path::Path,
        view_once: bool,
    ) -> Result<Vec<(String, Sent)>, ClientError> {
        self.inner.unlocked()?;
        self.group_links(group)?;
        let new = super::media::file_attachment(path, view_once).await?;
        self.group_send_attachment(group, new).await
    }

    /// A photo with camera `camera` to every connected member: one photo, the same bytes to all.
    pub async fn group_send_photo(
        &self,
        group: &str,
        camera: u32,
        view_once: bool,
    ) -> Result<Vec<(String, Sent)>, ClientError> {
        self.inner.unlocked()?;
        self.group_links(group)?;
        let new = self.photo_attachment(camera, view_once).await?;
        self.group_send_attachment(group, new).await
    }

    /// Bytes the front-end holds, to every connected member.
    pub async fn group_send_attachment(
        &self,
        group: &str,
        new: NewAttachment,
    ) -> Result<Vec<(String, Sent)>, ClientError> {
        let links = self.group_links(group)?;
        let mut sent = Vec::with_capacity(links.len());
        for (who, session) in links {
            let copy = NewAttachment {
                name: new.name.clone(),
                mime: new.mime.clone(),
                kind: new.kind,
                view_once: new.view_once,
                data: new.data.clone(),
            };
            if let Ok(s) = self.send_attachment(&session, copy).await {
                sent.push((who, s));
            }
        }
        Ok(sent)
    }

    fn group_links(&self, group: &str) -> Result<Vec<(String, String)>, ClientError> {
        let links = self.inner.group_links(group)?;
        if links.is_empty() {
            return Err(ClientError::Session(SessionError::NotOpen));
        }
        Ok(links)
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

    fn member_unreachable(&self, group: &str, who: &Username) {
        let dos = lock(&self.groups)
            .groups
            .get_mut(group)
            .map(|g| g.mesh.link_down(who))
            .unwrap_or_default();
        self.run_group(group, dos);
    }

    fn session_cmd(&self, session: &str, cmd: Cmd) {
        if let Some(s) = lock(&self.calls).session(session) {
            let _ = s.tx.try_send(cmd);
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
                    let found = {
                        let groups = lock(&self.groups);
                        groups.groups.get(group).and_then(|g| {
                            g.sessions
                                .get(&who)
                                .map(|s| (s.clone(), g.mesh.roster().clone()))
                        })
                    };
                    if let Some((s, roster)) = found {
                        let frame = PeerFrame::GroupRoster {
                            roster: Box::new(roster),
                        };
                        self.session_cmd(&s, Cmd::GroupSend(Box::new(frame)));
                    }
                }
                Do::Tell(ev) => self.tell(group, ev),
                Do::End(why) => self.group_over(group, why, true),
            }
        }
    }

    fn ring_member(&self, group: &str, member: Member) {
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

    /// A ring from a member of one of our groups (the server let it through on the pass). Taken
    /// only from a member the roster names under the key the server says rang, whom we await;
    /// the device is checked against the roster when it connects.
    pub(super) fn on_group_ring(&self, ring_id: String, from: Username, ak: Key32, token: Key32) {
        let member = {
            let groups = lock(&self.groups);
            groups.by_token(&token).and_then(|gid| {
                let g = &groups.groups[gid];
                let awaited = matches!(g.mesh.link(&from), Some(Link::Awaiting { .. }));
                g.mesh
                    .roster()
                    .member(&from)
                    .filter(|m| awaited && m.ak == ak)
                    .map(|m| (gid.to_string(), m.clone()))
            })
        };
        let Some((group, member)) = member else {
            let _ = self.signaling.send(ClientMsg::Answer {
                ring_id,
                accept: false,
            });
            return self.emit(Event::Warning {
                message: "declined a group ring from no member this device awaits".into(),
            });
        };
        {
            let mut calls = lock(&self.calls);
            if calls.incoming_ring(&ring_id, from, ak).is_err()
                || calls.accepted_here(&ring_id).is_err()
            {
                return;
            }
        }
        lock(&self.groups).ring_started(
            &ring_id,
            RingTag::Link {
                group,
                token,
                member: Box::new(member),
            },
        );
        // Joining the group was the user's answer to every member's ring.
        let _ = self.signaling.send(ClientMsg::Answer {
            ring_id,
            accept: true,
        });
    }

    /// A session's event, seen before the front-end gets it: a group link opened or ended.
    pub(super) fn group_session_event(&self, ev: &Event) {
        match ev {
            Event::SessionOpen { session, .. } => self.link_opened(session),
            Event::SessionEnded { session, .. } | Event::SessionFailed { session, .. } => {
                self.link_closed(session)
            }
            _ => {}
        }
    }

    /// The signaling connection (re)opened: the server forgot this device's passes with the old
    /// socket, so members could not ring it; join them again.
    pub(super) fn rejoin_groups(&self) {
        let tokens: Vec<Key32> = lock(&self.groups)
            .groups
            .values()
            .map(|g| g.token)
            .collect();
        for token in tokens {
            let _ = self.signaling.send(ClientMsg::GroupJoin { token });
        }
    }

    /// A ring ended before it became a chat.
    pub(super) fn group_ring_ended(&self, ring_id: &str) {
        self.link_closed(ring_id);
    }

    fn link_closed(&self, id: &str) {
        let found = lock(&self.groups).forget(id);
        if let Some((group, who)) = found {
            self.member_unreachable(&group, &who);
        }
    }

    fn link_opened(&self, session: &str) {
        let mut groups = lock(&self.groups);
        let Some(cert) = groups.certs.get(session).cloned() else {
            return;
        };
        let tag = groups.rings.get(session).cloned();
        let (group, dos) = match tag {
            Some(RingTag::Invite { group, who }) => {
                let Some(ak) = self.pinned(&who) else { return };
                groups.link(session, &group, &who);
                let Some(g) = groups.groups.get_mut(&group) else {
                    return;
                };
                let member = Member { ak, device: cert };
                let dos = g.mesh.admit(member, &|b| self.sign_roster(b));
                (group, dos)
            }
            Some(RingTag::Link { group, member, .. }) => {
                groups.link(session, &group, member.username());
                let Some(g) = groups.groups.get_mut(&group) else {
                    return;
                };
                (group, g.mesh.link_up(&cert))
            }
            // An invite we took: it becomes a link when the admin's roster comes.
            None => return,
        };
        let timer = groups.groups.get(&group).map(|g| g.mesh.roster().timer);
        drop(groups);
        match dos {
            Ok(dos) => {
                if let Some(t) = timer {
                    self.session_cmd(session, Cmd::GroupTimer(t));
                }
                self.run_group(&group, dos);
            }
            Err(e) => {
                self.emit(Event::Warning {
                    message: format!("ended a group link: {e}"),
                });
                self.session_cmd(session, Cmd::Leave);
            }
        }
    }

    /// A group frame on session `id`.
    pub(super) fn on_group_frame(&self, id: &str, frame: GroupFrame) {
        let link = lock(&self.groups).links.get(id).cloned();
        match (frame, link) {
            (GroupFrame::Roster(roster), Some((group, _))) => {
                let res = lock(&self.groups)
                    .groups
                    .get_mut(&group)
                    .map(|g| g.mesh.on_roster(*roster, Instant::now()));
                match res {
                    Some(Ok(dos)) => self.run_group(&group, dos),
                    // The same roster from several members, or an older one: nothing new.
                    Some(Err(MeshError::Roster(RosterError::Stale { .. }))) | None => {}
                    Some(Err(e)) => self.emit(Event::Warning {
                        message: format!("refused a group roster: {e}"),
                    }),
                }
            }
            (GroupFrame::Roster(roster), None) => self.join_group(id, *roster),
            (GroupFrame::Joined(_), Some((group, who))) => {
                let dos = lock(&self.groups)
                    .groups
                    .get(&group)
                    .map(|g| g.mesh.joined(&who))
                    .unwrap_or_default();
                self.run_group(&group, dos);
            }
            (GroupFrame::Joined(_), None) => {}
        }
    }

    /// The admin's roster on an invite this device took: join the group, or end the chat.
    fn join_group(&self, session: &str, roster: Roster) {
        let (invited, cert) = {
            let groups = lock(&self.groups);
            (
                groups.invites.contains(session),
                groups.certs.get(session).cloned(),
            )
        };
        let (Some(cert), true) = (cert, invited) else {
            return self.emit(Event::Warning {
                message: "ignored a group roster on a chat that is no group invite".into(),
            });
        };
        let admin = cert.username.clone();
        let mine = lock(&self.identity).as_ref().map(|i| i.cert.clone());
        let (Some(admin_ak), Some(mine)) = (self.pinned(&admin), mine) else {
            return;
        };
        let joined = Mesh::join(roster, &admin, &admin_ak, &mine, Instant::now());
        let (mesh, dos) = match joined {
            Ok(j) => j,
            Err(e) => {
                self.emit(Event::Warning {
                    message: format!("refused the group invite: {e}"),
                });
                return self.session_cmd(session, Cmd::Leave);
            }
        };
        let epoch = mesh.roster().epoch;
        let token = Key32(pass_token(&mesh.roster().group));
        let gid = self.add_group(mesh, token);
        let up = {
            let mut groups = lock(&self.groups);
            groups.link(session, &gid, &admin);
            groups.groups.get_mut(&gid).map(|g| g.mesh.link_up(&cert))
        };
        self.emit_joined(&gid);
        self.run_group(&gid, dos);
        if let Some(Ok(up)) = up {
            self.run_group(&gid, up);
        }
        // The pass first, then the word to the admin: the other members ring only after it.
        let Some(me) = self.me.upgrade() else { return };
        let session = session.to_string();
        tokio::spawn(async move {
            if me
                .signaling
                .request(ClientMsg::GroupJoin { token })
                .await
                .is_ok()
            {
                let frame = PeerFrame::GroupJoined { epoch };
                me.session_cmd(&session, Cmd::GroupSend(Box::new(frame)));
            }
        });
    }
}
