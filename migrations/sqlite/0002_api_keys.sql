-- API keys of our own clients (src/keys.rs). Only the SHA-256 of a key is stored, never the key.
-- Same conventions as 0001: STRICT, lowercase hyphenated uuid text, RFC 3339 UTC text times.

CREATE TABLE api_keys (
    id           TEXT NOT NULL PRIMARY KEY,
    lookup       TEXT NOT NULL UNIQUE,
    hash         TEXT NOT NULL,
    client       TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('operator', 'finance', 'admin')),
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
) STRICT;

CREATE INDEX api_keys_client_idx ON api_keys (client);
