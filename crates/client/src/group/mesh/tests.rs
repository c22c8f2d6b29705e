use ed25519_dalek::{Signer, SigningKey};

use anonchat_proto::{Caps, Sig64};

use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn pubk(k: &SigningKey) -> Key32 {
    Key32(k.verifying_key().to_bytes())
}

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

/// `name`'s device `n`, certified by its account key (seeded by `seed`).
fn member(name: &str, seed: u8, n: u8) -> Member {
    let ak = key(seed);
    let username = user(name);
    let id = format!("{:A<21}{n}", name);
    let (e, c) = (Key32([n; 32]), Key32([n + 1; 32]));
    let bytes = DeviceCert::signing_bytes(&username, &id, &e, &c, Caps::default(), 5);
    Member {
        ak: pubk(&ak),
        device: DeviceCert {
            v: 1,
            username,
            device_id: id,
            dk_ed25519: e,
            dk_curve25519: c,
            caps: Caps::default(),
            created_at: 5,
            sig: Sig64(ak.sign(&bytes).to_bytes()),
        },
    }
}

/// The members by name, each with its own key and device 1.
fn members(names: &[&str]) -> Vec<Member> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| member(n, i as u8 + 1, 1))
        .collect()
}

/// A roster signed by `signer` naming alice as admin.
fn roster_by(signer: &SigningKey, epoch: u64, timer: u32, mut members: Vec<Member>) -> Roster {
    members.sort_by(|a, b| a.username().cmp(b.username()));
    let group = Key32([7; 32]);
    let admin = user("alice");
    let pass = Key32([8; 32]);
    let bytes = Roster::signing_bytes(&group, epoch, &pass, &admin, timer, &members);
    Roster {
        v: 1,
        group,
        epoch,
        pass,
        admin,
        timer,
        members,
        sig: Sig64(signer.sign(&bytes).to_bytes()),
    }
}

/// alice (key 1) is the admin everywhere.
fn roster(epoch: u64, timer: u32, members: Vec<Member>) -> Roster {
    roster_by(&key(1), epoch, timer, members)
}

const FOUR: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// carol's mesh in a group of four.
fn carol(t0: Instant) -> (Mesh, Vec<Do>) {
    let mine = members(&FOUR)[2].device.clone();
    Mesh::join(
        roster(1, 0, members(&FOUR)),
        &user("alice"),
        &pubk(&key(1)),
        &mine,
        t0,
    )
    .expect("joins")
}

#[test]
fn joining_awaits_every_member_already_in_the_group() {
    let t0 = Instant::now();
    let (mesh, out) = carol(t0);
    assert_eq!(out, vec![Do::Tell(GroupEvent::TimerSet(0))]);
    for who in ["alice", "bob", "dave"] {
        assert_eq!(mesh.link(&user(who)), Some(Link::Awaiting { since: t0 }));
    }
    assert_eq!(mesh.link(&user("carol")), None, "no link to ourselves");
    assert!(mesh.recipients().is_empty());
}

#[test]
fn a_roster_the_pinned_admin_did_not_sign_or_that_names_another_device_of_ours_is_refused() {
    let t0 = Instant::now();
    let mine = members(&FOUR)[2].device.clone();
    // Signed by the server's key, which also stands in the admin's entry.
    let mut forged = members(&FOUR);
    forged[0] = member("alice", 9, 1);
    let r = roster_by(&key(9), 1, 0, forged);
    assert!(matches!(
        Mesh::join(r, &user("alice"), &pubk(&key(1)), &mine, t0),
        Err(MeshError::Roster(_))
    ));
    // Our account, but a device the server injected in our place.
    let mut injected = members(&FOUR);
    injected[2] = member("carol", 3, 7);
    assert!(matches!(
        Mesh::join(
            roster(1, 0, injected),
            &user("alice"),
            &pubk(&key(1)),
            &mine,
            t0
        ),
        Err(MeshError::NotMine)
    ));
    // bob rings us in but hands over alice's roster: its admin is not the friend who rang.
    assert!(matches!(
        Mesh::join(
            roster(1, 0, members(&FOUR)),
            &user("bob"),
            &pubk(&key(2)),
            &mine,
            t0
        ),
        Err(MeshError::Roster(RosterError::OtherAdmin))
    ));
}

