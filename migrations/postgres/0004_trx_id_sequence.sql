-- trxIds come from a sequence instead of the trx_counter row: nextval takes no row lock and
-- waits for no commit, where every update of the one counter row queued behind the previous
-- one's WAL flush (bench/README.md, "Bottleneck"). It continues where the counter stopped and
-- cycles 99999999 -> 00000001 like the counter did.
CREATE SEQUENCE trx_id_seq AS BIGINT MINVALUE 1 MAXVALUE 99999999 CYCLE;
SELECT setval('trx_id_seq', GREATEST(last_value, 1), last_value > 0) FROM trx_counter WHERE id = 1;
