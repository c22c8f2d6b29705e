//! Enrollment across instances: the enrollment stays on the instance its opener used (Redis
//! notes which, by a hash of the code); a new device joining through another instance is
//! forwarded there, and the opener's answer comes back to the instance it waits on.

use std::sync::Arc;

use anonchat_proto::wire::ServerMsg;
use anonchat_proto::{Sig64, Username};
use tokio::sync::oneshot;

use super::devices::{Join, Joined, Joiner};
use super::remote::{refusal, to_wire};
use super::{Hub, Refusal};
use crate::clock::Now;
use crate::cluster::{self, Cluster, Frame, JoinRequest};

/// Where the opener's answer goes: the joiner's socket task here, or its instance.
pub(super) enum Answer {
    Here(oneshot::Sender<ServerMsg>),
    Elsewhere(RemoteJoiner),
}

impl Answer {
    pub(super) fn send(self, msg: ServerMsg) {
        match self {
            Answer::Here(tx) => {
                let _ = tx.send(msg);
            }
            Answer::Elsewhere(mut r) => r.send(Some(msg)),
        }
    }
}

/// A joiner waiting on another instance. Dropped unanswered (declined, replaced, ran out), it
/// tells that instance "no", as dropping a local sender does.
pub(super) struct RemoteJoiner {
    cluster: Arc<Cluster>,
    instance: String,
    code: String,
    sent: bool,
}

impl RemoteJoiner {
    fn send(&mut self, answer: Option<ServerMsg>) {
        if std::mem::replace(&mut self.sent, true) {
            return;
        }
        let frame = Frame::Enrolled {
            code: self.code.clone(),
            answer: answer.map(Box::new),
        };
        self.cluster
            .publish(self.cluster.keys().instance_channel(&self.instance), &frame);
    }
}

impl Drop for RemoteJoiner {
    fn drop(&mut self) {
        self.send(None);
    }
}

/// What the enrollment's instance tells the joiner's.
#[derive(serde::Serialize, serde::Deserialize)]
struct Found {
    username: Username,
    expires: u64,
    sig: Sig64,
}

impl Hub {
    /// An enrollment opened here: noted in Redis for the token's life.
    pub(super) async fn index_enrollment(&self, code: &str, life: std::time::Duration) {
        if let Some(c) = self.cluster.as_deref() {
            if let Err(e) = cluster::index_enrollment(c, code, life).await {
                tracing::warn!(error = %e, "noting an enrollment in redis failed");
            }
        }
    }

    /// A join for an enrollment not held here: forwarded to the instance that holds it.
    pub(super) async fn join_elsewhere(&self, code: String, j: Join) -> Result<Joined, Refusal> {
        let cluster = self.cluster.clone().ok_or(Refusal::NotFound)?;
        let owner = cluster::enrollment_owner(&cluster, &code)
            .await
            .ok()
            .flatten()
            .filter(|o| o != cluster.id())
            .ok_or(Refusal::NotFound)?;
        let join = JoinRequest {
            device_id: j.device_id.clone(),
            dk_ed25519: j.dk_ed25519,
            dk_curve25519: j.dk_curve25519,
            caps: j.caps,
            otk: j.otk,
        };
        // Registered before asking, so an answer that comes at once finds its way.
        let (tx, rx) = oneshot::channel();
        self.lock()
            .remote
            .joiners
            .insert(code.clone(), (owner.clone(), j.device_id.clone(), tx));
        let asked = cluster
            .call(&owner, |req, from| Frame::Join {
                from,
                req,
                code: code.clone(),
                join,
            })
            .await;
        let found = asked
            .map_err(refusal)
            .and_then(|v| serde_json::from_value::<Found>(v).map_err(|_| Refusal::NotFound));
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                self.lock().remote.joiners.remove(&code);
                return Err(e);
            }
        };
        let ak_pub = self.account_key(&found.username).await?;
        Ok(Joined {
            pending: ServerMsg::EnrollPending {
                username: found.username,
                ak_pub,
                expires: found.expires,
                sig: found.sig,
            },
            answer: rx,
            code,
            device_id: j.device_id,
        })
    }

    /// Another instance forwards a join for an enrollment held here.
    pub(super) fn join_here_for(
        &self,
        cluster: &Arc<Cluster>,
        from: String,
        code: String,
        join: JoinRequest,
        now: Now,
    ) -> cluster::WireResult {
        let joiner = Joiner {
            device_id: join.device_id,
            dk_ed25519: join.dk_ed25519,
            dk_curve25519: join.dk_curve25519,
            caps: join.caps,
            done: Answer::Elsewhere(RemoteJoiner {
                cluster: cluster.clone(),
                instance: from,
                code: code.clone(),
                sent: false,
            }),
        };
        let found = self
            .take_enrollment(&code, joiner, join.otk, now)
            .map(|(username, expires, sig)| Found {
                username,
                expires,
                sig,
            })
            .and_then(|f| serde_json::to_value(f).map_err(|_| Refusal::NotFound));
        to_wire(found)
    }

    /// The opener's answer for a joiner waiting here.
    pub(super) fn enrolled(&self, code: &str, answer: Option<ServerMsg>) {
        let waiting = self.lock().remote.joiners.remove(code);
        if let (Some((_, _, tx)), Some(msg)) = (waiting, answer) {
            let _ = tx.send(msg);
        }
    }

    /// A joiner waiting here gave up: the enrollment's instance hears it.
    pub(super) fn abandon_elsewhere(&self, code: &str, device_id: &str) {
        let waiting = {
            let mut st = self.lock();
            let mine = st
                .remote
                .joiners
                .get(code)
                .is_some_and(|(_, d, _)| d == device_id);
            if mine {
                st.remote.joiners.remove(code)
            } else {
                None
            }
        };
        if let (Some((owner, _, _)), Some(c)) = (waiting, self.cluster.as_deref()) {
            let frame = Frame::Abandon {
                code: code.to_string(),
                device_id: device_id.to_string(),
            };
            c.publish(c.keys().instance_channel(&owner), &frame);
        }
    }
}
