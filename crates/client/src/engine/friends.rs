//! Friends: lookups (gated by the server), friend requests both ways, the friend list.

use anonchat_proto::signing::{friend_bytes, verify};
use anonchat_proto::wire::{ClientMsg, ServerMsg};
use anonchat_proto::{Key32, Sig64, Username};

use super::{lock, Engine, FriendView, Inner};
use crate::error::{SessionError, SignalingError};
use crate::events::Event;
use crate::ClientError;

impl Engine {
    /// Asks the server for an account's key (and whether it is online), with its code if needed.
    pub async fn lookup(
        &self,
        to: &Username,
        code: Option<&str>,
    ) -> Result<(Key32, bool), ClientError> {
        self.inner.unlocked()?;
        match self
            .gated(
                to,
                code,
                |pow| ClientMsg::Lookup {
                    username: to.clone(),
                    code: code.map(str::to_string),
                    pow,
                },
                || None,
            )
            .await?
        {
            ServerMsg::User { ak_pub, online, .. } => Ok((ak_pub, online)),
            _ => Err(ClientError::Signaling(SignalingError::UnexpectedAnswer)),
        }
    }

    /// Sends a friend request (with the target's code where its mode needs one); pins the account
    /// key the server reports (trust on first use). Returns the safety number.
    pub async fn add_friend(
        &self,
        username: &str,
        code: Option<&str>,
    ) -> Result<String, ClientError> {
        self.inner.unlocked()?;
        let to = Username::parse(username)?;
        let (their_ak, _) = self.lookup(&to, code).await?;
        self.inner.pin(&to, their_ak)?;
        let (me, my_ak) = self.my_ak()?;
        let sig = self.sign_ak(&friend_bytes(&me, &my_ak, &to, &their_ak))?;
        self.gated(
            &to,
            code,
            |pow| ClientMsg::FriendRequest {
                to: to.clone(),
                sig,
                code: code.map(str::to_string),
                pow,
            },
            || None,
        )
        .await?;
        Ok(self.inner.safety_with(&to, &their_ak))
    }

    /// Adds a contact from an `anonchat://add?u=…&c=…` link (typed, pasted or scanned).
    pub async fn add_by_link(&self, link: &str) -> Result<(String, String), ClientError> {
        let (user, code) = anonchat_proto::fvc::parse_share_link(link)?;
        let sn = self.add_friend(user.as_str(), code.as_deref()).await?;
        Ok((user.to_string(), sn))
    }

    /// Accepts `username`'s friend request; `shown` is the safety number the request showed
    /// (or the key). Refused when the request held now carries another key: a server that
    /// replaced the request after it was shown gets nothing signed.
    pub async fn accept_friend(&self, username: &str, shown: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let from = Username::parse(username)?;
        let (their_ak, _) = lock(&self.inner.requests)
            .get(&from)
            .copied()
            .ok_or(ClientError::Session(SessionError::UnknownRing))?;
        if !crate::trust::shows(shown, &self.inner.safety_with(&from, &their_ak), &their_ak) {
            return Err(crate::trust::Refusal::NotShown.into());
        }
        self.inner.pin(&from, their_ak)?;
        let (me, my_ak) = self.my_ak()?;
        let sig = self.sign_ak(&friend_bytes(&from, &their_ak, &me, &my_ak))?;
        self.inner
            .signaling
            .request(ClientMsg::FriendAccept {
                from: from.clone(),
                sig,
            })
            .await?;
        lock(&self.inner.requests).remove(&from);
        Ok(())
    }

    pub async fn decline_friend(&self, username: &str) -> Result<(), ClientError> {
        let from = Username::parse(username)?;
        lock(&self.inner.requests).remove(&from);
        self.inner.refused(&from);
        self.inner
            .signaling
            .request(ClientMsg::FriendDecline { from })
            .await?;
        Ok(())
    }

    pub async fn unfriend(&self, username: &str) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        let username = Username::parse(username)?;
        self.inner
            .signaling
            .request(ClientMsg::Unfriend { username })
            .await?;
        Ok(())
    }

    pub async fn friends(&self) -> Result<Vec<FriendView>, ClientError> {
        self.inner.unlocked()?;
        let ServerMsg::Friends { friends } =
            self.inner.signaling.request(ClientMsg::ListFriends).await?
        else {
            return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
        };
        let mut out = Vec::new();
        for f in friends {
            // The server's word is checked against our pins: a changed key is loud, never silent.
            if self.inner.pin(&f.username, f.ak_pub).is_err() {
                continue;
            }
            let verified = lock(&self.inner.data)
                .contacts
                .get(f.username.as_str())
                .is_some_and(|c| c.verified);
            out.push(FriendView {
                safety_number: self.safety_number(f.username.as_str())?,
                username: f.username.to_string(),
                online: f.online,
                recently_active: f.recently_active,
                verified,
            });
        }
        Ok(out)
    }

    /// Friend requests waiting for an answer: `(from, safety number)`, for a UI that (re)loads.
    pub fn friend_requests(&self) -> Vec<(String, String)> {
        if self.inner.unlocked().is_err() {
            return Vec::new();
        }
        let waiting: Vec<(Username, Key32)> = lock(&self.inner.requests)
            .iter()
            .map(|(from, (ak, _))| (from.clone(), *ak))
            .collect();
        waiting
            .iter()
            .map(|(from, ak)| (from.to_string(), self.inner.safety_with(from, ak)))
            .collect()
    }
}

impl Inner {
    pub(super) fn on_friend_request(&self, from: Username, ak: Key32, sig: Sig64) {
        if self.is_blocked(&from) {
            let _ = self.signaling.send(ClientMsg::FriendDecline { from });
            return;
        }
        let Some((me, my_ak)) = self.my_ak() else {
            return;
        };
        if verify(&ak, &friend_bytes(&from, &ak, &me, &my_ak), &sig).is_err() {
            return self.emit(Event::Warning {
                message: "ignored a friend request with a bad signature".into(),
            });
        }
        if self.pinned(&from).is_some_and(|k| k != ak) {
            let _ = self.pin(&from, ak);
            return;
        }
        let safety_number = self.safety_with(&from, &ak);
        {
            let mut requests = lock(&self.requests);
            if requests.get(&from).is_some_and(|(held, _)| *held != ak) {
                drop(requests);
                // The one shown stays: a server that swaps a request after it was shown gets a
                // warning, not a different key behind the same Accept.
                return self.emit(Event::Warning {
                    message: format!(
                        "ignored a second friend request from {from} under another key: compare the safety number shown with them"
                    ),
                });
            }
            requests.insert(from.clone(), (ak, sig));
        }
        self.emit(Event::FriendRequest {
            from: from.to_string(),
            safety_number,
        });
    }
}
