//! Friendships: requests, acceptance, the list with presence, unfriending.

use std::time::Instant;

use anonchat_proto::signing::{friend_bytes, verify};
use anonchat_proto::wire::{FriendInfo, PresenceMode, ServerMsg};
use anonchat_proto::{Sig64, Username};

use super::{bad, Hub, Refusal, Reply, Session};

impl Hub {
    pub(super) async fn friend_request(
        &self,
        s: &Session,
        to: Username,
        sig: Sig64,
        code: Option<String>,
    ) -> Reply {
        let their_ak = self.gate_online(&s.username, &to, code.as_deref()).await?;
        let my_ak = self.account_key(&s.username).await?;
        verify(
            &my_ak,
            &friend_bytes(&s.username, &my_ak, &to, &their_ak),
            &sig,
        )
        .map_err(|_| bad("friend signature does not verify"))?;
        let mut st = self.lock();
        st.friend_requests
            .insert(&s.username, &to, sig, Instant::now())
            .map_err(|e| Refusal::RateLimited(Some(e.to_string())))?;
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

    pub(super) async fn friend_accept(&self, s: &Session, from: Username, sig: Sig64) -> Reply {
        let their_sig = self
            .lock()
            .friend_requests
            .get(&from, &s.username, Instant::now())
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
        let st = {
            let mut st = self.lock();
            st.friend_requests.remove(&from, &s.username);
            st
        };
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

    pub(super) fn friend_decline(&self, s: &Session, from: Username) -> Reply {
        self.lock().friend_requests.remove(&from, &s.username);
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

    pub(super) async fn list_friends(&self, s: &Session) -> Reply {
        let friends = self.store.friends(&s.username).await?;
        let st = self.lock();
        Ok(ServerMsg::Friends {
            friends: friends
                .into_iter()
                .map(|(username, ak_pub, presence)| {
                    let online = st.is_online(&username);
                    let recent = online || st.last_seen.contains_key(&username);
                    FriendInfo {
                        online: online && presence == PresenceMode::Exact,
                        recently_active: recent && presence == PresenceMode::Recent,
                        username,
                        ak_pub,
                    }
                })
                .collect(),
        })
    }
}
