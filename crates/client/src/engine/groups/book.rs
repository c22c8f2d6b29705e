//! The engine's book of its groups: each group's mesh (the rules, `group/mesh.rs`), and which ring
//! and which session is which member's link. Session ids are ring ids. No I/O here.

use std::collections::{HashMap, HashSet};

use anonchat_proto::group::Member;
use anonchat_proto::{DeviceCert, Key32, Username};
use tokio_util::sync::CancellationToken;

use crate::group::mesh::Mesh;

/// What a ring of ours, or one we took, is to a group.
#[derive(Clone)]
pub(in crate::engine) enum RingTag {
    /// The admin rings a friend into the group.
    Invite { group: String, who: Username },
    /// A ring between members (either way): the device it must reach is the roster's.
    Link {
        group: String,
        token: Key32,
        member: Box<Member>,
    },
}

pub(in crate::engine) struct Group {
    pub mesh: Mesh,
    /// The pass token this device joined at the server.
    pub token: Key32,
    /// member → the session that is its link.
    pub sessions: HashMap<Username, String>,
    /// member → our ring to it, still ringing.
    pub rings: HashMap<Username, String>,
    /// Stops the group's ticker.
    pub stop: CancellationToken,
}

#[derive(Default)]
pub(in crate::engine) struct Groups {
    pub groups: HashMap<String, Group>,
    /// ring id → what it is to a group (removed when its session ends or it fails).
    pub rings: HashMap<String, RingTag>,
    /// Invites this device was rung with (callee): the session becomes a link once the admin's
    /// roster arrives on it.
    pub invites: HashSet<String>,
    /// The peer's certificate of each group-related session (the session holds its own copy; this
    /// one is for the group's checks when it opens).
    pub certs: HashMap<String, DeviceCert>,
    /// session → (group, member).
    pub links: HashMap<String, (String, Username)>,
}

impl Groups {
    pub fn ring_started(&mut self, ring_id: &str, tag: RingTag) {
        let (group, who) = parts(&tag);
        if let Some(g) = self.groups.get_mut(&group) {
            g.rings.insert(who, ring_id.to_string());
        }
        self.rings.insert(ring_id.to_string(), tag);
    }

    /// The member a link ring must reach (or come from): `None` for rings that are no group link.
    pub fn link_member(&self, ring_id: &str) -> Option<Member> {
        match self.rings.get(ring_id)? {
            RingTag::Link { member, .. } => Some((**member).clone()),
            RingTag::Invite { .. } => None,
        }
    }

    /// Whether `ring_id` is an invite this device (the admin) rang with, still wanted.
    pub fn is_invite(&self, ring_id: &str) -> bool {
        matches!(self.rings.get(ring_id), Some(RingTag::Invite { .. }))
    }

    pub fn invited(&mut self, ring_id: &str) {
        self.invites.insert(ring_id.to_string());
    }

    /// A session starts for a ring: kept when the ring is a group's.
    pub fn session_starting(&mut self, ring_id: &str, peer: &DeviceCert) {
        if self.rings.contains_key(ring_id) || self.invites.contains(ring_id) {
            self.certs.insert(ring_id.to_string(), peer.clone());
        }
    }

    pub fn by_token(&self, token: &Key32) -> Option<&str> {
        self.groups
            .iter()
            .find(|(_, g)| &g.token == token)
            .map(|(id, _)| id.as_str())
    }

    /// Everything about session (or ring) `id` is forgotten; returns its group and member if it
    /// was that member's current link, or its pending ring while no link is up. A ring or session
    /// the book no longer counts as the member's (an old one, or one the server forged and ended)
    /// changes nothing: the server cannot cut a live link by ending another id.
    pub fn forget(&mut self, id: &str) -> Option<(String, Username)> {
        self.invites.remove(id);
        self.certs.remove(id);
        let tag = self.rings.remove(id);
        if let Some((group, who)) = self.links.remove(id) {
            let g = self.groups.get_mut(&group)?;
            if g.sessions.get(&who).map(String::as_str) != Some(id) {
                return None;
            }
            g.sessions.remove(&who);
            return Some((group, who));
        }
        let (group, who) = parts(&tag?);
        let g = self.groups.get_mut(&group)?;
        if g.rings.get(&who).map(String::as_str) != Some(id) {
            return None;
        }
        g.rings.remove(&who);
        if g.sessions.contains_key(&who) {
            return None;
        }
        Some((group, who))
    }

