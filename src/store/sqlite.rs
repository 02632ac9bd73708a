//! SQLite: the embedded default (one process). Only what differs from Postgres is here (the
//! shared statements are in [`super::sql`]).
//!
//! WAL journal, `synchronous = FULL` (a committed payment survives a power cut), 5 s busy
//! timeout, foreign keys on. SQLite has one writer at a time: a write statement is atomic, and
//! a database transaction starts with a write, so it never has to upgrade a read lock. trxIds
//! come from the counter row, a group-commit batch is one write transaction (one fsync), and
//! due advice needs no row lock. Readiness probes a write, and connections opened before a
//! refused probe are reopened ([`Reopen`]).
//!
//! Uuids are stored as lowercase hyphenated text (UUIDv7 text sorts by creation time);
//! timestamps as the RFC 3339 text sqlx writes for `DateTime<Utc>`, which compares correctly
//! as text against values bound the same way.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::BoxFuture;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use uuid::fmt::Hyphenated;

use super::group_commit::{BatchPart, Write};
use super::sql::{transaction_columns, Dialect, SqlStore, TRX_ID_BLOCK};
use super::StoreError;

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

/// The embedded SQLite migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How SQLite names a violation of the partial unique index that enforces "already paid"
/// (`transactions_paid_inquiry_unique`): SQLite reports the indexed columns, not the index.
const PAID_INQUIRY_VIOLATION: &str = "transactions.inquiry_id";

/// The largest trxId; the counter wraps to 00000001 after it.
const TRX_ID_MAX: i64 = 99_999_999;

impl SqliteStore {
    /// Opens (creating the file and its directory if missing) a pool of at most
    /// `max_connections` and applies the migrations. URLs: `sqlite://data/gateway.db`,
    /// `sqlite:///abs/path.db?mode=rwc`, `sqlite::memory:`.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("parsing the SQLite URL {url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let in_memory = is_in_memory(url, options.get_filename());
        let mut pool_options = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10));
        let reopen = Reopen::default();
        if in_memory {
            // One connection that never closes: the database lives as long as it does, and a
            // shared-cache database would answer lock conflicts without waiting.
            pool_options = pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            create_parent_dir(options.get_filename())?;
            pool_options = pool_options
                .before_acquire(reopen.hook())
                .after_release(reopen.hook());
        }
        let pool = pool_options
            .connect_with(options)
            .await
            .with_context(|| format!("opening the SQLite database {url:?}"))?;
        Self::open(pool, reopen).await
    }
}

/// Whether `url` names an in-memory database (no file, no directory to create).
fn is_in_memory(url: &str, filename: &Path) -> bool {
    url.contains(":memory:")
        || url.contains("mode=memory")
        || filename.to_string_lossy().starts_with("file:")
}

/// Creates the directory the database file goes in, if missing.
fn create_parent_dir(filename: &Path) -> anyhow::Result<()> {
    if let Some(parent) = filename.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database directory {}", parent.display()))?;
        }
    }
    Ok(())
}

impl Dialect for Sqlite {
    const BACKEND: &'static str = "sqlite";

