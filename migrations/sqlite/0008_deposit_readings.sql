-- The deposit's balance chain (API.md, "Deposit: reconciliation and monitoring").
-- Same conventions as 0001: STRICT, lowercase hyphenated uuid text, RFC 3339 UTC text times.
--
-- Readings of the balance (GET /v1/balance, the deposit monitor) are points on the chain that
-- the reconciliation report joins to the day's payments and purchases.
CREATE TABLE balance_readings (
    id      TEXT NOT NULL PRIMARY KEY,
    balance INTEGER NOT NULL,
    read_at TEXT NOT NULL
) STRICT;

-- One business day's readings (plus a margin either side).
CREATE INDEX balance_readings_read_at_idx ON balance_readings (read_at);

-- The deposit monitor's state, one row shared by every gateway process: the last balance seen
-- (the gauge gateway_deposit_balance_rupiah), when, and whether it is below
-- deposit.low_balance, so that deposit.low is decided once per fall, across restarts and
-- processes (a compare-and-set on `low`; 0 or 1).
CREATE TABLE deposit_monitor (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    low        INTEGER NOT NULL CHECK (low IN (0, 1)),
    balance    INTEGER,
    checked_at TEXT
) STRICT;

INSERT INTO deposit_monitor (id, low) VALUES (1, 0);
