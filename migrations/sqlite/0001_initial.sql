-- Initial schema (SQLite). Append-only: later changes go in new migration files.
-- STRICT tables. Uuids are lowercase hyphenated text (UUIDv7 text sorts by creation time);
-- timestamps are RFC 3339 UTC text exactly as sqlx encodes chrono::DateTime<Utc>, so text
-- comparisons of bound values are consistent.

CREATE TABLE transactions (
    id                 TEXT NOT NULL PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('inquiry', 'payment', 'purchase')),
    status             TEXT NOT NULL CHECK (status IN ('sending', 'pending', 'succeeded', 'failed', 'review')),
    client             TEXT NOT NULL,
    request_id         TEXT,
    product            TEXT NOT NULL,
    bill_number        TEXT NOT NULL,
    trx_id             TEXT NOT NULL,
    retrieval          TEXT NOT NULL,
    amount             INTEGER,
    admin_fee          INTEGER,
    payment_code       TEXT,
    inquiry_id         TEXT,
    info1              TEXT,
    info2              TEXT,
    info3              TEXT,
    sheets             INTEGER,
    balance_after      INTEGER,
    result_code        TEXT,
    result_description TEXT,
    error_code         TEXT,
    advice_attempts    INTEGER NOT NULL DEFAULT 0,
    next_advice_at     TEXT,
    not_found_since    TEXT,
    review_reason      TEXT,
    expires_at         TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    completed_at       TEXT
) STRICT;

-- "Already paid": at most one payment per inquiry that has not failed.
CREATE UNIQUE INDEX transactions_paid_inquiry_unique
    ON transactions (inquiry_id)
    WHERE kind = 'payment' AND status <> 'failed';

CREATE INDEX transactions_status_next_advice_idx ON transactions (status, next_advice_at);
CREATE INDEX transactions_client_id_idx ON transactions (client, id);
CREATE INDEX transactions_created_at_idx ON transactions (created_at);
CREATE INDEX transactions_bill_number_idx ON transactions (bill_number);

CREATE TABLE exchanges (
    id             TEXT NOT NULL PRIMARY KEY,
    transaction_id TEXT,
    message_type   TEXT NOT NULL,
    trx_id         TEXT NOT NULL,
    request        TEXT NOT NULL,
    response       TEXT,
    http_status    INTEGER,
    outcome        TEXT NOT NULL,
    result_code    TEXT,
    latency_ms     INTEGER NOT NULL,
    request_id     TEXT,
    created_at     TEXT NOT NULL
) STRICT;

CREATE INDEX exchanges_transaction_id_idx ON exchanges (transaction_id);

CREATE TABLE idempotency_keys (
    client          TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    transaction_id  TEXT,
    response_status INTEGER,
    response_body   TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (client, key)
) STRICT;

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

CREATE TABLE trx_counter (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    last_value INTEGER NOT NULL CHECK (last_value >= 0 AND last_value <= 99999999)
) STRICT;

INSERT INTO trx_counter (id, last_value) VALUES (1, 0);

CREATE TABLE warnings (
    id             TEXT NOT NULL PRIMARY KEY,
    transaction_id TEXT,
    kind           TEXT NOT NULL,
    detail         TEXT NOT NULL,
    created_at     TEXT NOT NULL
) STRICT;

CREATE INDEX warnings_created_at_idx ON warnings (created_at);
