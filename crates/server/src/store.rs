//! The server's disk: exactly what DESIGN P2 allows (accounts, devices, friendships, account-key
//! rotations). SQLite (embedded, the default) or PostgreSQL (`postgres://…`, for many instances),
//! through sqlx's `Any` driver: one set of queries (`$N` placeholders, types both share), a schema and
//! migrations per database (`migrations/sqlite`, `migrations/postgres`).

use std::str::FromStr;

use anonchat_proto::fvc::CodeFormat;
use anonchat_proto::wire::{Mode, PresenceMode};
use anonchat_proto::{DeviceCert, Key32, Sig64, Username};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Row};

/// The columns `account_from_row` reads (a macro, so queries stay `&'static str`).
macro_rules! account_columns {
    () => {
        "ak_pub, discovery_mode, always_require_code, fvc_salt, code_format, presence, \
         static_code_hash"
    };
}

mod devices;
mod friends;
mod inline;
mod rotation;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("username is taken")]
    Taken,
    #[error("stored row is corrupt")]
    Corrupt,
    #[error("unsupported database URL (sqlite://PATH or postgres://…)")]
    Url,
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The gate's read on the calling thread (an SQLite file only).
    inline: Option<std::sync::Arc<inline::InlineReader>>,
}

/// An account's gate settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub ak_pub: Key32,
    pub mode: Mode,
    pub always_require_code: bool,
    pub fvc_salt: Vec<u8>,
    pub format: CodeFormat,
    pub presence: PresenceMode,
    /// Argon2id PHC string of a static code, if the account uses one.
    pub static_code_hash: Option<String>,
}

fn format_to_str(f: CodeFormat) -> String {
    match f {
        CodeFormat::Digits { digits } => format!("digits{digits}"),
        CodeFormat::Crockford => "crockford".into(),
    }
}

fn format_from_str(s: &str) -> Result<CodeFormat, StoreError> {
    match s {
        "crockford" => Ok(CodeFormat::Crockford),
        d => d
            .strip_prefix("digits")
            .and_then(|n| n.parse().ok())
            .map(|digits| CodeFormat::Digits { digits })
            .ok_or(StoreError::Corrupt),
    }
}

/// A device row as the hub needs it.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub username: Username,
    pub dk_ed25519: Key32,
    pub cert: DeviceCert,
    pub revoked: bool,
    /// The account key's signed revocation: `(ts, sig)`.
    pub revocation: Option<(u64, Sig64)>,
}

/// Devices an account may have at once.
pub const MAX_DEVICES: i64 = 16;

