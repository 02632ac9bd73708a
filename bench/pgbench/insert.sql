-- Reference (c): the database's own commit ceiling. One autocommitted one-row insert per
-- pgbench transaction, durably committed (the server's fsync/synchronous_commit as configured).
INSERT INTO bench_insert (payload) VALUES ('payment 00000001 1501 8888000000001');
