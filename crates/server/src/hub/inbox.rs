//! Frames from the other instances (cluster.rs), as the hub answers them: messages for devices
//! here, a device of a followed account coming online, operations on rings this instance owns,
//! introductions, joins, claims and "close this socket".

use crate::clock::Now;
use std::collections::HashSet;
use std::sync::Arc;

use anonchat_proto::wire::{ServerEnvelope, ServerMsg};
use anonchat_proto::{DeviceCert, Username};

use super::remote::{publish, to_wire, RemoteRing};
use super::{Hub, Refusal, OTK_LOW};
use crate::cluster::{Cluster, Frame, Incoming, RingOp, RingTag, Stage};

impl Hub {
    /// Frames from the other instances, until this instance shuts down.
    pub async fn follow(&self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Incoming>) {
        while let Some(incoming) = rx.recv().await {
            self.on_frame(incoming, Now::read()).await;
        }
    }

    async fn on_frame(&self, Incoming { channel, frame }: Incoming, now: Now) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let device = channel
            .strip_prefix("ac:{d:")
            .and_then(|c| c.strip_suffix('}'));
        match frame {
            Frame::Push { from, text, ring } => match device {
                Some(device) => self.push_to_device(device, text, ring),
                None if from != cluster.id() => {
                    let st = self.lock();
                    let Some(user) = st.remote.accounts.get(&channel) else {
                        return;
                    };
                    let text: Arc<str> = Arc::from(text);
                    for d in st.online.get(user).into_iter().flatten() {
                        if let Some(c) = st.conns.get(d) {
                            c.push_text(text.clone());
                        }
                    }
                }
                None => {}
            },
            Frame::Attached { from, device } if from != cluster.id() => {
                let user = self.lock().remote.accounts.get(&channel).cloned();
                if let Some(user) = user {
                    self.wake(&user, &device, now).await;
                }
            }
            Frame::Attached { .. } => {}
            Frame::Ring {
                from,
                req,
                ring_id,
                device,
                op,
            } => {
                let result = self.owned_ring_op(&ring_id, &device, op, now);
                cluster.reply(
                    &from,
                    req,
                    to_wire(result.map(|()| serde_json::Value::Null)),
                );
            }
            Frame::Reply { .. } => {} // Taken by the cluster's waiters.
            Frame::Introduce {
                from,
                ring_id,
                caller_device,
                caller_cert,
            } => {
                if let Some(device) = device {
                    self.introduce_here(
                        &cluster,
                        &from,
                        &ring_id,
                        &caller_device,
                        caller_cert,
                        device,
                    );
                }
            }
            Frame::Kill { from, farewell } if from != cluster.id() => {
                let st = self.lock();
                if let Some(c) = device.and_then(|d| st.conns.get(d)) {
                    if let Some(text) = farewell {
                        let _ = c.farewell.set(text.into());
                    }
                    c.kill.cancel();
                }
            }
            Frame::Kill { .. } => {}
            Frame::Join {
                from,
                req,
                code,
                join,
            } => {
                let result = self.join_here_for(&cluster, from.clone(), code, join, now);
                cluster.reply(&from, req, result);
            }
            Frame::Enrolled { code, answer } => self.enrolled(&code, answer.map(|a| *a)),
            Frame::Abandon { code, device_id } => self.enroll_abandon(&code, &device_id),
            Frame::Claim {
                from,
                req,
                device,
                username,
            } => {
                let otk = self
                    .claim_here(&username, &device)
                    .and_then(|k| serde_json::to_value(k).map_err(|_| Refusal::NotFound));
                cluster.reply(&from, req, to_wire(otk));
            }
            Frame::Cert { cert } => {
                let mut st = self.lock();
                if let Some(c) = st.conns.get_mut(&cert.device_id) {
                    if c.cert.username == cert.username {
                        c.cert = cert;
                    }
                }
            }
        }
    }

    fn push_to_device(&self, device: &str, text: String, ring: Option<RingTag>) {
        let mut st = self.lock();
        if !st.conns.contains_key(device) {
            return; // Gone meanwhile: its rings were or will be told (detach).
        }
        if let Some(tag) = ring {
            match tag.stage {
                Stage::Ringing | Stage::Connected => {
                    let r = st.remote.rings.entry(tag.id).or_insert_with(|| RemoteRing {
                        owner: tag.owner,
                        devices: HashSet::new(),
                        connected: false,
                    });
                    r.devices.insert(device.to_string());
                    r.connected |= tag.stage == Stage::Connected;
                }
                Stage::Ended => {
                    if let Some(r) = st.remote.rings.get_mut(&tag.id) {
                        r.devices.remove(device);
                        if r.devices.is_empty() {
                            st.remote.rings.remove(&tag.id);
                        }
                    }
                }
            }
        }
        if let Some(c) = st.conns.get(device) {
            c.push_text(Arc::from(text));
        }
    }

    /// A device of `user` came online on another instance: it joins the rings ringing for the
    /// account here.
    async fn wake(&self, user: &Username, device: &str, now: Now) {
        let woken = self.lock().rings.wake(user, device, now.at);
        for (ring_id, caller) in woken {
            if let Ok(ak_pub) = self.account_key(&caller).await {
                let msg = ServerMsg::IncomingRing {
                    ring_id: ring_id.clone(),
                    from: caller,
                    ak_pub,
                    group: None,
                    invite: false,
                };
                self.lock()
                    .send_ring(device, msg, Some((&ring_id, Stage::Ringing)));
            }
        }
    }

    /// An operation by a device elsewhere on a ring this instance owns.
    fn owned_ring_op(
        &self,
        ring_id: &str,
        device: &str,
        op: RingOp,
        now: Now,
    ) -> Result<(), Refusal> {
        let mut st = self.lock();
        let out = match op {
            RingOp::Answer { accept } => st.rings.answer(ring_id, device, accept, now.at)?,
            RingOp::Hangup => st.rings.hangup(ring_id, device)?,
            RingOp::Relay { blob } => {
                let to = st.rings.route(ring_id, device)?.to_string();
                st.metrics.relayed_bytes.inc_by(blob.0.len() as u64);
                let msg = ServerMsg::Relayed {
                    ring_id: ring_id.to_string(),
                    blob,
                };
                st.send_ring(&to, msg, None);
                return Ok(());
            }
            RingOp::Gone => st.rings.device_gone(device),
            RingOp::Fail => st.rings.fail(ring_id),
        };
        st.apply(out);
        Ok(())
    }

    /// The owner of an answered ring asks: claim a one-time key of the callee (here), hand the
    /// caller the callee's certificate and key, and the callee the caller's certificate.
    fn introduce_here(
        &self,
        cluster: &Arc<Cluster>,
        owner: &str,
        ring_id: &str,
        caller_device: &str,
        caller_cert: DeviceCert,
        callee: &str,
    ) {
        let mut st = self.lock();
        let claimed = st.conns.get_mut(callee).and_then(|c| {
            let otk = c.otks.pop()?;
            if c.otks.len() < OTK_LOW {
                let count = c.otks.len() as u32;
                c.push(&ServerEnvelope::new(None, ServerMsg::OtkLow { count }));
            }
            Some((c.cert.clone(), otk))
        });
        let Some((callee_cert, otk)) = claimed else {
            drop(st);
            let (cluster, owner, ring_id) =
                (cluster.clone(), owner.to_string(), ring_id.to_string());
            let callee = callee.to_string();
            tokio::spawn(async move {
                let _ = cluster
                    .ring_call(&owner, ring_id, callee, RingOp::Fail)
                    .await;
            });
            return;
        };
        let accepted = ServerMsg::RingAccepted {
            ring_id: ring_id.to_string(),
            peer: callee_cert,
            otk,
        };
        // The caller is the owner's device; its channel reaches it there.
        publish(
            cluster,
            cluster.keys().device_channel(caller_device),
            &ServerEnvelope::new(None, accepted),
            None,
        );
        let r = st
            .remote
            .rings
            .entry(ring_id.to_string())
            .or_insert_with(|| RemoteRing {
                owner: owner.to_string(),
                devices: HashSet::new(),
                connected: false,
            });
        r.devices.insert(callee.to_string());
        r.connected = true;
        st.send_device(
            callee,
            ServerMsg::RingConnected {
                ring_id: ring_id.to_string(),
                peer: caller_cert,
            },
        );
    }
}
