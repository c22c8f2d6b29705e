//! Whom this device trusts (P8), as pure rules: what an account key the server names for someone
//! means against this user's pins, pending key changes and blocks, in every flow (a ring, a friend
//! request, the friend list, a group's roster), and whether an approval matches what the user was
//! shown (a contact's safety number or key, the server's TLS fingerprint). No I/O and no clock:
//! the engine's driver (`engine/trust.rs`) holds the pins and acts on the verdicts.

use std::collections::HashMap;

use anonchat_proto::{Key32, Username};

/// New keys kept per contact while the user decides. A server pushing more drops the oldest: it
/// can make the user's approval fail (and be warned again), never make it trust another key.
pub const PENDING_PER_CONTACT: usize = 4;

/// Where a key was named for someone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// A ring or a friend request from them: a block refuses it; first use pins.
    Contact,
    /// The server's word in a list or lookup (friends, add by name): blocks do not matter; first
    /// use pins.
    Listed,
    /// A member named by a group admin's signed roster: the admin's word never overrides this
    /// user's own blocks, pins or pending key changes, and never pins.
    Roster,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The key pinned for them.
    Pinned,
    /// Nobody is pinned under that name: pin it (`Contact`, `Listed`), or take it for this group
    /// only on the admin's word (`Roster`).
    FirstUse,
    /// Another key than the pinned one: refused and kept for the user's decision; `new` when this
    /// key was not waiting already (warn once per key).
    Changed { pinned: Key32, new: bool },
    /// A roster names the pinned key while a change waits for the user: refused until decided.
    Pending,
    /// This user blocked them.
    Blocked,
}

/// Why an approval was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("nothing is waiting for that decision")]
    NothingPending,
    #[error("what the engine holds is not what was shown: compare again with what is shown now")]
    NotShown,
}

/// Keys waiting for the user's decision, per contact (RAM only).
#[derive(Default, Debug)]
pub struct Pending {
    by: HashMap<Username, Vec<Key32>>,
}

impl Pending {
    /// Judges `key` named for `who` in `flow`. A changed key is kept here as a side effect.
    pub fn judge(
        &mut self,
        who: &Username,
        key: Key32,
        pinned: Option<Key32>,
        blocked: bool,
        flow: Flow,
    ) -> Verdict {
        if blocked && flow != Flow::Listed {
            return Verdict::Blocked;
        }
        match pinned {
            Some(p) if p == key => {
                if flow == Flow::Roster && self.waiting(who) {
                    Verdict::Pending
                } else {
                    Verdict::Pinned
                }
            }
            // An admin's roster names keys on its own word: its key is refused for the group but
            // never kept for the user to trust, nor announced as the contact's change (a hostile
            // admin could otherwise plant a "trust the new key" for any contact, or push out the
            // key the user compared).
            Some(p) if flow == Flow::Roster => Verdict::Changed {
                pinned: p,
                new: false,
            },
            Some(p) => Verdict::Changed {
                pinned: p,
                new: self.keep(who, key),
            },
            None => Verdict::FirstUse,
        }
    }

    /// Whether a key change for `who` waits for the user.
    pub fn waiting(&self, who: &Username) -> bool {
        self.by.get(who).is_some_and(|keys| !keys.is_empty())
    }

    fn keep(&mut self, who: &Username, key: Key32) -> bool {
        let keys = self.by.entry(who.clone()).or_default();
        if keys.contains(&key) {
            return false;
        }
        if keys.len() == PENDING_PER_CONTACT {
            keys.remove(0);
        }
        keys.push(key);
        true
    }

    /// The user trusts the new key of `who` they were shown (`shown`: its safety number, in any
    /// grouping, or the key in base64). Takes the waiting key that matches; `number` gives a
    /// key's safety number. Everything waiting for `who` is dropped once one is taken.
    pub fn approve(
        &mut self,
        who: &Username,
        shown: &str,
        number: impl Fn(&Key32) -> String,
    ) -> Result<Key32, Refusal> {
        let keys = self.by.get(who).ok_or(Refusal::NothingPending)?;
        let key = keys
            .iter()
            .find(|k| shows(shown, &number(k), k))
            .copied()
            .ok_or(Refusal::NotShown)?;
        self.by.remove(who);
        Ok(key)
    }
}