    /// Whether `who` has a ring on its way or a link up in `group`: one at a time per member.
    pub fn linking(&self, group: &str, who: &Username) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| g.rings.contains_key(who) || g.sessions.contains_key(who))
    }

    /// Session `id` is `who`'s link in `group` now.
    pub fn link(&mut self, id: &str, group: &str, who: &Username) {
        if let Some(g) = self.groups.get_mut(group) {
            g.rings.remove(who);
            g.sessions.insert(who.clone(), id.to_string());
        }
        self.invites.remove(id);
        self.links
            .insert(id.to_string(), (group.to_string(), who.clone()));
    }

    /// The group is over here: its state goes, and the sessions and rings it still had.
    pub fn remove(&mut self, group: &str) -> Option<(Group, Vec<String>)> {
        let g = self.groups.remove(group)?;
        let ids: Vec<String> = g
            .sessions
            .values()
            .chain(g.rings.values())
            .cloned()
            .collect();
        for id in &ids {
            self.rings.remove(id);
            self.links.remove(id);
            self.certs.remove(id);
        }
        Some((g, ids))
    }
}

/// A tag's group and member.
fn parts(tag: &RingTag) -> (String, Username) {
    match tag {
        RingTag::Invite { group, who } => (group.clone(), who.clone()),
        RingTag::Link { group, member, .. } => (group.clone(), member.username().clone()),
    }
}

#[cfg(test)]
mod tests {
    use anonchat_proto::{Caps, Sig64};

    use super::*;

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    fn member(name: &str) -> Member {
        Member {
            ak: Key32([3; 32]),
            device: DeviceCert {
                v: 1,
                username: user(name),
                device_id: format!("{name:A<22}"),
                dk_ed25519: Key32([1; 32]),
                dk_curve25519: Key32([2; 32]),
                caps: Caps::default(),
                created_at: 0,
                sig: Sig64([0; 64]),
            },
        }
    }

    fn book() -> Groups {
        let mesh = Mesh::start(Key32([7; 32]), Key32([8; 32]), member("alice"), 0, &|_| {
            Sig64([0; 64])
        });
        let mut b = Groups::default();
        b.groups.insert(
            "g".into(),
            Group {
                mesh,
                token: Key32([9; 32]),
                sessions: HashMap::new(),
                rings: HashMap::new(),
                stop: CancellationToken::new(),
            },
        );
        b
    }

    fn link_tag(who: &str) -> RingTag {
        RingTag::Link {
            group: "g".into(),
            token: Key32([9; 32]),
            member: Box::new(member(who)),
        }
    }

    fn bob_in_g() -> Option<(String, Username)> {
        Some(("g".into(), user("bob")))
    }

    #[test]
    fn a_ring_that_ends_for_a_member_whose_link_is_up_changes_nothing() {
        let mut b = book();
        b.ring_started("r1", link_tag("bob"));
        b.link("r1", "g", &user("bob"));
        // A ring the server forged for bob got recorded; the server ends it.
        b.rings.insert("forged".into(), link_tag("bob"));
        assert_eq!(b.forget("forged"), None, "bob's live link stands");
        assert!(b.linking("g", &user("bob")));
        // An id the book never had, or the same forged id again: nothing either.
        assert_eq!(b.forget("never"), None);
        assert_eq!(b.forget("forged"), None);
        // The link's own end counts, once.
        assert_eq!(b.forget("r1"), bob_in_g());
        assert!(!b.linking("g", &user("bob")));
        assert_eq!(b.forget("r1"), None);
    }

    #[test]
    fn only_the_members_pending_ring_counts_when_it_ends() {
        let mut b = book();
        b.ring_started("r1", link_tag("bob"));
        assert!(
            b.linking("g", &user("bob")),
            "one ring at a time per member"
        );
        b.rings.insert("old".into(), link_tag("bob"));
        assert_eq!(b.forget("old"), None, "not bob's pending ring");
        assert!(b.linking("g", &user("bob")));
        assert_eq!(b.forget("r1"), bob_in_g());
        assert!(!b.linking("g", &user("bob")));
        // An invite's ring ending (declined) counts too.
        let invite = RingTag::Invite {
            group: "g".into(),
            who: user("carol"),
        };
        b.ring_started("i1", invite);
        assert_eq!(b.forget("i1"), Some(("g".into(), user("carol"))));
    }

    #[test]
    fn an_old_link_of_a_member_ending_leaves_its_current_link() {
        let mut b = book();
        b.ring_started("r1", link_tag("bob"));
        b.link("r1", "g", &user("bob"));
        b.ring_started("r2", link_tag("bob"));
        b.link("r2", "g", &user("bob"));
        assert_eq!(b.forget("r1"), None, "r2 is bob's link now");
        assert!(b.linking("g", &user("bob")));
        assert_eq!(b.forget("r2"), bob_in_g());
    }
}
