-- The per-payment balance drift check is gone: concurrent payments made it report false drift,
-- and nobody read its warnings. The deposit is reconciled by chaining the upstream's balances
-- instead (API.md, "Deposit: reconciliation and monitoring"). Its table and the index it read
-- go with it.
DROP INDEX IF EXISTS transactions_last_balance_idx;
DROP TABLE IF EXISTS warnings;
