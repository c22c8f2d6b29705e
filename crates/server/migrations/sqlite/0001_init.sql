-- Everything the server keeps on disk (DESIGN P2). Presence, one-time keys, rings, pending friend
-- requests and rate-limit counters live in RAM only.
CREATE TABLE accounts (
    username       TEXT PRIMARY KEY NOT NULL,
    ak_pub         BLOB NOT NULL,
    discovery_mode TEXT NOT NULL DEFAULT 'default'
) STRICT;

CREATE TABLE devices (
    device_id     TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    dk_ed25519    BLOB NOT NULL,
    dk_curve25519 BLOB NOT NULL,
    caps          INTEGER NOT NULL,
    cert          TEXT NOT NULL,
    revoked       INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX devices_by_user ON devices(username);

-- One row per friendship, user_a < user_b, with both account keys' signatures over the edge.
CREATE TABLE friendships (
    user_a TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    user_b TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    sig_a  BLOB NOT NULL,
    sig_b  BLOB NOT NULL,
    PRIMARY KEY (user_a, user_b),
    CHECK (user_a < user_b)
) STRICT;
CREATE INDEX friendships_by_b ON friendships(user_b);
