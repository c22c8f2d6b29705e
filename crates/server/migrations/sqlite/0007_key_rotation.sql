-- Account-key rotations (DESIGN P2, P8): the transition statements an account's friends fetch to
-- follow its key from the one they pinned. Public keys and signatures only; deleted with the account.
CREATE TABLE ak_rotations (
    username TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    old_ak   BLOB NOT NULL,
    new_ak   BLOB NOT NULL,
    ts       INTEGER NOT NULL,
    sig_old  BLOB NOT NULL,
    sig_new  BLOB NOT NULL
) STRICT;
CREATE INDEX ak_rotations_by_user ON ak_rotations(username);
