-- A deleted account's name stays reserved for 30 days, kept only as a keyed hash (DESIGN P2).
CREATE TABLE tombstones (
    name_hash  BLOB PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
