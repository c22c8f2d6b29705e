//! Device rows: certificates, the per-account limit, revocations.

use anonchat_proto::{DeviceCert, Sig64, Username};
use sqlx::Row;

use super::{key_col, revocation_col, DeviceRow, Store, StoreError, MAX_DEVICES};

impl Store {
    pub async fn device(&self, device_id: &str) -> Result<Option<DeviceRow>, StoreError> {
        let row = sqlx::query(
            "SELECT username, dk_ed25519, cert, revoked, revocation FROM devices WHERE device_id = $1",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let username: String = r.try_get("username")?;
        let cert: String = r.try_get("cert")?;
        Ok(Some(DeviceRow {
            username: Username::parse(&username).map_err(|_| StoreError::Corrupt)?,
            dk_ed25519: key_col(&r, "dk_ed25519")?,
            cert: serde_json::from_str(&cert).map_err(|_| StoreError::Corrupt)?,
            revoked: r.try_get::<i64, _>("revoked")? != 0,
            revocation: revocation_col(&r)?,
        }))
    }

    /// Adds a device to an existing account (enrollment). `Taken` if the account is at its device
    /// limit or the device id exists.
    pub async fn add_device(&self, cert: &DeviceCert) -> Result<(), StoreError> {
        let cert_json = serde_json::to_string(cert).map_err(|_| StoreError::Corrupt)?;
        let inserted = sqlx::query(
            "INSERT INTO devices (device_id, username, dk_ed25519, dk_curve25519, caps, cert) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE (SELECT COUNT(*) FROM devices WHERE username = $7) < $8 \
             ON CONFLICT DO NOTHING",
        )
        .bind(&cert.device_id)
        .bind(cert.username.as_str())
        .bind(&cert.dk_ed25519.0[..])
        .bind(&cert.dk_curve25519.0[..])
        .bind(i64::from(cert.caps.screen_protection))
        .bind(cert_json)
        .bind(cert.username.as_str())
        .bind(MAX_DEVICES)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Taken);
        }
        Ok(())
    }

    /// An account's devices: certificate and whether revoked.
    pub async fn devices(
        &self,
        username: &Username,
    ) -> Result<Vec<(DeviceCert, bool)>, StoreError> {
        let rows =
            sqlx::query("SELECT cert, revoked FROM devices WHERE username = $1 ORDER BY rowid")
                .bind(username.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let cert: String = r.try_get("cert")?;
                Ok((
                    serde_json::from_str(&cert).map_err(|_| StoreError::Corrupt)?,
                    r.try_get::<i64, _>("revoked")? != 0,
                ))
            })
            .collect()
    }

    /// Marks a device of `username` revoked, keeping the signed revocation. `false` if there is no
    /// such device of that account.
    pub async fn revoke_device(
        &self,
        username: &Username,
        device_id: &str,
        ts: u64,
        sig: &Sig64,
    ) -> Result<bool, StoreError> {
        let mut blob = ts.to_be_bytes().to_vec();
        blob.extend_from_slice(&sig.0);
        let done = sqlx::query(
            "UPDATE devices SET revoked = 1, revocation = $1 WHERE device_id = $2 AND username = $3",
        )
        .bind(blob)
        .bind(device_id)
        .bind(username.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
