-- Initial schema (Postgres). Append-only: later changes go in new migration files.

CREATE TABLE transactions (
    id                 UUID NOT NULL PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('inquiry', 'payment', 'purchase')),
    status             TEXT NOT NULL CHECK (status IN ('sending', 'pending', 'succeeded', 'failed', 'review')),
    client             TEXT NOT NULL,
    request_id         TEXT,
    product            TEXT NOT NULL,
    bill_number        TEXT NOT NULL,
    trx_id             TEXT NOT NULL,
    retrieval          TEXT NOT NULL,
    amount             BIGINT,
    admin_fee          BIGINT,
    payment_code       TEXT,
    inquiry_id         UUID,
    info1              TEXT,
    info2              TEXT,
    info3              TEXT,
    sheets             INTEGER,
    balance_after      BIGINT,
    result_code        TEXT,
    result_description TEXT,
    error_code         TEXT,
    advice_attempts    INTEGER NOT NULL DEFAULT 0,
    next_advice_at     TIMESTAMPTZ,
    not_found_since    TIMESTAMPTZ,
    review_reason      TEXT,
    expires_at         TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    completed_at       TIMESTAMPTZ
);

-- "Already paid": at most one payment per inquiry that has not failed.
CREATE UNIQUE INDEX transactions_paid_inquiry_unique
    ON transactions (inquiry_id)
    WHERE kind = 'payment' AND status <> 'failed';

CREATE INDEX transactions_status_next_advice_idx ON transactions (status, next_advice_at);
CREATE INDEX transactions_client_id_idx ON transactions (client, id);
CREATE INDEX transactions_created_at_idx ON transactions (created_at);
CREATE INDEX transactions_bill_number_idx ON transactions (bill_number);

CREATE TABLE exchanges (
    id             UUID NOT NULL PRIMARY KEY,
    transaction_id UUID,
    message_type   TEXT NOT NULL,
    trx_id         TEXT NOT NULL,
    request        TEXT NOT NULL,
    response       TEXT,
    http_status    INTEGER,
    outcome        TEXT NOT NULL,
    result_code    TEXT,
    latency_ms     BIGINT NOT NULL,
    request_id     TEXT,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX exchanges_transaction_id_idx ON exchanges (transaction_id);

CREATE TABLE idempotency_keys (
    client          TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    transaction_id  UUID,
    response_status INTEGER,
    response_body   TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

CREATE TABLE trx_counter (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    last_value BIGINT NOT NULL CHECK (last_value >= 0 AND last_value <= 99999999)
);

INSERT INTO trx_counter (id, last_value) VALUES (1, 0);

CREATE TABLE warnings (
    id             UUID NOT NULL PRIMARY KEY,
    transaction_id UUID,
    kind           TEXT NOT NULL,
    detail         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX warnings_created_at_idx ON warnings (created_at);