#[test]
fn only_the_devices_the_roster_names_may_link_up() {
    let t0 = Instant::now();
    let (mut mesh, _) = carol(t0);
    let bob = members(&FOUR)[1].device.clone();
    assert_eq!(
        mesh.link_up(&bob),
        Ok(vec![
            Do::Tell(GroupEvent::MemberConnected(user("bob"))),
            Do::SendRoster(user("bob"))
        ])
    );
    assert_eq!(mesh.link_up(&bob), Ok(vec![]), "once");
    assert_eq!(mesh.recipients(), vec![user("bob")]);
    // Another device under bob's name and key: not the one the admin signed for.
    let other = member("bob", 2, 9).device;
    assert_eq!(mesh.link_up(&other), Err(MeshError::NotInRoster));
    // Someone the roster does not name at all.
    let mallory = member("mallory", 9, 1).device;
    assert_eq!(mesh.link_up(&mallory), Err(MeshError::NotInRoster));
    assert_eq!(mesh.recipients(), vec![user("bob")], "nothing changed");
}

#[test]
fn a_newer_roster_hangs_up_the_removed_rings_the_added_and_sets_the_timer() {
    let t0 = Instant::now();
    let (mut mesh, _) = carol(t0);
    for m in &members(&FOUR)[..2] {
        mesh.link_up(&m.device).unwrap();
    }
    // The admin removes bob, adds erin and sets a minute.
    let mut next = members(&FOUR);
    next.remove(1);
    next.push(member("erin", 5, 1));
    let t1 = t0 + Duration::from_secs(1);
    let out = mesh.on_roster(roster(2, 60, next), t1).unwrap();
    assert_eq!(
        out,
        vec![
            Do::Hangup(user("bob")),
            Do::Tell(GroupEvent::MemberGone(user("bob"))),
            Do::Ring(member("erin", 5, 1)),
            Do::Tell(GroupEvent::MemberAdded(user("erin"))),
            Do::Tell(GroupEvent::TimerSet(60)),
            Do::SendRoster(user("alice")),
        ]
    );
    assert_eq!(mesh.link(&user("bob")), None);
    assert_eq!(mesh.link(&user("erin")), Some(Link::Ringing { since: t1 }));
    assert_eq!(mesh.roster().epoch, 2);
    // bob, removed, can no longer link up.
    assert_eq!(
        mesh.link_up(&members(&FOUR)[1].device),
        Err(MeshError::NotInRoster)
    );
}

#[test]
fn replayed_and_tampered_rosters_change_nothing() {
    let t0 = Instant::now();
    let (mut mesh, _) = carol(t0);
    let mut three = members(&FOUR);
    three.remove(1);
    mesh.on_roster(roster(5, 0, three.clone()), t0).unwrap();
    // The server replays the older roster that still named bob, or the same one again.
    for old in [roster(1, 0, members(&FOUR)), roster(5, 0, three.clone())] {
        assert!(matches!(
            mesh.on_roster(old, t0),
            Err(MeshError::Roster(RosterError::Stale { .. }))
        ));
    }
    // It adds its own member to a newer roster after the admin signed it.
    let mut injected = roster(6, 0, three);
    injected.members.push(member("zed", 9, 1));
    assert!(mesh.on_roster(injected, t0).is_err());
    assert_eq!(mesh.roster().epoch, 5);
    assert_eq!(mesh.link(&user("bob")), None);
    assert_eq!(mesh.link(&user("zed")), None);
}

#[test]
fn a_roster_without_us_ends_the_group_here() {
    let t0 = Instant::now();
    let (mut mesh, _) = carol(t0);
    mesh.link_up(&members(&FOUR)[0].device).unwrap();
    let mut without = members(&FOUR);
    without.remove(2);
    let out = mesh.on_roster(roster(2, 0, without), t0).unwrap();
    assert_eq!(
        out,
        vec![
            Do::Hangup(user("alice")),
            Do::Hangup(user("bob")),
            Do::Hangup(user("dave")),
            Do::End(GroupEnd::Removed)
        ]
    );
    assert!(mesh.is_over());
    assert_eq!(
        mesh.link_up(&members(&FOUR)[1].device),
        Err(MeshError::NotInRoster)
    );
    assert!(mesh.leave().is_empty(), "over once");
}

