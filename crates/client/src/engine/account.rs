//! The account: registration, discovery mode and presence, the friend code, deletion, search.

use anonchat_proto::fvc::{CodeFormat, Fvc};
use anonchat_proto::wire::{
    ClientMsg, Mode, PresenceMode, RegisterRequest, ServerEnvelope, ServerMsg,
};
use anonchat_proto::{pow, Key32, Username};
use zeroize::Zeroizing;

use super::{blocking, lock, unix_now, CodeView, Engine, ModeView};
use crate::error::{ProfileError, SignalingError};
use crate::identity::Identity;
use crate::profile::ProfileData;
use crate::ClientError;

impl Engine {
    /// Creates this profile's identity, pays the proof of work and registers the name.
    pub async fn register(&self, username: &str) -> Result<(), ClientError> {
        if let Some(name) = self.username() {
            return Err(ClientError::Profile(ProfileError::AlreadyRegistered(name)));
        }
        // A profile whose keys are sealed under the passcode has an identity: never one over it.
        self.inner.unlocked()?;
        if lock(&self.inner.sealed).is_some() {
            return Err(self.inner.no_identity());
        }
        let username = Username::parse(username)?;
        let origin = self.server_or_err()?;
        let config = self.server_config(&origin).await?;
        let identity = Identity::create(username.clone(), self.inner.caps, unix_now());
        let ak_pub = identity.ak_pub();
        let resource = pow::register_resource(&username, &ak_pub);
        let bits = pow::affordable(config.register_pow_bits)?;
        let stamp = blocking(move || pow::Stamp::mint(&resource, bits, unix_now())).await?;
        let req = RegisterRequest {
            v: anonchat_proto::VERSION,
            username,
            ak_pub,
            device_cert: identity.cert.clone(),
            pow: stamp,
        };

        // Keychain first: a name registered without its key saved would be lost for good.
        let (kc, profile, secret) = (
            self.inner.keychain.clone(),
            self.inner.profile.clone(),
            identity.to_secret(),
        );
        blocking(move || kc.save(&profile, &secret)).await??;
        let resp = self
            .inner
            .http
            .post(format!("{origin}/v1/register"))
            .json(&req)
            .send()
            .await;
        let outcome = match resp {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => {
                Err(ClientError::Signaling(SignalingError::Taken))
            }
            Ok(r) => {
                let body: Option<ServerEnvelope> = r.json().await.ok();
                let detail = match body.map(|b| b.msg) {
                    Some(ServerMsg::Error {
                        detail: Some(d), ..
                    }) => d,
                    _ => "registration refused".into(),
                };
                Err(ClientError::Signaling(SignalingError::Refused(detail)))
            }
            Err(e) => Err(ClientError::Signaling(SignalingError::Http(e.to_string()))),
        };
        if let Err(e) = outcome {
            let (kc, profile) = (self.inner.keychain.clone(), self.inner.profile.clone());
            let _ = blocking(move || kc.delete(&profile)).await;
            return Err(e);
        }
        let key = identity.profile_key.clone();
        *lock(&self.inner.identity) = Some(identity);
        let pin = {
            let mut d = lock(&self.inner.data);
            d.server = Some(origin);
            d.server_pin = self.inner.pin.seen().map(Key32);
            d.server_pin
        };
        self.inner.pin.expect(pin.map(|k| k.0));
        self.inner.save_profile_under(&key).wait().await
    }

