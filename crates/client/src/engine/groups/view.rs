//! A group as a front-end shows it: the members, who is connected over which session, and each
//! member's safety number and whether this user verified it.

use serde::Serialize;

use super::super::{lock, Inner};
use crate::group::mesh::Link;

#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub group: String,
    pub admin: String,
    pub is_admin: bool,
    pub timer: u32,
    pub epoch: u64,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub username: String,
    /// `me`, `connected`, `connecting` or `gone`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub safety_number: String,
    /// Verified in person (pinned contacts only: a member who is no friend is vouched for by the
    /// admin's roster, not by a comparison this user made).
    pub verified: bool,
}

impl Inner {
    pub(in crate::engine) fn group_view(&self, id: &str) -> Option<GroupView> {
        let (roster, links, me) = {
            let groups = lock(&self.groups);
            let g = groups.groups.get(id)?;
            let r = g.mesh.roster().clone();
            let links: Vec<_> = r
                .members
                .iter()
                .map(|m| {
                    let u = m.username();
                    (g.mesh.link(u), g.sessions.get(u).cloned())
                })
                .collect();
            (r, links, self.my_ak()?.0)
        };
        let members = roster
            .members
            .iter()
            .zip(links)
            .map(|(m, (link, session))| {
                let u = m.username();
                let verified = lock(&self.data)
                    .contacts
                    .get(u.as_str())
                    .is_some_and(|c| c.verified && c.ak_pub == m.ak);
                MemberView {
                    username: u.to_string(),
                    state: match link {
                        _ if *u == me => "me",
                        Some(Link::Connected) => "connected",
                        Some(Link::Awaiting { .. } | Link::Ringing { .. }) => "connecting",
                        Some(Link::Gone) | None => "gone",
                    },
                    session,
                    safety_number: self.safety_with(u, &m.ak),
                    verified,
                }
            })
            .collect();
        Some(GroupView {
            group: id.to_string(),
            admin: roster.admin.to_string(),
            is_admin: roster.admin == me,
            timer: roster.timer,
            epoch: roster.epoch,
            members,
        })
    }
}