/// Whether `shown` (what the user compared) is this key: its safety number — the 60 digits, in
/// any grouping — or the key itself in base64.
pub fn shows(shown: &str, safety_number: &str, key: &Key32) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let shown_digits = digits(shown);
    if shown_digits.len() == 60 && shown.chars().all(|c| c.is_ascii_digit() || c == ' ') {
        return shown_digits == digits(safety_number);
    }
    shown.trim() == key.to_base64()
}

/// The server's TLS key as people compare it: the SHA-256 of its SubjectPublicKeyInfo, in hex,
/// 16 groups of 4 (what `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum`
/// prints, grouped).
pub fn server_fingerprint(spki_sha256: &[u8; 32]) -> String {
    let hex: String = spki_sha256.iter().map(|b| format!("{b:02x}")).collect();
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fingerprint as [`server_fingerprint`] shows it (separators and case ignored) back to the key.
pub fn parse_fingerprint(shown: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = shown
        .chars()
        .filter(|c| !matches!(c, ' ' | ':'))
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(hex.chunks(2)) {
        *o = pair[0] << 4 | pair[1];
    }
    Some(out)
}

/// The user trusts the server's new TLS key they were shown: exactly the key refused last, and
/// only if `shown` is its fingerprint (separators and case ignored).
pub fn approve_server_key(shown: &str, refused: Option<[u8; 32]>) -> Result<[u8; 32], Refusal> {
    let refused = refused.ok_or(Refusal::NothingPending)?;
    if parse_fingerprint(shown) == Some(refused) {
        Ok(refused)
    } else {
        Err(Refusal::NotShown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Username {
        Username::parse(s).unwrap()
    }
    const A: Key32 = Key32([1; 32]);
    const B: Key32 = Key32([2; 32]);
    const C: Key32 = Key32([3; 32]);

    #[test]
    fn every_flow_against_pins_blocks_and_pending_changes() {
        use Flow::*;
        use Verdict::*;
        // (flow, pinned, blocked, a change already waiting, key named) → verdict
        type Row = (Flow, Option<Key32>, bool, bool, Key32, Verdict);
        let table: &[Row] = &[
            (Contact, None, false, false, A, FirstUse),
            (Contact, Some(A), false, false, A, Pinned),
            (Contact, Some(A), false, true, A, Pinned),
            (Contact, Some(A), true, false, A, Blocked),
            (Contact, None, true, false, A, Blocked),
            (Listed, Some(A), true, false, A, Pinned),
            (Listed, None, true, false, A, FirstUse),
            (Roster, None, false, false, A, FirstUse),
            (Roster, Some(A), false, false, A, Pinned),
            (Roster, Some(A), false, true, A, Pending),
            (Roster, Some(A), true, false, A, Blocked),
            (Roster, None, true, false, A, Blocked),
        ];
        for &(flow, pinned, blocked, waiting, key, want) in table {
            let mut p = super::Pending::default();
            if waiting {
                p.keep(&u("bob"), C);
            }
            assert_eq!(
                p.judge(&u("bob"), key, pinned, blocked, flow),
                want,
                "{flow:?} pinned={pinned:?} blocked={blocked} waiting={waiting}"
            );
        }
    }

    #[test]
    fn a_roster_s_other_key_is_refused_but_never_kept_for_the_user_to_trust() {
        let mut p = Pending::default();
        let bob = u("bob");
        let v = p.judge(&bob, B, Some(A), false, Flow::Roster);
        assert_eq!(
            v,
            Verdict::Changed {
                pinned: A,
                new: false
            }
        );
        assert!(!p.waiting(&bob));
        fn number(k: &Key32) -> String {
            format!("{:0>60}", k.0[0])
        }
        assert_eq!(
            p.approve(&bob, &number(&B), number),
            Err(Refusal::NothingPending)
        );
    }

    #[test]
    fn a_changed_key_is_kept_and_announced_once_where_the_server_names_it() {
        for flow in [Flow::Contact, Flow::Listed] {
            let mut p = Pending::default();
            let bob = u("bob");
            let first = p.judge(&bob, B, Some(A), false, flow);
            assert_eq!(
                first,
                Verdict::Changed {
                    pinned: A,
                    new: true
                }
            );
            let again = p.judge(&bob, B, Some(A), false, flow);
            assert_eq!(
                again,
                Verdict::Changed {
                    pinned: A,
                    new: false
                }
            );
            assert!(p.waiting(&bob));
            assert!(!p.waiting(&u("carol")));
        }
    }

    fn number(k: &Key32) -> String {
        // Any stable per-key number will do for the rules: 60 digits.
        format!("{:0>60}", k.0[0])
    }

    #[test]
    fn approval_takes_the_key_whose_number_was_shown_not_the_last_one_named() {
        let mut p = Pending::default();
        let bob = u("bob");
        p.judge(&bob, B, Some(A), false, Flow::Contact);
        // The server names yet another key after the user compared B's number.
        p.judge(&bob, C, Some(A), false, Flow::Contact);
        assert_eq!(p.approve(&bob, &number(&B), number), Ok(B));
        assert!(!p.waiting(&bob), "the rest is dropped once decided");
        assert_eq!(
            p.approve(&bob, &number(&C), number),
            Err(Refusal::NothingPending)
        );
    }

    #[test]
    fn approval_refuses_a_number_or_key_nothing_waiting_has() {
        let mut p = Pending::default();
        let bob = u("bob");
        assert_eq!(
            p.approve(&bob, &number(&B), number),
            Err(Refusal::NothingPending)
        );
        p.judge(&bob, B, Some(A), false, Flow::Contact);
        assert_eq!(p.approve(&bob, &number(&C), number), Err(Refusal::NotShown));
        assert_eq!(p.approve(&bob, "", number), Err(Refusal::NotShown));
        assert_eq!(
            p.approve(&bob, &A.to_base64(), number),
            Err(Refusal::NotShown)
        );
        assert!(p.waiting(&bob), "a refused approval changes nothing");
        assert_eq!(p.approve(&bob, &B.to_base64(), number), Ok(B), "by key too");
    }

    #[test]
    fn waiting_keys_are_bounded_and_the_oldest_goes() {
        let mut p = Pending::default();
        let bob = u("bob");
        for i in 0..=PENDING_PER_CONTACT as u8 {
            p.judge(&bob, Key32([10 + i; 32]), Some(A), false, Flow::Contact);
        }
        assert_eq!(p.by[&bob].len(), PENDING_PER_CONTACT);
        assert_eq!(
            p.approve(&bob, &number(&Key32([10; 32])), number),
            Err(Refusal::NotShown)
        );
        let newest = Key32([10 + PENDING_PER_CONTACT as u8; 32]);
        assert_eq!(p.approve(&bob, &number(&newest), number), Ok(newest));
    }

    #[test]
    fn a_safety_number_matches_in_any_grouping_and_only_in_full() {
        let sn = "12345 67890 12345 67890 12345 67890 12345 67890 12345 67890 12345 67890";
        let plain: String = sn.chars().filter(|c| *c != ' ').collect();
        assert!(shows(sn, sn, &A));
        assert!(shows(&plain, sn, &A));
        assert!(!shows(&plain[..59], sn, &A), "a prefix is not the number");
        let off = format!("{}1", &plain[..59]);
        assert!(!shows(&off, sn, &A));
        assert!(!shows("", sn, &A));
    }

    #[test]
    fn the_server_key_trusted_is_exactly_the_one_refused_and_shown() {
        let b = [0xb0; 32];
        let fp = server_fingerprint(&b);
        assert_eq!(fp.len(), 64 + 15, "{fp}");
        assert!(fp.starts_with("b0b0 b0b0 "), "{fp}");
        assert_eq!(approve_server_key(&fp, Some(b)), Ok(b));
        assert_eq!(
            approve_server_key(&fp.to_uppercase().replace(' ', ":"), Some(b)),
            Ok(b)
        );
        // Warned on B; the next handshake met C: trusting B's fingerprint does not pin C.
        let c = [0xc0; 32];
        assert_eq!(approve_server_key(&fp, Some(c)), Err(Refusal::NotShown));
        assert_eq!(approve_server_key(&fp, None), Err(Refusal::NothingPending));
        // What a burner is started with reads back to the same key; anything else to none.
        assert_eq!(parse_fingerprint(&fp), Some(b));
        assert_eq!(
            parse_fingerprint(&fp.replace(' ', "").to_uppercase()),
            Some(b)
        );
        assert_eq!(parse_fingerprint(&fp[..fp.len() - 1]), None);
        assert_eq!(parse_fingerprint(&fp.replace('b', "g")), None);
        assert_eq!(approve_server_key("", Some(b)), Err(Refusal::NotShown));
    }
}
