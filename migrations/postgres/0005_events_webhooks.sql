-- Events and webhooks (API.md, "Notifications: the event feed and webhooks").
-- An event is inserted in the same database transaction as the state it announces, with one
-- webhook_deliveries row per endpoint that wants it.

CREATE TABLE events (
    -- evt_ + a UUIDv7 in simple form: ids sort by creation, the feed pages by id.
    id             TEXT NOT NULL PRIMARY KEY,
    type           TEXT NOT NULL CHECK (type IN ('transaction.pending', 'transaction.succeeded',
                                                 'transaction.failed', 'transaction.review',
                                                 'deposit.low')),
    -- The transaction's client; NULL for deposit.* events (seen by finance and admin only).
    client         TEXT,
    transaction_id UUID,
    -- The event's `data` as JSON text, exactly as sent: retries sign the same bytes.
    data           TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);

-- The operator's feed: its own client's events, oldest first after a cursor.
CREATE INDEX events_client_id_idx ON events (client, id);
-- Pruning after the retention period.
CREATE INDEX events_created_at_idx ON events (created_at);

CREATE TABLE webhook_endpoints (
    id                        UUID NOT NULL PRIMARY KEY,
    url                       TEXT NOT NULL,
    -- NULL: every client's transactions and deposit.* events.
    client                    TEXT,
    -- A JSON array of event types; [] for all.
    events                    TEXT NOT NULL,
    -- v1: + base64(nonce || AES-256-GCM ciphertext); never the secret in clear.
    secret_encrypted          TEXT NOT NULL,
    -- The secret before the last rotation, still signing until previous_secret_until.
    previous_secret_encrypted TEXT,
    previous_secret_until     TIMESTAMPTZ,
    created_at                TIMESTAMPTZ NOT NULL,
    deleted_at                TIMESTAMPTZ
);

CREATE TABLE webhook_deliveries (
    id               UUID NOT NULL PRIMARY KEY,
    endpoint_id      UUID NOT NULL REFERENCES webhook_endpoints (id),
    event_id         TEXT NOT NULL REFERENCES events (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    -- A worker holding the delivery until then (FOR UPDATE SKIP LOCKED + lease): several
    -- gateway processes never send one attempt twice at once.
    lease_until      TIMESTAMPTZ,
    last_attempt_at  TIMESTAMPTZ,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (endpoint_id, event_id)
);

-- Claiming due work: pending deliveries by next attempt.
CREATE INDEX webhook_deliveries_due_idx
    ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- The deliveries log of an endpoint, newest first, paged by id (UUIDv7: creation order).
CREATE INDEX webhook_deliveries_endpoint_id_idx ON webhook_deliveries (endpoint_id, id);
