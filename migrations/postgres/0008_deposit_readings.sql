-- The deposit's balance chain (API.md, "Deposit: reconciliation and monitoring").
--
-- Readings of the balance (GET /v1/balance, the deposit monitor) are points on the chain that
-- the reconciliation report joins to the day's payments and purchases.
CREATE TABLE balance_readings (
    id      UUID NOT NULL PRIMARY KEY,
    balance BIGINT NOT NULL,
    read_at TIMESTAMPTZ NOT NULL
);

-- One business day's readings (plus a margin either side).
CREATE INDEX balance_readings_read_at_idx ON balance_readings (read_at);

-- The deposit monitor's state, one row shared by every gateway process: the last balance seen
-- (the gauge gateway_deposit_balance_rupiah), when, and whether it is below
-- deposit.low_balance, so that deposit.low is decided once per fall, across restarts and
-- processes (a compare-and-set on `low`).
CREATE TABLE deposit_monitor (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    low        BOOLEAN NOT NULL,
    balance    BIGINT,
    checked_at TIMESTAMPTZ
);

INSERT INTO deposit_monitor (id, low) VALUES (1, FALSE);
