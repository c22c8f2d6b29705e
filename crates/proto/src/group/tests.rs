use ed25519_dalek::{Signer, SigningKey};

use super::*;
use crate::Caps;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn pubk(k: &SigningKey) -> Key32 {
    Key32(k.verifying_key().to_bytes())
}

/// `name`'s device, certified by `ak`.
fn member(name: &str, ak: &SigningKey) -> Member {
    let username = Username::parse(name).unwrap();
    let id = format!("{:A<22}", name);
    let (e, c) = (Key32([3; 32]), Key32([4; 32]));
    let caps = Caps::default();
    let bytes = DeviceCert::signing_bytes(&username, &id, &e, &c, caps, 5);
    Member {
        ak: pubk(ak),
        device: DeviceCert {
            v: 1,
            username,
            device_id: id,
            dk_ed25519: e,
            dk_curve25519: c,
            caps,
            created_at: 5,
            sig: Sig64(ak.sign(&bytes).to_bytes()),
        },
    }
}

fn signed(admin: &SigningKey, epoch: u64, timer: u32, mut members: Vec<Member>) -> Roster {
    members.sort_by(|a, b| a.username().cmp(b.username()));
    let group = Key32([7; 32]);
    let admin_name = Username::parse("alice").unwrap();
    let pass = Key32([9; 32]);
    let bytes = Roster::signing_bytes(&group, epoch, &pass, &admin_name, timer, &members);
    Roster {
        v: 1,
        group,
        epoch,
        pass,
        admin: admin_name,
        timer,
        members,
        sig: Sig64(admin.sign(&bytes).to_bytes()),
    }
}

/// alice (the admin, key 1), bob (key 2) and carol (key 3) at `epoch`.
fn three(epoch: u64) -> Roster {
    let (a, b, c) = (key(1), key(2), key(3));
    signed(
        &a,
        epoch,
        0,
        vec![member("alice", &a), member("bob", &b), member("carol", &c)],
    )
}

#[test]
fn signing_bytes_worked_example() {
    // docs/protocol.md §3: the head, then each member's key, certificate bytes and signature.
    let r = three(1);
    let b = r.bytes_to_sign();
    let hex: String = b[..138].iter().map(|x| format!("{x:02x}")).collect();
    assert_eq!(
        hex,
        format!(
            "616e6f6e636861742f763100\
             67726f75702d726f7374657200\
             0000000000000001\
             00000020{}\
             0000000000000001\
             00000020{}\
             00000005616c696365\
             0000000000000000\
             0000000000000003",
            "07".repeat(32),
            "09".repeat(32)
        )
    );
    let cert_len = r.members[0].device.bytes_to_sign().len();
    assert_eq!(
        &b[138..142],
        &32u32.to_be_bytes(),
        "the first member's account key"
    );
    assert_eq!(&b[142..174], &pubk(&key(1)).0);
    assert_eq!(&b[174..178], &(cert_len as u32).to_be_bytes());
    let certs: usize = r
        .members
        .iter()
        .map(|m| m.device.bytes_to_sign().len())
        .sum();
    assert_eq!(b.len(), 138 + 3 * (36 + 4 + 68) + certs);
}

#[test]
fn a_signed_roster_verifies_under_the_pinned_admin_key_only() {
    let r = three(1);
    assert_eq!(r.verify(&pubk(&key(1))), Ok(()));
    assert_eq!(r.verify(&pubk(&key(9))), Err(ProtoError::BadSignature));
    assert_eq!(r.admin_member().map(|m| m.ak), Some(pubk(&key(1))));
    assert!(r.member(&Username::parse("carol").unwrap()).is_some());
    assert!(r.member(&Username::parse("mallory").unwrap()).is_none());
}

#[test]
fn what_a_server_might_change_is_refused() {
    let admin = pubk(&key(1));
    let m = key(9);
    // A member added after the admin signed.
    let mut injected = three(1);
    injected.members.push(member("mallory", &m));
    assert_eq!(injected.verify(&admin), Err(ProtoError::BadSignature));
    // A member's device swapped for the server's, certified by the server's key.
    let mut swapped = three(1);
    swapped.members[1] = member("bob", &m);
    assert_eq!(swapped.verify(&admin), Err(ProtoError::BadSignature));
    // The swapped device under the member's real key: its certificate does not verify.
    let mut forged_cert = three(1);
    forged_cert.members[1].device.dk_curve25519 = Key32([9; 32]);
    assert_eq!(forged_cert.verify(&admin), Err(ProtoError::BadSignature));
    // A timer or the epoch changed.
    for change in [
        |r: &mut Roster| r.timer = 5,
        |r: &mut Roster| r.epoch = 2,
        |r: &mut Roster| r.group = Key32([8; 32]),
    ] {
        let mut r = three(1);
        change(&mut r);
        assert_eq!(r.verify(&admin), Err(ProtoError::BadSignature));
    }
    // The admin's own entry names another key (the server's), signed by that key.
    let other = signed(&m, 1, 0, vec![member("alice", &m), member("bob", &key(2))]);
    assert_eq!(other.verify(&admin), Err(ProtoError::BadSignature));
}