#[test]
fn members_going_one_by_one_end_the_group_with_the_last() {
    let t0 = Instant::now();
    let (mut mesh, _) = carol(t0);
    for m in [0, 1, 3] {
        mesh.link_up(&members(&FOUR)[m].device).unwrap();
    }
    assert_eq!(
        mesh.link_down(&user("alice")),
        vec![Do::Tell(GroupEvent::MemberGone(user("alice")))]
    );
    assert!(mesh.link_down(&user("alice")).is_empty(), "once");
    assert!(mesh.link_down(&user("mallory")).is_empty());
    mesh.link_down(&user("bob"));
    assert_eq!(mesh.recipients(), vec![user("dave")]);
    assert_eq!(
        mesh.link_down(&user("dave")),
        vec![
            Do::Tell(GroupEvent::MemberGone(user("dave"))),
            Do::End(GroupEnd::Empty)
        ]
    );
    assert!(mesh.is_over());
}

#[test]
fn rings_that_take_too_long_count_as_gone() {
    let t0 = Instant::now();
    let (mut mesh, _) = carol(t0);
    mesh.link_up(&members(&FOUR)[0].device).unwrap();
    assert!(mesh
        .tick(t0 + LINK_SETUP - Duration::from_millis(1))
        .is_empty());
    let out = mesh.tick(t0 + LINK_SETUP);
    assert_eq!(
        out,
        vec![
            Do::Tell(GroupEvent::MemberGone(user("bob"))),
            Do::Tell(GroupEvent::MemberGone(user("dave"))),
        ],
        "the rings we awaited only count as gone"
    );
    assert_eq!(mesh.recipients(), vec![user("alice")]);
    assert!(!mesh.is_over(), "alice is still here");
    // A member added later is ours to ring: a ring of ours that takes too long is hung up.
    let mut five = members(&FOUR);
    five.push(member("erin", 5, 1));
    let t1 = t0 + LINK_SETUP;
    mesh.on_roster(roster(2, 0, five), t1).unwrap();
    assert_eq!(
        mesh.tick(t1 + LINK_SETUP),
        vec![
            Do::Hangup(user("erin")),
            Do::Tell(GroupEvent::MemberGone(user("erin"))),
        ]
    );
}

#[test]
fn leaving_hangs_up_every_live_link() {
    let t0 = Instant::now();
    let (mut mesh, _) = carol(t0);
    mesh.link_up(&members(&FOUR)[3].device).unwrap();
    mesh.link_down(&user("bob"));
    assert_eq!(
        mesh.leave(),
        vec![
            Do::Hangup(user("alice")),
            Do::Hangup(user("dave")),
            Do::End(GroupEnd::Left)
        ]
    );
    assert!(mesh.recipients().is_empty());
}

/// alice (key 1) starts a group and invites bob and carol.
fn admin(t0: Instant) -> Mesh {
    let sign = |b: &[u8]| Sig64(key(1).sign(b).to_bytes());
    let mut mesh = Mesh::start(
        Key32([7; 32]),
        Key32([8; 32]),
        members(&FOUR)[0].clone(),
        0,
        &sign,
    );
    for who in ["bob", "carol"] {
        mesh.invite(&user(who), t0).unwrap();
    }
    mesh
}

fn sign_alice(b: &[u8]) -> Sig64 {
    Sig64(key(1).sign(b).to_bytes())
}