impl Store {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url);
        };
        // Through `Any` every connection opens the URL anew: an in-memory database (tests) must be
        // one connection kept for the pool's life, or each would see a database of its own.
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut inline = None;
        if backend == Backend::Sqlite && !memory {
            // Made here, owner-only, so the driver opens an existing file (sqlx's SQLite defaults
            // keep foreign keys on).
            let file = SqliteConnectOptions::from_str(url)?
                .get_filename()
                .to_owned();
            owner_only(&file)?;
            inline = Some(std::sync::Arc::new(inline::InlineReader::new(file)));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                _ if memory => 1,
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .min_connections(u32::from(memory))
            .idle_timeout((!memory).then_some(std::time::Duration::from_secs(600)))
            .max_lifetime((!memory).then_some(std::time::Duration::from_secs(1800)))
            .acquire_timeout(std::time::Duration::from_secs(5))
            // The pool already pings each connection it gets back; a ping before each use too
            // would be one more hop to SQLite's worker thread per query, for a local file.
            .test_before_acquire(backend != Backend::Sqlite)
            .connect(url)
            .await?;
        match backend {
            Backend::Sqlite => {
                // Persistent in the file: readers never wait for the writer.
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&pool)
                    .await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            }
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            inline,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// One round trip to the database (`SELECT 1`), for the latency the metrics report.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn register(
        &self,
        username: &Username,
        ak_pub: &Key32,
        cert: &DeviceCert,
        fvc_salt: &[u8],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO accounts (username, ak_pub, fvc_salt) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(username.as_str())
        .bind(&ak_pub.0[..])
        .bind(fvc_salt)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Taken);
        }
        let cert_json = serde_json::to_string(cert).map_err(|_| StoreError::Corrupt)?;
        sqlx::query(
            "INSERT INTO devices (device_id, username, dk_ed25519, dk_curve25519, caps, cert) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&cert.device_id)
        .bind(username.as_str())
        .bind(&cert.dk_ed25519.0[..])
        .bind(&cert.dk_curve25519.0[..])
        .bind(i64::from(cert.caps.screen_protection))
        .bind(cert_json)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Taken,
            _ => StoreError::Db(e),
        })?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn account_key(&self, username: &Username) -> Result<Option<Key32>, StoreError> {
        let row = sqlx::query("SELECT ak_pub FROM accounts WHERE username = $1")
            .bind(username.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| key_col(&r, "ak_pub")).transpose()
    }

    /// Deletes an account with its devices and friendships, leaving a tombstone.
    pub async fn delete_account(
        &self,
        username: &Username,
        name_hash: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM accounts WHERE username = $1")
            .bind(username.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tombstones (name_hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT (name_hash) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(name_hash)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a name is reserved by a tombstone; expired ones are removed on the way.
    pub async fn tombstoned(&self, name_hash: &[u8], now: i64) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM tombstones WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT 1 FROM tombstones WHERE name_hash = $1")
            .bind(name_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn account(&self, username: &Username) -> Result<Option<AccountRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// What the gate reads (DESIGN §5): the target's account, if any, and whether `me` and the
    /// target are friends — in one query, so every path costs the same one round trip.
    pub async fn gate_facts(
        &self,
        me: &Username,
        target: &Username,
    ) -> Result<(Option<AccountRow>, bool), StoreError> {
        let (x, y) = ordered(me, target);
        if let Some(answer) = self
            .inline
            .as_ref()
            .and_then(|r| r.gate_facts(target, x, y))
        {
            return answer;
        }
        self.gate_facts_sqlx(target, x, y).await
    }

    async fn gate_facts_sqlx(
        &self,
        target: &Username,
        x: &Username,
        y: &Username,
    ) -> Result<(Option<AccountRow>, bool), StoreError> {
        // One row whether or not the account exists: a LEFT JOIN from a constant.
        let row = sqlx::query(concat!(
            "SELECT ",
            account_columns!(),
            ", CAST(CASE WHEN EXISTS (SELECT 1 FROM friendships WHERE user_a = $2 AND user_b = $3) \
             THEN 1 ELSE 0 END AS BIGINT) AS friends \
             FROM (SELECT 1 AS one) AS one LEFT JOIN accounts ON accounts.username = $1"
        ))
        .bind(target.as_str())
        .bind(x.as_str())
        .bind(y.as_str())
        .fetch_one(&self.pool)
        .await?;
        let friends = row.try_get::<i64, _>("friends")? != 0;
        let exists = row.try_get::<Option<Vec<u8>>, _>("ak_pub")?.is_some();
        let account = if exists {
            Some(account_from_row(&row)?)
        } else {
            None
        };
        Ok((account, friends))
    }

    /// Sets the discovery settings; a new salt (when given) kills every earlier code.
    pub async fn set_mode(
        &self,
        username: &Username,
        mode: Mode,
        always_require_code: bool,
        format: CodeFormat,
        new_salt: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE accounts SET discovery_mode = $1, always_require_code = $2, code_format = $3, \
             fvc_salt = COALESCE($4, fvc_salt) WHERE username = $5",
        )
        .bind(mode.as_str())
        .bind(i64::from(always_require_code))
        .bind(format_to_str(format))
        .bind(new_salt)
        .bind(username.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_presence(
        &self,
        username: &Username,
        presence: PresenceMode,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET presence = $1 WHERE username = $2")
            .bind(presence.as_str())
            .bind(username.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_static_code(
        &self,
        username: &Username,
        hash: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET static_code_hash = $1 WHERE username = $2")
            .bind(hash)
            .bind(username.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn rotate_salt(&self, username: &Username, salt: &[u8]) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET fvc_salt = $1 WHERE username = $2")
            .bind(salt)
            .bind(username.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// PUBLIC accounts whose names start with `prefix`.
    pub async fn search_public(
        &self,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<Username>, StoreError> {
        // `prefix` is checked against the username alphabet by the caller; escape LIKE's wildcards.
        let pattern = format!("{}%", prefix.replace('_', "\\_"));
        let rows = sqlx::query(
            "SELECT username FROM accounts WHERE discovery_mode = 'public' \
             AND username LIKE $1 ESCAPE '\\' ORDER BY username LIMIT $2",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get("username")?;
                Username::parse(&name).map_err(|_| StoreError::Corrupt)
            })
            .collect()
    }
}

/// The database file readable by the server's user only (0600, like the secret): SQLite gives
/// its `-wal` and `-shm` files the same mode. An in-memory database has no file.
fn owner_only(path: &std::path::Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    let io = |e: std::io::Error| StoreError::Db(sqlx::Error::Io(e));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)
}

fn revocation_col(r: &AnyRow) -> Result<Option<(u64, Sig64)>, StoreError> {
    let raw: Option<Vec<u8>> = r.try_get("revocation")?;
    raw.map(|b| {
        let (ts, sig) = b.split_at_checked(8).ok_or(StoreError::Corrupt)?;
        let ts = u64::from_be_bytes(ts.try_into().map_err(|_| StoreError::Corrupt)?);
        Ok((ts, Sig64::from_slice(sig).map_err(|_| StoreError::Corrupt)?))
    })
    .transpose()
}

fn presence_col(r: &AnyRow) -> Result<PresenceMode, StoreError> {
    let p: String = r.try_get("presence")?;
    PresenceMode::parse(&p).ok_or(StoreError::Corrupt)
}

fn ordered<'a>(a: &'a Username, b: &'a Username) -> (&'a Username, &'a Username) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

/// An account row's columns as stored, before they are checked (read by sqlx or inline).
struct AccountParts {
    ak_pub: Vec<u8>,
    mode: String,
    always_require_code: i64,
    fvc_salt: Vec<u8>,
    format: String,
    presence: String,
    static_code_hash: Option<String>,
}

fn account_from_parts(p: AccountParts) -> Result<AccountRow, StoreError> {
    Ok(AccountRow {
        ak_pub: Key32::from_slice(&p.ak_pub).map_err(|_| StoreError::Corrupt)?,
        mode: Mode::parse(&p.mode).ok_or(StoreError::Corrupt)?,
        always_require_code: p.always_require_code != 0,
        fvc_salt: p.fvc_salt,
        format: format_from_str(&p.format)?,
        presence: PresenceMode::parse(&p.presence).ok_or(StoreError::Corrupt)?,
        static_code_hash: p.static_code_hash,
    })
}

fn account_from_row(r: &AnyRow) -> Result<AccountRow, StoreError> {
    account_from_parts(AccountParts {
        ak_pub: r.try_get("ak_pub")?,
        mode: r.try_get("discovery_mode")?,
        always_require_code: r.try_get("always_require_code")?,
        fvc_salt: r.try_get("fvc_salt")?,
        format: r.try_get("code_format")?,
        presence: r.try_get("presence")?,
        static_code_hash: r.try_get("static_code_hash")?,
    })
}

fn key_col(r: &AnyRow, col: &str) -> Result<Key32, StoreError> {
    let raw: Vec<u8> = r.try_get(col)?;
    Key32::from_slice(&raw).map_err(|_| StoreError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anonchat_proto::Caps;

    pub(super) fn cert(user: &Username, id: u8) -> DeviceCert {
        DeviceCert {
            v: 1,
            username: user.clone(),
            device_id: format!("{id:022}"),
            dk_ed25519: Key32([id; 32]),
            dk_curve25519: Key32([id; 32]),
            caps: Caps::default(),
            created_at: 0,
            sig: Sig64([0; 64]),
        }
    }

    #[tokio::test]
    async fn devices_are_added_up_to_the_limit_listed_and_revoked() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let alice = Username::parse("alice").unwrap();
        store
            .register(&alice, &Key32([9; 32]), &cert(&alice, 0), b"salt")
            .await
            .unwrap();
        for i in 1..MAX_DEVICES as u8 {
            store.add_device(&cert(&alice, i)).await.unwrap();
        }
        assert!(matches!(
            store.add_device(&cert(&alice, 99)).await,
            Err(StoreError::Taken)
        ));
        assert!(matches!(
            store.add_device(&cert(&alice, 1)).await,
            Err(StoreError::Taken)
        ));
        assert_eq!(
            store.devices(&alice).await.unwrap().len(),
            MAX_DEVICES as usize
        );
        let id = format!("{:022}", 1);
        let other = Username::parse("mallory").unwrap();
        assert!(!store
            .revoke_device(&other, &id, 5, &Sig64([1; 64]))
            .await
            .unwrap());
        assert!(store
            .revoke_device(&alice, &id, 5, &Sig64([1; 64]))
            .await
            .unwrap());
        let row = store.device(&id).await.unwrap().unwrap();
        assert!(row.revoked);
        assert_eq!(row.revocation, Some((5, Sig64([1; 64]))));
    }
}
