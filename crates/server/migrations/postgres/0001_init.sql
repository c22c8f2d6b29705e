-- Everything the server keeps on disk (DESIGN P2), the same rows as the SQLite schema (migrations/sqlite,
-- 0001–0007 in one). Presence, one-time keys, rings, pending friend requests and rate-limit counters are
-- never here. Usernames compare byte-wise (COLLATE "C") as the server orders them; flags are BIGINT 0/1
-- and the ordering columns are named rowid, so one set of queries serves both databases.
CREATE TABLE accounts (
    username            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    ak_pub              BYTEA NOT NULL,
    discovery_mode      TEXT NOT NULL DEFAULT 'default',
    always_require_code BIGINT NOT NULL DEFAULT 0,
    fvc_salt            BYTEA NOT NULL DEFAULT ''::bytea,
    code_format         TEXT NOT NULL DEFAULT 'digits6',
    presence            TEXT NOT NULL DEFAULT 'exact',
    static_code_hash    TEXT
);
CREATE INDEX accounts_public ON accounts(username) WHERE discovery_mode = 'public';

CREATE TABLE devices (
    rowid         BIGSERIAL NOT NULL,
    device_id     TEXT PRIMARY KEY NOT NULL,
    username      TEXT COLLATE "C" NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    dk_ed25519    BYTEA NOT NULL,
    dk_curve25519 BYTEA NOT NULL,
    caps          BIGINT NOT NULL,
    cert          TEXT NOT NULL,
    revoked       BIGINT NOT NULL DEFAULT 0,
    revocation    BYTEA
);
CREATE INDEX devices_by_user ON devices(username);

-- One row per friendship, user_a < user_b, with both account keys' signatures over the edge.
CREATE TABLE friendships (
    user_a TEXT COLLATE "C" NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    user_b TEXT COLLATE "C" NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    sig_a  BYTEA NOT NULL,
    sig_b  BYTEA NOT NULL,
    PRIMARY KEY (user_a, user_b),
    CHECK (user_a < user_b)
);
CREATE INDEX friendships_by_b ON friendships(user_b);

-- A deleted account's name stays reserved for 30 days, kept only as a keyed hash.
CREATE TABLE tombstones (
    name_hash  BYTEA PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Account-key rotations: public keys and signatures only; deleted with the account.
CREATE TABLE ak_rotations (
    rowid    BIGSERIAL NOT NULL,
    username TEXT COLLATE "C" NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    old_ak   BYTEA NOT NULL,
    new_ak   BYTEA NOT NULL,
    ts       BIGINT NOT NULL,
    sig_old  BYTEA NOT NULL,
    sig_new  BYTEA NOT NULL
);
CREATE INDEX ak_rotations_by_user ON ak_rotations(username);
