//! Account-key rotation on disk: the key swap, the re-signed device certificates and the transition
//! statement in one transaction, the statements for friends to fetch, and re-signed edge halves.

use anonchat_proto::rotation::{AkRotation, MAX_HISTORY};
use anonchat_proto::{DeviceCert, Sig64, Username};
use sqlx::Row;

use super::{key_col, ordered, Store, StoreError};

impl Store {
    /// Swaps the account key from `rotation.old_ak` to `rotation.new_ak` and stores the new
    /// certificates of the account's devices. `false` (and nothing changed) if the key on record
    /// is no longer the old key, or a certificate names a device that is not the account's.
    pub async fn rotate_account_key(
        &self,
        rotation: &AkRotation,
        certs: &[DeviceCert],
    ) -> Result<bool, StoreError> {
        let user = rotation.username.as_str();
        let mut tx = self.pool.begin().await?;
        let swapped =
            sqlx::query("UPDATE accounts SET ak_pub = $1 WHERE username = $2 AND ak_pub = $3")
                .bind(&rotation.new_ak.0[..])
                .bind(user)
                .bind(&rotation.old_ak.0[..])
                .execute(&mut *tx)
                .await?;
        if swapped.rows_affected() != 1 {
            return Ok(false);
        }
        for cert in certs {
            let json = serde_json::to_string(cert).map_err(|_| StoreError::Corrupt)?;
            let done = sqlx::query(
                "UPDATE devices SET cert = $1 WHERE device_id = $2 AND username = $3 AND revoked = 0",
            )
            .bind(json)
            .bind(&cert.device_id)
            .bind(user)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO ak_rotations (username, old_ak, new_ak, ts, sig_old, sig_new) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user)
        .bind(&rotation.old_ak.0[..])
        .bind(&rotation.new_ak.0[..])
        .bind(i64::try_from(rotation.ts).map_err(|_| StoreError::Corrupt)?)
        .bind(&rotation.sig_old.0[..])
        .bind(&rotation.sig_new.0[..])
        .execute(&mut *tx)
        .await?;
        // Bounded per account: the oldest statements go first.
        sqlx::query(
            "DELETE FROM ak_rotations WHERE username = $1 AND rowid NOT IN \
             (SELECT rowid FROM ak_rotations WHERE username = $1 ORDER BY rowid DESC LIMIT $2)",
        )
        .bind(user)
        .bind(MAX_HISTORY as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// An account's rotations, oldest first.
    pub async fn key_history(&self, username: &Username) -> Result<Vec<AkRotation>, StoreError> {
        let rows = sqlx::query(
            "SELECT old_ak, new_ak, ts, sig_old, sig_new FROM ak_rotations \
             WHERE username = $1 ORDER BY rowid",
        )
        .bind(username.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let sig = |col: &str| -> Result<Sig64, StoreError> {
                    let raw: Vec<u8> = r.try_get(col)?;
                    Sig64::from_slice(&raw).map_err(|_| StoreError::Corrupt)
                };
                Ok(AkRotation {
                    username: username.clone(),
                    old_ak: key_col(r, "old_ak")?,
                    new_ak: key_col(r, "new_ak")?,
                    ts: u64::try_from(r.try_get::<i64, _>("ts")?)
                        .map_err(|_| StoreError::Corrupt)?,
                    sig_old: sig("sig_old")?,
                    sig_new: sig("sig_new")?,
                })
            })
            .collect()
    }

    /// Replaces `me`'s signature on the edge with `them`. `false` if they are not friends.
    pub async fn resign_edge(
        &self,
        me: &Username,
        them: &Username,
        sig: &Sig64,
    ) -> Result<bool, StoreError> {
        let (a, b) = ordered(me, them);
        let col = if a == me { "sig_a" } else { "sig_b" };
        let done = sqlx::query(&format!(
            "UPDATE friendships SET {col} = $1 WHERE user_a = $2 AND user_b = $3"
        ))
        .bind(&sig.0[..])
        .bind(a.as_str())
        .bind(b.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cert;
    use super::*;
    use anonchat_proto::Key32;

    fn rotation(user: &Username, old: u8, new: u8) -> AkRotation {
        AkRotation {
            username: user.clone(),
            old_ak: Key32([old; 32]),
            new_ak: Key32([new; 32]),
            ts: 7,
            sig_old: Sig64([old; 64]),
            sig_new: Sig64([new; 64]),
        }
    }

    #[tokio::test]
    async fn rotation_swaps_the_key_only_from_the_key_on_record() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let alice = Username::parse("alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        store
            .register(&alice, &Key32([9; 32]), &cert(&alice, 0), b"salt")
            .await
            .unwrap();
        store
            .register(&bob, &Key32([8; 32]), &cert(&bob, 1), b"salt")
            .await
            .unwrap();
        // From a key that is not on record: nothing changes.
        assert!(!store
            .rotate_account_key(&rotation(&alice, 5, 6), &[cert(&alice, 0)])
            .await
            .unwrap());
        // A certificate for another account's device: the whole rotation is rolled back.
        let mut foreign = cert(&alice, 1);
        foreign.sig = Sig64([3; 64]);
        assert!(!store
            .rotate_account_key(&rotation(&alice, 9, 6), &[foreign])
            .await
            .unwrap());
        assert_eq!(
            store.account_key(&alice).await.unwrap(),
            Some(Key32([9; 32]))
        );
        assert!(store.key_history(&alice).await.unwrap().is_empty());

        let mut renewed = cert(&alice, 0);
        renewed.sig = Sig64([4; 64]);
        assert!(store
            .rotate_account_key(&rotation(&alice, 9, 6), std::slice::from_ref(&renewed))
            .await
            .unwrap());
        assert_eq!(
            store.account_key(&alice).await.unwrap(),
            Some(Key32([6; 32]))
        );
        assert_eq!(store.devices(&alice).await.unwrap()[0].0, renewed);
        assert_eq!(
            store.key_history(&alice).await.unwrap(),
            vec![rotation(&alice, 9, 6)]
        );
        // The same statement again is refused: the old key is no longer on record.
        assert!(!store
            .rotate_account_key(&rotation(&alice, 9, 6), &[renewed])
            .await
            .unwrap());

        assert!(!store
            .resign_edge(&alice, &bob, &Sig64([1; 64]))
            .await
            .unwrap());
        store
            .add_friendship(&alice, &Sig64([1; 64]), &bob, &Sig64([2; 64]))
            .await
            .unwrap();
        assert!(store
            .resign_edge(&bob, &alice, &Sig64([7; 64]))
            .await
            .unwrap());
    }
}
