-- What friends see of an account's presence (DESIGN P2: a privacy setting).
ALTER TABLE accounts ADD COLUMN presence TEXT NOT NULL DEFAULT 'exact';
