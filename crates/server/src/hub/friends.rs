//! Friendships: requests, acceptance, the list with presence, unfriending.

use anonchat_proto::signing::{friend_bytes, verify};
use anonchat_proto::wire::{FriendInfo, PresenceMode, ServerMsg};
use anonchat_proto::{Sig64, Username};

use super::{bad, Hub, Refusal, Reply, Session};
use crate::clock::Now;
use crate::cluster::{self, requests::RequestError};
use crate::requests::QuotaError;

impl Hub {
    pub(super) async fn friend_request(
        &self,
        s: &Session,
        to: Username,
        sig: Sig64,
        code: Option<String>,
        now: Now,
    ) -> Reply {
        let their_ak = self
            .gate_online(&s.username, &to, code.as_deref(), now)
            .await?;
        let my_ak = self.account_key(&s.username).await?;
        verify(
            &my_ak,
            &friend_bytes(&s.username, &my_ak, &to, &their_ak),
            &sig,
        )
        .map_err(|_| bad("friend signature does not verify"))?;
        self.keep_request(&s.username, &to, sig, now).await?;
        let st = self.lock();
        st.send_user(
            &to,
            &ServerMsg::FriendRequestIn {
                from: s.username.clone(),
                ak_pub: my_ak,
                sig,
            },
        );
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn friend_accept(
        &self,
        s: &Session,
        from: Username,
        sig: Sig64,
        now: Now,
    ) -> Reply {
        let their_sig = self
            .waiting_request(&from, &s.username, now)
            .await
            .ok_or(Refusal::NotFound)?;
        let their_ak = self.account_key(&from).await?;
        let my_ak = self.account_key(&s.username).await?;
        let edge = friend_bytes(&from, &their_ak, &s.username, &my_ak);
        verify(&my_ak, &edge, &sig).map_err(|_| bad("friend signature does not verify"))?;
        // Checked again: the requester's key could have changed since the request (account re-made).
        verify(&their_ak, &edge, &their_sig).map_err(|_| Refusal::NotFound)?;
        self.store
            .add_friendship(&from, &their_sig, &s.username, &sig)
            .await?;
        self.drop_request(&from, &s.username).await;
        let st = self.lock();
        st.send_user(
            &from,
            &ServerMsg::FriendAdded {
                username: s.username.clone(),
                ak_pub: my_ak,
            },
        );
        st.send_user(
            &s.username,
            &ServerMsg::FriendAdded {
                username: from,
                ak_pub: their_ak,
            },
        );
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn friend_decline(&self, s: &Session, from: Username) -> Reply {
        self.drop_request(&from, &s.username).await;
        Ok(ServerMsg::Ok)
    }

    pub(super) async fn unfriend(&self, s: &Session, username: Username) -> Reply {
        if self.store.remove_friendship(&s.username, &username).await? {
            let st = self.lock();
            st.send_user(
                &username,
                &ServerMsg::FriendRemoved {
                    username: s.username.clone(),
                },
            );
            st.send_user(&s.username, &ServerMsg::FriendRemoved { username });
        }
        Ok(ServerMsg::Ok)
    }

    /// Keeps a pending request: in RAM, or in Redis when instances share state.
    pub(super) async fn keep_request(
        &self,
        from: &Username,
        to: &Username,
        sig: Sig64,
        now: Now,
    ) -> Result<(), Refusal> {
        let quota = |e: QuotaError| Refusal::RateLimited(Some(e.to_string()));
        let Some(c) = self.cluster.as_deref() else {
            return self
                .lock()
                .friend_requests
                .insert(from, to, sig, now.at)
                .map_err(quota);
        };
        match cluster::requests::insert(c, from, to, &sig, crate::requests::TTL).await {
            Ok(()) => Ok(()),
            Err(RequestError::Quota(e)) => Err(quota(e)),
            Err(RequestError::Cluster(e)) => {
                tracing::warn!(error = %e, "keeping a friend request in redis failed");
                Err(Refusal::RateLimited(Some("try again in a moment".into())))
            }
        }
    }

    pub(super) async fn waiting_request(
        &self,
        from: &Username,
        to: &Username,
        now: Now,
    ) -> Option<Sig64> {
        match self.cluster.as_deref() {
            None => self.lock().friend_requests.get(from, to, now.at),
            Some(c) => cluster::requests::get(c, from, to).await.ok().flatten(),
        }
    }

    async fn drop_request(&self, from: &Username, to: &Username) {
        match self.cluster.as_deref() {
            None => {
                self.lock().friend_requests.remove(from, to);
            }
            Some(c) => {
                let _ = cluster::requests::remove(c, from, to).await;
            }
        }
    }

    /// Drops every request `from` made (signed with a key it no longer has).
    pub(super) async fn drop_requests_from(&self, from: &Username) {
        match self.cluster.as_deref() {
            None => self.lock().friend_requests.remove_from(from),
            Some(c) => {
                let _ = cluster::requests::remove_from(c, from).await;
            }
        }
    }

    pub(super) async fn list_friends(&self, s: &Session, now: Now) -> Reply {
        let friends = self.store.friends(&s.username).await?;
        let mut list = Vec::with_capacity(friends.len());
        for (username, ak_pub, presence) in friends {
            let (online, recent) = self.presence_anywhere(&username, now).await;
            list.push(FriendInfo {
                online: online && presence == PresenceMode::Exact,
                recently_active: recent && presence == PresenceMode::Recent,
                username,
                ak_pub,
            });
        }
        Ok(ServerMsg::Friends { friends: list })
    }
}
