-- A user-chosen code, kept only as an Argon2id hash (PHC string); NULL when the rotating code is used.
ALTER TABLE accounts ADD COLUMN static_code_hash TEXT;
