-- Privacy settings of DESIGN P2: whether friends need the code too, the code's salt (rotating it kills
-- every earlier code and link) and how the code is shown. The code itself is never stored.
ALTER TABLE accounts ADD COLUMN always_require_code INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN fvc_salt BLOB NOT NULL DEFAULT x'';
ALTER TABLE accounts ADD COLUMN code_format TEXT NOT NULL DEFAULT 'digits6';
CREATE INDEX accounts_public ON accounts(username) WHERE discovery_mode = 'public';
