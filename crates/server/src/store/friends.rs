//! Friendships: one row per edge, both account keys' signatures over it.

use anonchat_proto::wire::PresenceMode;
use anonchat_proto::{Key32, Sig64, Username};
use sqlx::Row;

use super::{key_col, ordered, presence_col, Store, StoreError};

impl Store {
    pub async fn are_friends(&self, a: &Username, b: &Username) -> Result<bool, StoreError> {
        let (x, y) = ordered(a, b);
        let row = sqlx::query("SELECT 1 FROM friendships WHERE user_a = $1 AND user_b = $2")
            .bind(x.as_str())
            .bind(y.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Stores an edge with each side's signature; `sig_of_a` belongs to `a`.
    pub async fn add_friendship(
        &self,
        a: &Username,
        sig_of_a: &Sig64,
        b: &Username,
        sig_of_b: &Sig64,
    ) -> Result<(), StoreError> {
        let ((x, sx), (y, sy)) = if a < b {
            ((a, sig_of_a), (b, sig_of_b))
        } else {
            ((b, sig_of_b), (a, sig_of_a))
        };
        sqlx::query(
            "INSERT INTO friendships (user_a, user_b, sig_a, sig_b) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_a, user_b) DO UPDATE SET sig_a = excluded.sig_a, sig_b = excluded.sig_b",
        )
        .bind(x.as_str())
        .bind(y.as_str())
        .bind(&sx.0[..])
        .bind(&sy.0[..])
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn remove_friendship(&self, a: &Username, b: &Username) -> Result<bool, StoreError> {
        let (x, y) = ordered(a, b);
        let done = sqlx::query("DELETE FROM friendships WHERE user_a = $1 AND user_b = $2")
            .bind(x.as_str())
            .bind(y.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Friends of `who` with their account keys and presence settings.
    pub async fn friends(
        &self,
        who: &Username,
    ) -> Result<Vec<(Username, Key32, PresenceMode)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.username, a.ak_pub, a.presence FROM friendships f \
             JOIN accounts a ON a.username = CASE WHEN f.user_a = $1 THEN f.user_b ELSE f.user_a END \
             WHERE f.user_a = $1 OR f.user_b = $1 ORDER BY a.username",
        )
        .bind(who.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get("username")?;
                Ok((
                    Username::parse(&name).map_err(|_| StoreError::Corrupt)?,
                    key_col(r, "ak_pub")?,
                    presence_col(r)?,
                ))
            })
            .collect()
    }
}
