//! Names of Redis keys and channels. Accounts and addresses appear only as keyed hashes (the
//! server secret, which every instance shares, is the key), so a copy of Redis names nobody. The
//! part in braces is the cluster hash tag: an account's keys and channel share one slot.

use std::net::IpAddr;

use anonchat_proto::Username;
use hmac::Mac;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub struct Keys {
    mac: HmacSha256,
}

impl Keys {
    pub fn new(secret: &[u8; 32]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"anonchat/v1 redis keys\0");
        Self { mac }
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
}
