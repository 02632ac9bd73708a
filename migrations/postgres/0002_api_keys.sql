-- API keys of our own clients (src/keys.rs). Only the SHA-256 of a key is stored, never the key.

CREATE TABLE api_keys (
    id           UUID NOT NULL PRIMARY KEY,
    lookup       TEXT NOT NULL UNIQUE,
    hash         TEXT NOT NULL,
    client       TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('operator', 'finance', 'admin')),
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);

CREATE INDEX api_keys_client_idx ON api_keys (client);
