//! ICE servers for clients: STUN URLs, and TURN URLs with short-lived credentials in coturn's REST
//! scheme (`use-auth-secret`): the username is `expiry:nonce`, the password is
//! `base64(HMAC-SHA1(shared secret, username))`. coturn checks the same HMAC and the expiry, so
//! nothing is stored anywhere and a leaked credential dies on its own. The nonce is random, never
//! an account name: the relay's logs learn nothing about who uses it.

use std::time::Duration;

use anonchat_proto::wire::IceServer;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("{0:?} is not a STUN URL (stun:HOST[:PORT])")]
    BadStunUrl(String),
    #[error("{0:?} is not a TURN URL (turn:HOST[:PORT][?transport=udp|tcp] or turns:…)")]
    BadTurnUrl(String),
    #[error("TURN URLs need the shared secret coturn was given (--turn-secret-file)")]
    NoSecret,
    #[error("the TURN secret file is empty")]
    EmptySecret,
}

/// What the server hands out.
pub struct Turn {
    stun: Vec<String>,
    turn: Vec<String>,
    secret: Option<Zeroizing<Vec<u8>>>,
    ttl: Duration,
}

impl Turn {
    pub fn new(
        stun: Vec<String>,
        turn: Vec<String>,
        secret: Option<Zeroizing<Vec<u8>>>,
        ttl: Duration,
    ) -> Result<Self, TurnError> {
        if let Some(u) = stun
            .iter()
            .find(|u| !u.starts_with("stun:") && !u.starts_with("stuns:"))
        {
            return Err(TurnError::BadStunUrl(u.clone()));
        }
        if let Some(u) = turn
            .iter()
            .find(|u| !u.starts_with("turn:") && !u.starts_with("turns:"))
        {
            return Err(TurnError::BadTurnUrl(u.clone()));
        }
        if !turn.is_empty() {
            match &secret {
                None => return Err(TurnError::NoSecret),
                Some(s) if s.is_empty() => return Err(TurnError::EmptySecret),
                Some(_) => {}
            }
        }
        Ok(Turn {
            stun,
            turn,
            secret,
            ttl,
        })
    }

    /// No ICE servers: the one-machine default (host candidates).
    pub fn none() -> Self {
        Turn {
            stun: Vec::new(),
            turn: Vec::new(),
            secret: None,
            ttl: Duration::ZERO,
        }
    }

    pub fn has_relay(&self) -> bool {
        !self.turn.is_empty()
    }

    /// The STUN servers alone (no credentials): what anyone may know.
    pub fn public(&self) -> Vec<IceServer> {
        if self.stun.is_empty() {
            return Vec::new();
        }
        vec![IceServer {
            urls: self.stun.clone(),
            username: None,
            credential: None,
        }]
    }

    /// STUN and TURN servers with a fresh credential valid until the returned unix time.
    pub fn issue(&self, now: u64) -> (Vec<IceServer>, u64) {
        let mut servers = self.public();
        let expires_at = now.saturating_add(self.ttl.as_secs());
        if let (false, Some(secret)) = (self.turn.is_empty(), &self.secret) {
            let mut nonce = [0u8; 9];
            rand::rngs::OsRng.fill_bytes(&mut nonce);
            let username = format!(
                "{expires_at}:{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce)
            );
            let credential = rest_password(secret, &username);
            servers.push(IceServer {
                urls: self.turn.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        (servers, expires_at)
    }
}

/// coturn's REST-API password for `username`.
pub fn rest_password(secret: &[u8], username: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_coturns_hmac_sha1() {
        // Computed independently with
        // `printf %s 1433895918:my_username | openssl dgst -sha1 -hmac north -binary | base64`.
        assert_eq!(
            rest_password(b"north", "1433895918:my_username"),
            "pcNVDuIC4RNo2pJqlx7tdbo7nE0="
        );
    }

    #[test]
    fn credentials_expire_after_the_ttl_and_are_new_each_time() {
        let t = Turn::new(
            vec!["stun:turn.example.org:3478".into()],
            vec!["turn:turn.example.org:3478?transport=udp".into()],
            Some(Zeroizing::new(b"s3cret".to_vec())),
            Duration::from_secs(600),
        )
        .unwrap();
        let (a, exp) = t.issue(1_000);
        assert_eq!(exp, 1_600);
        assert_eq!(a.len(), 2);
        assert!(a[0].username.is_none(), "STUN carries no credential");
        let user = a[1].username.clone().unwrap();
        assert!(user.starts_with("1600:"), "{user}");
        assert_eq!(
            a[1].credential.as_deref(),
            Some(rest_password(b"s3cret", &user).as_str())
        );
        let (b, _) = t.issue(1_000);
        assert_ne!(a[1].username, b[1].username, "a fresh nonce per credential");
        assert_eq!(t.public().len(), 1);
    }

    #[test]
    fn bad_configuration_is_refused() {
        let ttl = Duration::from_secs(60);
        assert!(matches!(
            Turn::new(vec!["http://x".into()], vec![], None, ttl),
            Err(TurnError::BadStunUrl(_))
        ));
        assert!(matches!(
            Turn::new(vec![], vec!["turn:x:3478".into()], None, ttl),
            Err(TurnError::NoSecret)
        ));
        assert!(matches!(
            Turn::new(
                vec![],
                vec!["x:3478".into()],
                Some(Zeroizing::new(vec![1])),
                ttl
            ),
            Err(TurnError::BadTurnUrl(_))
        ));
        assert!(!Turn::none().has_relay());
        assert!(Turn::none().issue(5).0.is_empty());
    }
}
