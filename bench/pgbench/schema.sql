-- Reference (c) of scripts/bench: the table pgbench inserts into (one row per transaction).
CREATE TABLE bench_insert (
    id         BIGSERIAL PRIMARY KEY,
    payload    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