    // One writer at a time: the statement claims the rows alone.
    const CLAIM_DUE_ADVICE: &'static str = concat!(
        "UPDATE transactions SET next_advice_at = $2 \
         WHERE id IN (\
         SELECT id FROM transactions \
         WHERE status = 'pending' AND next_advice_at <= $1 \
         ORDER BY next_advice_at, id LIMIT $3) \
         RETURNING ",
        transaction_columns!()
    );

    type UuidColumn = Hyphenated;

    type Probe = Reopen;

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn names_paid_index(error: &dyn DatabaseError) -> bool {
        error.message().contains(PAID_INQUIRY_VIOLATION)
    }

    async fn take_trx_ids(pool: &SqlitePool) -> Result<Vec<u32>, StoreError> {
        // The counter holds the last trxId handed out (0: none yet); take the next block.
        let last: i64 = sqlx::query_scalar(
            "UPDATE trx_counter SET last_value = (last_value + $1 - 1) % $2 + 1 \
             WHERE id = 1 RETURNING last_value",
        )
        .bind(TRX_ID_BLOCK)
        .bind(TRX_ID_MAX)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the trx_counter row is missing"))?;
        if !(1..=TRX_ID_MAX).contains(&last) {
            return Err(anyhow::anyhow!("trx_counter holds {last}, not a trxId").into());
        }
        // The block is the TRX_ID_BLOCK numbers ending at `last`, wrapping past 99999999.
        Ok((0..TRX_ID_BLOCK)
            .rev()
            .map(|back| ((last - 1 - back).rem_euclid(TRX_ID_MAX) + 1) as u32)
            .collect())
    }

    async fn set_trx_counter(pool: &SqlitePool, last: u32) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE trx_counter SET last_value = $1 WHERE id = 1")
            .bind(i64::from(last))
            .execute(pool)
            .await?;
        if result.rows_affected() != 1 {
            return Err(anyhow::anyhow!("the trx_counter row is missing").into());
        }
        Ok(())
    }

    /// A batch in one database transaction: its transactions, then its exchanges (which may
    /// refer to them), then its Idempotency-Key answers, each kind as one multi-row statement.
    /// Batch sizes vary, so these statements stay out of the prepared-statement cache.
    async fn flush(pool: SqlitePool, writes: Arc<[Write]>) -> Result<(), StoreError> {
        // The first statement writes, so the transaction never has to upgrade a read lock.
        let mut db = pool.begin().await?;
        for part in BatchPart::of(&writes) {
            let mut statement = QueryBuilder::new("");
            SqliteStore::push_batch_part(&mut statement, &writes, part);
            statement
                .build()
                .persistent(false)
                .execute(&mut *db)
                .await?;
        }
        db.commit().await?;
        Ok(())
    }

    async fn probe_writes(pool: &SqlitePool, reopen: &Reopen) -> Result<(), StoreError> {
        // Reads work on a full disk or a read-only file: a commit must reach the disk too. The
        // gateway does not use `user_version`; writing it rewrites the header page.
        let probe = sqlx::query("PRAGMA user_version = 0")
            .execute(pool)
            .await
            .map_err(StoreError::from);
        reopen.probed(matches!(probe, Err(StoreError::NotWritable(..))));
        probe.map(|_| ())
    }
}

/// SQLite opens a file it may not write read-only, and the connection stays read-only for its
/// whole life. Once readiness has seen the database refuse a write, connections opened before
/// are closed instead of reused (on acquire and on release): fixing the file (or freeing the
/// disk) needs no restart.
#[derive(Debug, Clone, Default)]
pub struct Reopen(Arc<std::sync::Mutex<ReopenState>>);

#[derive(Debug, Default)]
struct ReopenState {
    /// Connections opened before this are not reused.
    before: Option<Instant>,
    /// The last readiness probe was refused.
    refused: bool,
}

impl Reopen {
    /// Records the outcome of readiness's write probe.
    fn probed(&self, refused: bool) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if refused || state.refused {
            state.before = Some(Instant::now());
        }
        state.refused = refused;
    }

    /// The pool hook: whether a connection may be used again.
    fn hook(
        &self,
    ) -> impl for<'c> Fn(
        &'c mut SqliteConnection,
        PoolConnectionMetadata,
    ) -> BoxFuture<'c, Result<bool, sqlx::Error>>
           + Send
           + Sync
           + 'static {
        let reopen = self.clone();
        move |_, metadata| {
            let state = reopen.0.lock().unwrap_or_else(PoisonError::into_inner);
            let keep = match (state.before, Instant::now().checked_sub(metadata.age)) {
                (Some(before), Some(opened)) => opened >= before,
                _ => true,
            };
            Box::pin(std::future::ready(Ok(keep)))
        }
    }
}

impl super::events::EventDialect for Sqlite {
    // One writer: the statement claims atomically.
    const CLAIM_DUE_DELIVERIES: &'static str = "UPDATE webhook_deliveries \
         SET next_attempt_at = $2, lease_until = $2 \
         WHERE id IN (\
         SELECT d.id FROM webhook_deliveries d \
         JOIN webhook_endpoints w ON w.id = d.endpoint_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.deleted_at IS NULL \
         ORDER BY d.next_attempt_at, d.id LIMIT $3) \
         RETURNING id";
}