#[test]
fn the_admin_admits_invitees_one_roster_each_and_tells_the_others_once_they_joined() {
    let t0 = Instant::now();
    let mut mesh = admin(t0);
    assert!(mesh.is_admin());
    assert_eq!(mesh.roster().members.len(), 1);
    assert_eq!(mesh.link(&user("bob")), Some(Link::Ringing { since: t0 }));
    let bob = members(&FOUR)[1].clone();
    let out = mesh.admit(bob.clone(), &sign_alice).unwrap();
    let r1 = mesh.roster().clone();
    assert_eq!(
        out,
        vec![
            Do::Tell(GroupEvent::MemberAdded(user("bob"))),
            Do::Tell(GroupEvent::MemberConnected(user("bob"))),
            Do::Send(user("bob"), Box::new(r1.clone())),
        ]
    );
    // What bob gets verifies under alice's key, and names both.
    assert_eq!(r1.epoch, 1);
    r1.verify(&pubk(&key(1))).unwrap();
    assert!(r1.member(&user("bob")).is_some());
    assert_eq!(
        mesh.admit(bob, &sign_alice),
        Err(MeshError::NotInvited),
        "once"
    );
    // Someone never invited is not admitted.
    assert_eq!(
        mesh.admit(members(&FOUR)[3].clone(), &sign_alice),
        Err(MeshError::NotInvited)
    );
    mesh.admit(members(&FOUR)[2].clone(), &sign_alice).unwrap();
    assert_eq!(mesh.roster().epoch, 2);
    // Only once carol joined the pass does bob get the roster naming her (and ring her).
    assert_eq!(
        mesh.joined(&user("carol")),
        vec![Do::SendRoster(user("bob"))]
    );
    assert!(
        mesh.joined(&user("carol")).is_empty(),
        "once per member: saying it again resends nothing"
    );
    assert!(mesh.joined(&user("mallory")).is_empty());
    // bob's mesh takes it and rings carol, who is newer than him.
    let bob_mine = members(&FOUR)[1].device.clone();
    let (mut bob_mesh, _) = Mesh::join(r1, &user("alice"), &pubk(&key(1)), &bob_mine, t0).unwrap();
    let out = bob_mesh.on_roster(mesh.roster().clone(), t0).unwrap();
    assert!(
        out.contains(&Do::Ring(members(&FOUR)[2].clone())),
        "{out:?}"
    );
    // carol's first roster names bob, who was there first: she awaits his ring.
    let carol_mine = members(&FOUR)[2].device.clone();
    let (carol_mesh, out) = Mesh::join(
        mesh.roster().clone(),
        &user("alice"),
        &pubk(&key(1)),
        &carol_mine,
        t0,
    )
    .unwrap();
    assert!(!out.iter().any(|d| matches!(d, Do::Ring(_))));
    assert_eq!(
        carol_mesh.link(&user("bob")),
        Some(Link::Awaiting { since: t0 })
    );
}

#[test]
fn the_admin_removes_a_member_tells_it_and_everyone_and_takes_no_roster() {
    let t0 = Instant::now();
    let mut mesh = admin(t0);
    mesh.admit(members(&FOUR)[1].clone(), &sign_alice).unwrap();
    mesh.admit(members(&FOUR)[2].clone(), &sign_alice).unwrap();
    let before = mesh.roster().clone();
    let out = mesh
        .remove(&user("bob"), Key32([5; 32]), &sign_alice)
        .unwrap();
    // bob is told with a roster that drops it but still carries the old pass; the others get the
    // next one, with the fresh pass bob never sees.
    let told = match &out[0] {
        Do::Send(who, r) if who == &user("bob") => (**r).clone(),
        other => panic!("bob is told first: {other:?}"),
    };
    assert_eq!(
        out[1..],
        [
            Do::Hangup(user("bob")),
            Do::Tell(GroupEvent::MemberGone(user("bob"))),
            Do::SendRoster(user("carol")),
        ]
    );
    assert_eq!((told.epoch, told.pass), (3, before.pass));
    assert!(told.member(&user("bob")).is_none());
    assert_eq!(told.verify(&pubk(&key(1))), Ok(()));
    let now = mesh.roster();
    assert_eq!((now.epoch, now.pass), (4, Key32([5; 32])));
    assert_eq!(now.members, told.members);
    assert_eq!(now.verify(&pubk(&key(1))), Ok(()));
    assert_ne!(now.pass_token(), before.pass_token());
    assert_eq!(
        mesh.remove(&user("bob"), Key32([6; 32]), &sign_alice),
        Err(MeshError::NotInRoster)
    );
    // A roster from a member (even a newer one) changes nothing at the admin's.
    let forged = roster_by(&key(9), 9, 0, members(&FOUR));
    assert_eq!(mesh.on_roster(forged, t0), Ok(vec![]));
    assert_eq!(mesh.roster().epoch, 4);
    // The timer: a new roster to everyone.
    assert_eq!(
        mesh.set_timer(60, &sign_alice),
        Ok(vec![
            Do::Tell(GroupEvent::TimerSet(60)),
            Do::SendRoster(user("carol"))
        ])
    );
    assert!(mesh.set_timer(61, &sign_alice).is_err());
    assert_eq!(mesh.roster().timer, 60);
    // A new timer keeps the pass: no one who knew it left.
    assert_eq!(mesh.roster().pass, Key32([5; 32]));
    // The last member goes: the group is over.
    assert_eq!(
        mesh.link_down(&user("carol")),
        vec![
            Do::Tell(GroupEvent::MemberGone(user("carol"))),
            Do::End(GroupEnd::Empty)
        ]
    );
}