    /// Sets this account's discovery mode.
    pub async fn set_mode(
        &self,
        mode: Mode,
        always_require_code: bool,
        format: CodeFormat,
    ) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        self.inner
            .signaling
            .request(ClientMsg::SetMode {
                mode,
                always_require_code,
                format,
            })
            .await?;
        // Switching to STRICT may have rotated the salt: fetch the seed again when next needed.
        *lock(&self.inner.fvc) = None;
        Ok(())
    }

    pub async fn get_mode(&self) -> Result<ModeView, ClientError> {
        self.inner.unlocked()?;
        match self.inner.signaling.request(ClientMsg::GetMode).await? {
            ServerMsg::Mode {
                mode,
                always_require_code,
                format,
                presence,
            } => Ok(ModeView {
                mode,
                always_require_code,
                format,
                presence,
            }),
            _ => Err(ClientError::Signaling(SignalingError::UnexpectedAnswer)),
        }
    }

    /// What friends see of this account's presence: exact, "recently active", or offline.
    pub async fn set_presence(&self, presence: PresenceMode) -> Result<(), ClientError> {
        self.inner.unlocked()?;
        self.inner
            .signaling
            .request(ClientMsg::SetPresence { presence })
            .await?;
        Ok(())
    }

    /// This account's live code, the seconds it has left, and its share link. The seed is fetched
    /// once and kept in RAM only.
    pub async fn code(&self) -> Result<CodeView, ClientError> {
        self.inner.unlocked()?;
        let cached = lock(&self.inner.fvc).clone();
        let (seed, format) = match cached {
            Some(c) => c,
            None => {
                // Showing the code is sensitive: the passcode once per unlock (a lock drops the
                // seed).
                self.inner.sensitive()?;
                let answer = self.inner.signaling.request(ClientMsg::FvcSeed).await?;
                let ServerMsg::FvcSeed { seed, format, .. } = answer else {
                    return Err(ClientError::Signaling(SignalingError::UnexpectedAnswer));
                };
                let c = (Zeroizing::new(seed.0), format);
                *lock(&self.inner.fvc) = Some(c.clone());
                c
            }
        };
        let now = unix_now();
        let code = Fvc::new(&*seed, format).code(now);
        let (me, _) = self.my_ak()?;
        Ok(CodeView {
            link: anonchat_proto::fvc::share_link(&me, Some(&code)),
            seconds_left: Fvc::seconds_left(now),
            code,
        })
    }

    /// Uses a code of the user's choosing (6–32 letters and digits) instead of the rotating one, or
    /// goes back to the rotating one with `None`. The server keeps only an Argon2id hash of it.
    pub async fn set_static_code(&self, code: Option<&str>) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        self.inner
            .signaling
            .request(ClientMsg::SetStaticCode {
                code: code.map(str::to_string),
            })
            .await?;
        *lock(&self.inner.fvc) = None;
        Ok(())
    }

    /// A new salt: every code and link shared before stops working.
    pub async fn rotate_code(&self) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        self.inner.signaling.request(ClientMsg::RotateCode).await?;
        *lock(&self.inner.fvc) = None;
        Ok(())
    }

    /// Deletes the account on the server (AK-signed), then everything of it on this device: the
    /// keychain entry and the profile folder. Open chats are wiped first.
    pub async fn delete_account(&self) -> Result<(), ClientError> {
        self.inner.sensitive()?;
        self.delete_account_unchecked().await
    }

    /// [`Engine::delete_account`] without asking for the passcode: for burners, whose deletion
    /// is their purpose.
    pub(crate) async fn delete_account_unchecked(&self) -> Result<(), ClientError> {
        let (me, _) = self.my_ak()?;
        let ts = unix_now();
        let sig = self.sign_ak(&anonchat_proto::signing::delete_account_bytes(&me, ts))?;
        self.inner
            .signaling
            .request(ClientMsg::DeleteAccount { ts, sig })
            .await?;
        self.shutdown().await;
        self.forget_local().await
    }

    /// Deletes everything of this profile on this device: the keychain entry, the profile folder,
    /// and the identity, contacts and code seed in RAM. Call after `shutdown`.
    pub(crate) async fn forget_local(&self) -> Result<(), ClientError> {
        let (kc, profile) = (self.inner.keychain.clone(), self.inner.profile.clone());
        blocking(move || kc.delete(&profile)).await??;
        *lock(&self.inner.identity) = None;
        *lock(&self.inner.data) = ProfileData::default();
        *lock(&self.inner.fvc) = None;
        lock(&self.inner.enroll_gate).clear();
        // Through the writer: no write queued before can bring the folder back.
        self.inner.writer.remove_all().wait().await
    }

    /// PUBLIC accounts whose names start with `prefix`.
    pub async fn search(&self, prefix: &str) -> Result<Vec<String>, ClientError> {
        self.inner.unlocked()?;
        match self
            .inner
            .signaling
            .request(ClientMsg::Search {
                prefix: prefix.to_string(),
            })
            .await?
        {
            ServerMsg::Users { users } => Ok(users.into_iter().map(|u| u.to_string()).collect()),
            _ => Err(ClientError::Signaling(SignalingError::UnexpectedAnswer)),
        }
    }
}
