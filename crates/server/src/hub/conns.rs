//! Connections: a device's socket attached and detached, presence told to friends, one-time keys.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use anonchat_proto::signing::{one_time_key_bytes, verify};
use anonchat_proto::wire::{PresenceMode, ServerMsg, SignedOtk};
use anonchat_proto::{limits, DeviceCert, Username};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Now;

use super::{bad, Attached, Conn, Hub, Refusal, Reply, Session, SEND_QUEUE};

impl Hub {
    /// Registers an authenticated socket. A second socket of the same device replaces the first.
    pub async fn attach(
        &self,
        username: Username,
        cert: DeviceCert,
        ip: IpAddr,
        parent: &CancellationToken,
        now: Now,
    ) -> Attached {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let kill = parent.child_token();
        let device_id = cert.device_id.clone();
        let farewell = Arc::new(OnceLock::new());
        let (conn_id, first) = {
            let mut st = self.lock();
            st.next_conn += 1;
            let conn_id = st.next_conn;
            if let Some(old) = st.conns.remove(&device_id) {
                old.kill.cancel();
            }
            st.conns.insert(
                device_id.clone(),
                Conn {
                    conn_id,
                    cert,
                    tx: tx.clone(),
                    kill: kill.clone(),
                    otks: Vec::new(),
                    farewell: farewell.clone(),
                },
            );
            let devices = st.online.entry(username.clone()).or_default();
            let first = devices.is_empty();
            devices.insert(device_id.clone());
            (conn_id, first)
        };
        let first = self.attached_shared(&username, &device_id, first).await;
        if first {
            self.announce(&username, true).await;
        }
        // Rings waiting for this account (wake intents) ring this device now.
        let woken = self.lock().rings.wake(&username, &device_id, now.at);
        for (ring_id, caller) in woken {
            if let Ok(ak_pub) = self.account_key(&caller).await {
                self.lock().send_device(
                    &device_id,
                    ServerMsg::IncomingRing {
                        ring_id,
                        from: caller,
                        ak_pub,
                        group: None,
                        invite: false,
                    },
                );
            }
        }
        Attached {
            session: Session {
                device_id,
                username,
                conn_id,
                ip,
            },
            tx,
            rx,
            kill,
            farewell,
        }
    }

    /// The socket closed: drop its keys and rings; tell friends if the account went offline.
    pub async fn detach(&self, s: &Session, now: Now) {
        let last = {
            let mut st = self.lock();
            if st.conns.get(&s.device_id).map(|c| c.conn_id) != Some(s.conn_id) {
                return; // Already replaced by a newer socket of the same device.
            }
            st.conns.remove(&s.device_id);
            let gone = st.rings.device_gone(&s.device_id);
            st.apply(gone);
            let mut last = false;
            if let Some(set) = st.online.get_mut(&s.username) {
                set.remove(&s.device_id);
                if set.is_empty() {
                    st.online.remove(&s.username);
                    st.last_seen.insert(s.username.clone(), now.at);
                    last = true;
                }
            }
            last
        };
        self.passes_gone(&s.device_id).await;
        let last = self.detached_shared(s, last).await;
        if last {
            self.announce(&s.username, false).await;
        }
    }

    /// Tells friends an account came or went, as much as its presence setting lets them know.
    pub(super) async fn announce(&self, who: &Username, online: bool) {
        let (Ok(friends), Ok(Some(account))) =
            (self.store.friends(who).await, self.store.account(who).await)
        else {
            return;
        };
        let msg = match (account.presence, online) {
            (PresenceMode::Exact, _) => ServerMsg::Presence {
                username: who.clone(),
                online,
                recently_active: false,
            },
            // Blurred: "recently active" when it comes, nothing when it goes.
            (PresenceMode::Recent, true) => ServerMsg::Presence {
                username: who.clone(),
                online: false,
                recently_active: true,
            },
            (PresenceMode::Recent, false) | (PresenceMode::Hidden, _) => return,
        };
        let st = self.lock();
        // The account may have come back (or left) here while the store was read: then this news
        // is stale, and the newer one is on its way.
        if st.online.contains_key(who) != online {
            return;
        }
        for (f, _, _) in friends {
            st.send_user(&f, &msg);
        }
    }

    /// The cap is checked first and the signatures outside the hub's lock (P9): a refused batch
    /// costs nothing, and verifying never holds up other accounts.
    pub(super) fn upload_otks(&self, s: &Session, keys: Vec<SignedOtk>) -> Reply {
        let too_many = || {
            bad(format!(
                "at most {} one-time keys may be held",
                limits::MAX_ONE_TIME_KEYS
            ))
        };
        let dk = {
            let st = self.lock();
            let conn = st.conns.get(&s.device_id).ok_or(Refusal::NotFound)?;
            if conn.otks.len() + keys.len() > limits::MAX_ONE_TIME_KEYS {
                return Err(too_many());
            }
            conn.cert.dk_ed25519
        };
        for k in &keys {
            verify(&dk, &one_time_key_bytes(&s.device_id, &k.key), &k.sig)
                .map_err(|_| bad("one-time key signature does not verify"))?;
        }
        let mut st = self.lock();
        let conn = st.conns.get_mut(&s.device_id).ok_or(Refusal::NotFound)?;
        // Checked again: another batch of this device may have landed meanwhile.
        if conn.otks.len() + keys.len() > limits::MAX_ONE_TIME_KEYS {
            return Err(too_many());
        }
        conn.otks.extend(keys);
        Ok(ServerMsg::Ok)
    }
}
