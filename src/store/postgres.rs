//! Postgres: production storage, shared by several gateway processes. Only what differs from
//! SQLite is here (the shared statements are in [`super::sql`]): trxIds come from a sequence,
//! a group-commit batch is one statement, due advice is claimed with `FOR UPDATE SKIP LOCKED`,
//! and uuids are the native `uuid` type.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::group_commit::{BatchPart, Write};
use super::sql::{transaction_columns, Dialect, SqlStore, TRX_ID_BLOCK};
use super::StoreError;
use crate::domain::TrxId;

/// The Postgres store.
pub type PostgresStore = SqlStore<Postgres>;

/// The embedded Postgres migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The partial unique index that enforces "already paid".
const PAID_INQUIRY_INDEX: &str = "transactions_paid_inquiry_unique";

impl PostgresStore {
    /// Connects a pool of at most `max_connections` and applies the migrations (serialised
    /// across processes by sqlx's advisory lock).
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to Postgres")?;
        Self::open(pool, ()).await
    }
}

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";

    // The rows are locked while claimed: a concurrent claimer skips them.
    const CLAIM_DUE_ADVICE: &'static str = concat!(
        "WITH due AS MATERIALIZED (\
         SELECT id FROM transactions \
         WHERE status = 'pending' AND next_advice_at <= $1 \
         ORDER BY next_advice_at, id LIMIT $3 \
         FOR UPDATE SKIP LOCKED) \
         UPDATE transactions SET next_advice_at = $2 \
         WHERE id IN (SELECT id FROM due) RETURNING ",
        transaction_columns!()
    );

    type UuidColumn = Uuid;

    /// Postgres needs no write probe: a refused write says so itself.
    type Probe = ();

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn names_paid_index(error: &dyn DatabaseError) -> bool {
        error.constraint() == Some(PAID_INQUIRY_INDEX)
    }

    async fn take_trx_ids(pool: &PgPool) -> Result<Vec<u32>, StoreError> {
        // A sequence: unique across connections and processes, no row lock (migration 0004).
        // Its commit waits for the WAL flush, as every write outside an inquiry-only batch
        // does: `nextval` takes a transaction id when it logs (Postgres's sequence.c), so the
        // block is on disk before any of it is handed out, even though inquiries commit
        // asynchronously (`flush`). tests/api/faults_process.rs checks this.
        let values: Vec<i64> =
            sqlx::query_scalar("SELECT nextval('trx_id_seq') FROM generate_series(1, $1)")
                .bind(TRX_ID_BLOCK)
                .fetch_all(pool)
                .await?;
        values
            .into_iter()
            .map(|value| {
                u32::try_from(value)
                    .ok()
                    .filter(|v| TrxId::new(*v).is_some())
                    .ok_or_else(|| {
                        StoreError::from(anyhow::anyhow!("trx_id_seq gave {value}, not a trxId"))
                    })
            })
            .collect()
    }

    async fn set_trx_counter(pool: &PgPool, last: u32) -> Result<(), StoreError> {
        // `is_called = false` with 1 makes the next value 1 (a fresh counter).
        sqlx::query("SELECT setval('trx_id_seq', GREATEST($1, 1), $1 > 0)")
            .bind(i64::from(last))
            .execute(pool)
            .await?;
        Ok(())
    }

    /// A batch as ONE statement (one round trip, one commit): its transactions, exchanges and
    /// Idempotency-Key answers as multi-row data-modifying `WITH` clauses. The statement is
    /// atomic; foreign keys are checked at its end, when the transactions its exchanges refer
    /// to are in. Batch sizes vary, so it stays out of the prepared-statement cache.
    ///
    /// A batch of inquiries only commits asynchronously (`synchronous_commit` off for this
    /// transaction): it is answered once Postgres has it, before its WAL is on disk. An inquiry
    /// moves no money: if a database crash loses its record, its payment gets 404 and the client
    /// inquires again (README, "Durability"). Any other write in the batch (an exchange of a
    /// payment, an Idempotency-Key answer) makes the whole batch synchronous, as is every write
    /// outside the group commit, and trxIds (`take_trx_ids`).
    async fn flush(pool: PgPool, writes: Arc<[Write]>) -> Result<(), StoreError> {
        let inquiries_only = writes.iter().all(|w| matches!(w, Write::Inquiry(..)));
        let mut query = QueryBuilder::<Postgres>::new("WITH ");
        if inquiries_only {
            query.push("durability AS (SELECT set_config('synchronous_commit', 'off', true)), ");
        }
        for (i, part) in BatchPart::of(&writes).enumerate() {
            query.push(format_args!("{}p{i} AS (", if i == 0 { "" } else { ", " }));
            PostgresStore::push_batch_part(&mut query, &writes, part);
            query.push(")");
        }
        query.push(if inquiries_only {
            " SELECT 1 FROM durability"
        } else {
            " SELECT 1"
        });
        query.build().persistent(false).execute(&pool).await?;
        Ok(())
    }

    async fn probe_writes(_: &PgPool, _: &()) -> Result<(), StoreError> {
        Ok(())
    }
}

impl super::events::EventDialect for Postgres {
    // The rows are locked while claimed: a concurrent claimer skips them.
    const CLAIM_DUE_DELIVERIES: &'static str = "WITH due AS MATERIALIZED (\
         SELECT d.id FROM webhook_deliveries d \
         JOIN webhook_endpoints w ON w.id = d.endpoint_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.deleted_at IS NULL \
         ORDER BY d.next_attempt_at, d.id LIMIT $3 \
         FOR UPDATE OF d SKIP LOCKED) \
         UPDATE webhook_deliveries SET next_attempt_at = $2, lease_until = $2 \
         WHERE id IN (SELECT id FROM due) RETURNING id";
}
