-- The trxId allocation alone: every inquiry and payment updates this one row, and holds its lock
-- until the commit is durable, so allocations queue behind each other's WAL flush.
UPDATE trx_counter SET last_value = CASE WHEN last_value >= 99999999 THEN 1 ELSE last_value + 1 END WHERE id = 1 RETURNING last_value;
