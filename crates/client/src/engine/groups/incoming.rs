//! What reaches a group from outside this device: member rings, links opening and closing,
//! and group frames from members — each checked against the roster before it counts.

use std::time::Instant;

use anonchat_proto::frames::PeerFrame;
use anonchat_proto::group::{Member, Roster, RosterError};
use anonchat_proto::wire::ClientMsg;
use anonchat_proto::{Key32, Username};

use super::super::{lock, Inner};
use super::RingTag;
use crate::events::Event;
use crate::group::mesh::{Do, Link, Mesh, MeshError};
use crate::session::{Cmd, GroupFrame};
use crate::trust::{Flow, Verdict};

impl Inner {
    /// A ring from a member of one of our groups (the server let it through on the pass). Taken
    /// only from a member the roster names under the key the server says rang, whom we await and
    /// have no ring or link with yet, and whom this user's own trust lets through (P8); the device
    /// is checked against the roster when it connects.
    pub(in crate::engine) fn on_group_ring(
        &self,
        ring_id: String,
        from: Username,
        ak: Key32,
        token: Key32,
    ) {
        let member = {
            let groups = lock(&self.groups);
            groups.by_token(&token).and_then(|gid| {
                let g = &groups.groups[gid];
                let awaited = matches!(g.mesh.link(&from), Some(Link::Awaiting { .. }))
                    && !groups.linking(gid, &from);
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
        if !self.member_vouched(&member) {
            let _ = self.signaling.send(ClientMsg::Answer {
                ring_id,
                accept: false,
            });
            return self.member_unreachable(&group, &from);
        }
        {
            let mut calls = lock(&self.calls);
            if calls.incoming_ring(&ring_id, from, ak).is_err()
                || calls.accepted_for_group(&ring_id).is_err()
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

    /// This user's own trust over the admin's roster (P8): no link with a member this user
    /// blocked, nor with one whose key differs from the pin or whose key change waits for the
    /// user's decision. Says so.
    pub(in crate::engine) fn member_vouched(&self, member: &Member) -> bool {
        let who = member.username();
        let why = match self.vouch(who, member.ak, Flow::Roster) {
            Verdict::Pinned | Verdict::FirstUse => return true,
            Verdict::Blocked => "you blocked them",
            Verdict::Changed { .. } => {
                "the group names another account key for them than the one you pinned"
            }
            Verdict::Pending => "their account key changed and you have not trusted the new one",
        };
        self.emit(Event::Warning {
            message: format!("no group link with {who}: {why}"),
        });
        false
    }

    /// A session's event, seen before the front-end gets it: a group link opened or ended.
    pub(in crate::engine) fn group_session_event(&self, ev: &Event) {
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
    pub(in crate::engine) fn rejoin_groups(&self) {
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
    pub(in crate::engine) fn group_ring_ended(&self, ring_id: &str) {
        self.link_closed(ring_id);
    }

    fn link_closed(&self, id: &str) {
        let found = lock(&self.groups).forget(id);
        if let Some((group, who)) = found {
            self.member_unreachable(&group, &who);
        }
    }

    fn link_opened(&self, session: &str) {
        // A newcomer's welcome is queued on its link while the groups lock is held (below), so no
        // roster produced after its admission can overtake it. Its sender is taken first: the
        // calls lock is never taken inside the groups lock.
        let link = lock(&self.calls).session(session).map(|s| s.tx.clone());
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
                let dos = g
                    .mesh
                    .admit(member, &|b| self.sign_roster(b))
                    .map(|mut dos| {
                        dos.retain(|d| match (d, &link) {
                            (Do::Send(_, roster), Some(tx)) => {
                                let _ = tx.try_send(Cmd::GroupSend(Box::new(roster_frame(roster))));
                                false
                            }
                            _ => true,
                        });
                        dos
                    });
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
    pub(in crate::engine) fn on_group_frame(&self, id: &str, frame: GroupFrame) {
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
                    .get_mut(&group)
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
        let token = mesh.roster().pass_token();
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
            // The pass held by then: a roster with a fresh one may have come meanwhile.
            let Some(token) = lock(&me.groups).groups.get(&gid).map(|g| g.token) else {
                return;
            };
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

pub(super) fn roster_frame(roster: &Roster) -> PeerFrame {
    PeerFrame::GroupRoster {
        roster: Box::new(roster.clone()),
    }
}