#[test]
fn members_cannot_do_what_only_the_admin_may_and_invites_are_bounded() {
    let t0 = Instant::now();
    let (mut mesh, _) = carol(t0);
    assert!(!mesh.is_admin());
    assert_eq!(mesh.invite(&user("erin"), t0), Err(MeshError::NotAdmin));
    assert_eq!(
        mesh.remove(&user("bob"), Key32([6; 32]), &sign_alice),
        Err(MeshError::NotAdmin)
    );
    assert_eq!(mesh.set_timer(60, &sign_alice), Err(MeshError::NotAdmin));
    let mut mesh = admin(t0);
    assert_eq!(mesh.invite(&user("bob"), t0), Err(MeshError::NotInvited));
    assert_eq!(mesh.invite(&user("alice"), t0), Err(MeshError::NotInvited));
    for i in 0..7 {
        mesh.invite(&user(&format!("user{i}")), t0).unwrap();
    }
    assert_eq!(mesh.invite(&user("tenth"), t0), Err(MeshError::Full));
    // Invites nobody answers: the group ends with the last.
    let names: Vec<Username> = mesh.recipients();
    assert!(names.is_empty());
    let mut last = Vec::new();
    for who in [
        "bob", "carol", "user0", "user1", "user2", "user3", "user4", "user5", "user6",
    ] {
        last = mesh.link_down(&user(who));
    }
    assert_eq!(last.last(), Some(&Do::End(GroupEnd::Empty)));
}

/// Two invitees answer at once: the admin admits both before its driver sends either roster. Each
/// newcomer's first roster is still the one that admitted it, so of the pair exactly one rings
/// (with the admin's current roster, both would await the other's ring: a link never made).
#[test]
fn invitees_admitted_back_to_back_still_have_one_ringer_per_pair() {
    let t0 = Instant::now();
    let mut mesh = admin(t0);
    let welcome = |out: Vec<Do>| {
        out.into_iter()
            .find_map(|d| match d {
                Do::Send(_, r) => Some(*r),
                _ => None,
            })
            .expect("a welcome")
    };
    let to_bob = welcome(mesh.admit(members(&FOUR)[1].clone(), &sign_alice).unwrap());
    let to_carol = welcome(mesh.admit(members(&FOUR)[2].clone(), &sign_alice).unwrap());
    assert!(
        to_bob.member(&user("carol")).is_none(),
        "bob's names only who came before"
    );
    let join = |r: Roster, i: usize| {
        Mesh::join(
            r,
            &user("alice"),
            &pubk(&key(1)),
            &members(&FOUR)[i].device,
            t0,
        )
        .unwrap()
    };
    let (mut bob, _) = join(to_bob, 1);
    let (carol, out) = join(to_carol, 2);
    assert!(!out.iter().any(|d| matches!(d, Do::Ring(_))));
    assert_eq!(carol.link(&user("bob")), Some(Link::Awaiting { since: t0 }));
    // The roster naming carol reaches bob later (the admin's, once she joined): he rings her.
    let out = bob.on_roster(mesh.roster().clone(), t0).unwrap();
    assert!(
        out.contains(&Do::Ring(members(&FOUR)[2].clone())),
        "{out:?}"
    );
}
