-- A revoked device keeps its row (so it is refused and can be told why) with the account key's
-- signed revocation: 8-byte big-endian unix seconds followed by the 64-byte signature.
ALTER TABLE devices ADD COLUMN revocation BLOB;