#[test]
fn malformed_rosters_are_refused_even_when_signed() {
    let a = key(1);
    let admin = pubk(&a);
    let malformed = |r: &Roster| matches!(r.verify(&admin), Err(ProtoError::Malformed(_)));
    // Alone is no group.
    assert!(malformed(&signed(&a, 1, 0, vec![member("alice", &a)])));
    // A timer that is not a choice.
    assert!(malformed(&signed(
        &a,
        1,
        7,
        vec![member("alice", &a), member("bob", &key(2))]
    )));
    // No admin among the members.
    assert!(malformed(&signed(
        &a,
        1,
        0,
        vec![member("bob", &key(2)), member("carol", &key(3))]
    )));
    // Someone twice, and out of order (re-signed, so only the rule refuses them).
    let mut twice = vec![
        member("alice", &a),
        member("bob", &key(2)),
        member("bob", &key(2)),
    ];
    twice.sort_by(|x, y| x.username().cmp(y.username()));
    assert!(malformed(&signed(&a, 1, 0, twice)));
    let mut unsorted = three(1);
    unsorted.members.swap(1, 2);
    unsorted.sig = Sig64(a.sign(&unsorted.bytes_to_sign()).to_bytes());
    assert!(malformed(&unsorted));
    // Eleven members.
    let names = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
    ];
    let mut many: Vec<Member> = names.iter().map(|n| member(n, &key(4))).collect();
    many[0] = member("alice", &a);
    many.push(member("judy", &key(5)));
    assert_eq!(
        signed(&a, 1, 0, many.clone()).verify(&admin),
        Ok(()),
        "ten fit"
    );
    many.push(member("kim", &key(6)));
    assert!(matches!(
        signed(&a, 1, 0, many).verify(&admin),
        Err(ProtoError::TooMany { count: 11, .. })
    ));
    let mut v2 = three(1);
    v2.v = 2;
    assert_eq!(v2.verify(&admin), Err(ProtoError::BadVersion(2)));
}

#[test]
fn only_a_newer_roster_of_the_same_group_and_admin_follows() {
    let a = key(1);
    let held = three(3);
    // The admin removes carol: epoch 4.
    let next = signed(&a, 4, 60, vec![member("alice", &a), member("bob", &key(2))]);
    assert_eq!(next.follows(&held), Ok(()));
    // A replay of the held roster, or of an older one (bringing back someone removed).
    assert_eq!(
        three(3).follows(&held),
        Err(RosterError::Stale { got: 3, held: 3 })
    );
    assert_eq!(
        three(2).follows(&next),
        Err(RosterError::Stale { got: 2, held: 4 })
    );
    // Another group.
    let mut other = three(5);
    other.group = Key32([8; 32]);
    other.sig = Sig64(a.sign(&other.bytes_to_sign()).to_bytes());
    assert_eq!(other.follows(&held), Err(RosterError::OtherGroup));
    // A member making itself admin, with a valid signature of its own.
    let b = key(2);
    let mut coup = signed(&b, 5, 0, vec![member("alice", &a), member("bob", &b)]);
    coup.admin = Username::parse("bob").unwrap();
    coup.sig = Sig64(b.sign(&coup.bytes_to_sign()).to_bytes());
    assert_eq!(coup.follows(&held), Err(RosterError::OtherAdmin));
    // The admin's key replaced (by the server's) in a newer roster signed by that key.
    let m = key(9);
    let usurped = signed(&m, 5, 0, vec![member("alice", &m), member("bob", &b)]);
    assert_eq!(usurped.follows(&held), Err(RosterError::OtherAdmin));
    // Newer but not signed by the admin.
    let mut unsigned = signed(&a, 5, 0, vec![member("alice", &a), member("bob", &b)]);
    unsigned.sig = Sig64([0; 64]);
    assert!(matches!(
        unsigned.follows(&held),
        Err(RosterError::Proto(_))
    ));
}

#[test]
fn pass_token_worked_example() {
    // docs/protocol.md §4: SHA-256 of "anonchat/v1\0group-pass\0", 00000020 and 32x 0x07 (the
    // group), 00000020 and 32x 0x09 (the pass).
    let hex: String = pass_token(&Key32([7; 32]), &Key32([9; 32]))
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    assert_eq!(
        hex,
        "c4742ccccca3e90c4fb63ac4b6dd4b68f22f2b49fe40df40c80bfcc55458b082"
    );
    // The same group under a fresh pass (after a removal) has another token.
    assert_ne!(
        pass_token(&Key32([7; 32]), &Key32([9; 32])),
        pass_token(&Key32([7; 32]), &Key32([8; 32]))
    );
    assert_eq!(
        three(1).pass_token().0,
        pass_token(&Key32([7; 32]), &Key32([9; 32]))
    );
}
