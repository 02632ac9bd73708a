-- The balance drift check reads the most recent succeeded payment's balance on every payment;
-- without this index that was a scan of the whole table.
CREATE INDEX transactions_last_balance_idx
    ON transactions (completed_at DESC, id DESC)
    WHERE status = 'succeeded' AND balance_after IS NOT NULL AND kind IN ('payment', 'purchase');
