//! Names of Redis keys and channels. Accounts and addresses appear only as keyed hashes (the
//! server secret, which every instance shares, is the key), so a copy of Redis names nobody. The
//! part in braces is the cluster hash tag: an account's keys and channel share one slot.

use std::net::IpAddr;

use anonchat_proto::Username;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::XChaCha20Poly1305;
use hmac::Mac;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

pub struct Keys {
    mac: HmacSha256,
    /// Seals the few names Redis must give back (`seal_name`), under a key from the same secret.
    names: XChaCha20Poly1305,
}

impl Keys {
    pub fn new(secret: &[u8; 32]) -> Self {
        let keyed = |label: &[u8]| {
            let mut mac =
                <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(label);
            mac
        };
        let mut name_key = keyed(b"anonchat/v1 redis names\0").finalize().into_bytes();
        let names = XChaCha20Poly1305::new(&name_key);
        zeroize::Zeroize::zeroize(name_key.as_mut_slice());
        Self {
            mac: keyed(b"anonchat/v1 redis keys\0"),
            names,
        }
    }

    /// An account's name, sealed: for the one place another instance must read it back (an
    /// instance's list of its accounts, for when it dies). Base64 of nonce ‖ ciphertext.
    pub fn seal_name(&self, user: &Username) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encrypting a few bytes in memory does not fail.
        out.extend(
            self.names
                .encrypt(&nonce, user.as_str().as_bytes())
                .unwrap_or_default(),
        );
        B64.encode(out)
    }

    /// The name `seal_name` sealed, or `None` for anything else.
    pub fn open_name(&self, sealed: &str) -> Option<Username> {
        let raw = B64.decode(sealed).ok()?;
        if raw.len() < 24 {
            return None;
        }
        let (nonce, ct) = raw.split_at(24);
        let plain = self
            .names
            .decrypt(chacha20poly1305::XNonce::from_slice(nonce), ct)
            .ok()?;
        Username::parse(std::str::from_utf8(&plain).ok()?).ok()
    }

    /// 16 bytes of the keyed hash of `parts`, hex.
    fn hash(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(&(p.len() as u32).to_be_bytes());
            mac.update(p);
        }
        let out = mac.finalize().into_bytes();
        out[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The account's keyed hash, as the keys below name it.
    pub fn account(&self, user: &Username) -> String {
        self.hash(&[b"account", user.as_str().as_bytes()])
    }

    pub fn account_channel(&self, user: &Username) -> String {
        format!("ac:{{u:{}}}", self.account(user))
    }

    /// A sorted set: `device|instance` scored by when the entry lapses (unix ms).
    pub fn presence(&self, user: &Username) -> String {
        format!("ac:{{u:{}}}:on", self.account(user))
    }

    /// A group pass's holders (`passes.rs`): a sorted set of `device|instance`, by a keyed hash of
    /// the token.
    pub fn group_pass(&self, token: &[u8; 32]) -> String {
        format!("gp:{{{}}}", self.hash(&[b"group-pass", token]))
    }

    /// Set when an account's last device leaves; lapses when it stops counting as recently active.
    pub fn seen(&self, user: &Username) -> String {
        format!("ac:{{u:{}}}:seen", self.account(user))
    }

    /// A waiting friend request (its signature), in the target's slot: by account hashes.
    pub fn request(&self, to_hash: &str, from_hash: &str) -> String {
        format!("ac:{{u:{to_hash}}}:fr:{from_hash}")
    }

    /// The requests waiting for an account: requester hashes scored by their deadline (unix ms).
    pub fn requests_in(&self, to: &Username) -> String {
        self.requests_in_hash(&self.account(to))
    }

    pub fn requests_in_hash(&self, to_hash: &str) -> String {
        format!("ac:{{u:{to_hash}}}:frin")
    }

    /// The requests an account has waiting: target hashes scored by their deadline.
    pub fn requests_out(&self, from: &Username) -> String {
        format!("ac:{{u:{}}}:frout", self.account(from))
    }

    /// Which instance holds an open enrollment, by a hash of its code.
    pub fn enrollment(&self, code: &str) -> String {
        format!("ac:{{e:{}}}", self.hash(&[b"enroll", code.as_bytes()]))
    }

    pub fn device_channel(&self, device: &str) -> String {
        format!("ac:{{d:{device}}}")
    }

    pub fn instance_channel(&self, instance: &str) -> String {
        format!("ac:{{i:{instance}}}")
    }

    pub fn alive(&self, instance: &str) -> String {
        format!("ac:{{i:{instance}}}:alive")
    }

    /// Every instance, scored by when its "alive" key lapses (unix ms): how the others find a dead
    /// one.
    pub fn instances(&self) -> &'static str {
        "ac:instances"
    }

    /// A hash of the accounts with a device on the instance: account hash → sealed name.
    pub fn instance_accounts(&self, instance: &str) -> String {
        format!("ac:{{i:{instance}}}:accounts")
    }

    /// Set by the one instance that tells a dead instance's friends it went.
    pub fn reaped(&self, instance: &str) -> String {
        format!("ac:{{i:{instance}}}:reaped")
    }

    pub fn stamp(&self, id: &[u8; 32]) -> String {
        format!("ac:{{s:{}}}", self.hash(&[b"stamp", id]))
    }

    pub fn failures_of_ip(&self, ip: IpAddr) -> String {
        format!(
            "ac:{{f:{}}}",
            self.hash(&[b"ip", ip.to_string().as_bytes()])
        )
    }

    pub fn failures_of_account(&self, user: &Username) -> String {
        format!(
            "ac:{{f:{}}}",
            self.hash(&[b"acct", user.as_str().as_bytes()])
        )
    }

    /// A token bucket: `kind` (ip, device, account, register) and who.
    pub fn bucket(&self, kind: &str, who: &[u8]) -> String {
        format!("ac:{{l:{}}}", self.hash(&[b"bucket", kind.as_bytes(), who]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hide_accounts_and_addresses_and_share_a_slot_per_account() {
        let k = Keys::new(&[7; 32]);
        let alice = Username::parse("alice").unwrap();
        let (ch, on, seen) = (
            k.account_channel(&alice),
            k.presence(&alice),
            k.seen(&alice),
        );
        for name in [&ch, &on, &seen] {
            assert!(!name.contains("alice"), "{name}");
        }
        let tag = |s: &str| s[s.find('{').unwrap()..=s.find('}').unwrap()].to_string();
        assert_eq!(tag(&ch), tag(&on));
        assert_eq!(tag(&on), tag(&seen));
        assert_ne!(on, k.presence(&Username::parse("bob").unwrap()));
        // Another secret, other names: a copy of Redis cannot be matched against a name list
        // without the secret.
        assert_ne!(on, Keys::new(&[8; 32]).presence(&alice));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!k.failures_of_ip(ip).contains("192.0.2.1"));
        assert_ne!(k.failures_of_ip(ip), k.failures_of_account(&alice));
        assert_ne!(k.bucket("ip", b"x"), k.bucket("device", b"x"));
    }

    #[test]
    fn sealed_names_open_only_under_the_same_secret_and_never_show_the_name() {
        let k = Keys::new(&[7; 32]);
        let alice = Username::parse("alice").unwrap();
        let sealed = k.seal_name(&alice);
        assert!(!sealed.contains("alice"));
        assert_eq!(k.open_name(&sealed), Some(alice.clone()));
        // A fresh nonce each time: two seals of one name cannot be matched.
        assert_ne!(sealed, k.seal_name(&alice));
        assert_eq!(Keys::new(&[8; 32]).open_name(&sealed), None);
        let mut bent = B64.decode(&sealed).unwrap();
        let last = bent.len() - 1;
        bent[last] ^= 1;
        assert_eq!(k.open_name(&B64.encode(bent)), None);
        for junk in ["", "!!", "AAAA"] {
            assert_eq!(k.open_name(junk), None);
        }
    }
}
