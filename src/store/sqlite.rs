//! The SQLite adapter: the embedded default (one process).
//!
//! WAL journal, `synchronous = FULL` (a committed payment survives a power cut), 5 s busy
//! timeout, foreign keys on. Every method is one autocommitted statement (plus a read-only
//! follow-up where a conflict has to be explained): SQLite has one writer at a time, so each
//! write statement is atomic, and no deferred transaction ever has to upgrade its lock. The
//! exception is the group committer ([`super::group_commit`]): finished inquiries and exchanges
//! are inserted many at a time in one write-only transaction (one fsync for the batch). trxIds
//! are taken from the counter row in blocks of [`TRX_ID_BLOCK`], handed out from memory.
//!
//! Uuids are stored as lowercase hyphenated text (UUIDv7 text sorts by creation time);
//! timestamps as the RFC 3339 text sqlx writes for `DateTime<Utc>`, which compares correctly
//! as text against values bound the same way.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::query_builder::Separated;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::group_commit::{GroupCommit, KeyAnswer, Write};
use super::{
    ExchangeRecord, IdempotencyRecord, KeyClaim, ReportRow, Store, StoreError, TransactionFilter,
    WarningRecord,
};
use crate::domain::{Transaction, TransactionKind, TransactionStatus, TrxId};
use crate::keys::{ApiKeyRecord, Role};

/// The embedded SQLite migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How SQLite names a violation of the partial unique index that enforces "already paid"
/// (`transactions_paid_inquiry_unique`): SQLite reports the indexed columns, not the index.
const PAID_INQUIRY_VIOLATION: &str = "transactions.inquiry_id";

/// How many times an insert that hit the "already paid" index is retried when the blocking
/// payment turned out to have failed in the meantime.
const PAID_RETRIES: usize = 3;

/// The columns of `transactions`, in the order [`transaction_from_row`] reads them.
macro_rules! transaction_columns {
    () => {
        "id, kind, status, client, request_id, product, bill_number, trx_id, retrieval, \
         amount, admin_fee, payment_code, inquiry_id, info1, info2, info3, sheets, \
         balance_after, result_code, result_description, error_code, advice_attempts, \
         next_advice_at, not_found_since, review_reason, expires_at, created_at, updated_at, \
         completed_at"
    };
}

/// A uuid as stored: lowercase hyphenated text.
fn text_uuid(id: Uuid) -> String {
    id.as_hyphenated().to_string()
}

fn opt_text_uuid(id: Option<Uuid>) -> Option<String> {
    id.map(text_uuid)
}

fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| corrupt("uuid", text))
}

fn parse_opt_uuid(text: Option<String>) -> Result<Option<Uuid>, StoreError> {
    text.as_deref().map(parse_uuid).transpose()
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: GroupCommit,
    /// trxIds taken from the counter and not handed out yet (popped from the end).
    trx_ids: Arc<Mutex<Vec<u32>>>,
    reopen: Reopen,
}

/// How many trxIds one counter update takes. A process that stops loses the rest of its block:
/// trxIds may skip, never repeat.
pub const TRX_ID_BLOCK: i64 = 32;

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
        if !in_memory {
            create_parent_dir(options.get_filename())?;
        }
        let mut pool_options = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10));
        let reopen = Reopen::default();
        if !in_memory {
            pool_options = pool_options
                .before_acquire(reopen.hook())
                .after_release(reopen.hook());
        }
        if in_memory {
            // One connection that never closes: the database lives as long as it does, and a
            // shared-cache database would answer lock conflicts without waiting.
            pool_options = pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = pool_options
            .connect_with(options)
            .await
            .with_context(|| format!("opening the SQLite database {url:?}"))?;
        let writer = GroupCommit::spawn({
            let pool = pool.clone();
            move |writes| flush_writes(pool.clone(), writes)
        });
        let store = Self {
            pool,
            writer,
            trx_ids: Arc::default(),
            reopen,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies any migration not applied yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("applying SQLite migrations")
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Sets the trxId counter so that the next allocation returns the number after `last`
    /// (`0` starts again at 00000001). For tests and operators.
    pub async fn set_trx_counter(&self, last: u32) -> Result<(), StoreError> {
        self.trx_ids.lock().await.clear();
        let result = sqlx::query("UPDATE trx_counter SET last_value = ?1 WHERE id = 1")
            .bind(i64::from(last))
            .execute(&self.pool)
            .await?;
        if result.rows_affected() != 1 {
            return Err(anyhow::anyhow!("the trx_counter row is missing").into());
        }
        Ok(())
    }

    /// The payment of `inquiry_id` that is not failed, if any.
    async fn active_payment(&self, inquiry_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM transactions \
             WHERE inquiry_id = ?1 AND kind = 'payment' AND status <> 'failed' \
             ORDER BY id LIMIT 1",
        )
        .bind(text_uuid(inquiry_id))
        .fetch_optional(&self.pool)
        .await?;
        parse_opt_uuid(id)
    }

    /// Explains a violation of the "already paid" index.
    async fn already_paid(&self, transaction: &Transaction) -> Result<Option<Uuid>, StoreError> {
        match transaction.inquiry_id {
            Some(inquiry_id) => self.active_payment(inquiry_id).await,
            None => Ok(None),
        }
    }
}

/// Whether `url` names an in-memory database (no file, no directory to create).
fn is_in_memory(url: &str, filename: &Path) -> bool {
    url.contains(":memory:")
        || url.contains("mode=memory")
        || filename.to_string_lossy().starts_with("file:")
}

/// Creates the directory the database file goes in, if missing.
/// SQLite opens a file it may not write read-only, and the connection stays read-only for its
/// whole life. Once readiness has seen the database refuse a write, connections opened before
/// are closed instead of reused (on acquire and on release): fixing the file (or freeing the
/// disk) needs no restart.
#[derive(Debug, Clone, Default)]
struct Reopen(Arc<std::sync::Mutex<ReopenState>>);

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

fn create_parent_dir(filename: &Path) -> anyhow::Result<()> {
    if let Some(parent) = filename.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database directory {}", parent.display()))?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Inserts `t`, and if `key` (client, Idempotency-Key) is given, links that key to it in
    /// the same database transaction: both or neither. The "already paid" index is explained as
    /// [`StoreError::AlreadyPaid`].
    async fn insert_linked(
        &self,
        t: &Transaction,
        key: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        for _ in 0..PAID_RETRIES {
            let mut db = self.pool.begin().await?;
            if let Some((client, key)) = key {
                let linked = sqlx::query(
                    "UPDATE idempotency_keys SET transaction_id = ?3 \
                     WHERE client = ?1 AND key = ?2 AND transaction_id IS NULL",
                )
                .bind(client)
                .bind(key)
                .bind(text_uuid(t.id))
                .execute(&mut *db)
                .await?;
                if linked.rows_affected() == 0 {
                    // Gone, or linked by a concurrent takeover of the same abandoned key.
                    return Err(StoreError::KeyTaken);
                }
            }
            let mut insert = QueryBuilder::<Sqlite>::new(TRANSACTION_INSERT);
            insert.push_values([t], push_transaction);
            let result = insert.build().execute(&mut *db).await;
            match result {
                Ok(_) => {
                    db.commit().await?;
                    return Ok(());
                }
                Err(error) if is_paid_violation(&error) => {
                    db.rollback().await?;
                    if let Some(existing) = self.already_paid(t).await? {
                        return Err(StoreError::AlreadyPaid(existing));
                    }
                    // The blocking payment failed in the meantime: try again.
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(anyhow::anyhow!("the payment of this inquiry keeps changing; try again").into())
    }
}

fn is_paid_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.kind() == ErrorKind::UniqueViolation && db.message().contains(PAID_INQUIRY_VIOLATION)
        }
        _ => false,
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("stored {what} {value:?} is not valid"))
}

/// Binds one `transactions` row in the order of [`transaction_columns!`].
fn push_transaction(mut row: Separated<'_, Sqlite, &'static str>, t: &Transaction) {
    row.push_bind(text_uuid(t.id))
        .push_bind(t.kind.as_str())
        .push_bind(t.status.as_str())
        .push_bind(t.client.clone())
        .push_bind(t.request_id.clone())
        .push_bind(t.product.clone())
        .push_bind(t.bill_number.clone())
        .push_bind(t.trx_id.clone())
        .push_bind(t.retrieval.clone())
        .push_bind(t.amount)
        .push_bind(t.admin_fee)
        .push_bind(t.payment_code.clone())
        .push_bind(opt_text_uuid(t.inquiry_id))
        .push_bind(t.info1.clone())
        .push_bind(t.info2.clone())
        .push_bind(t.info3.clone())
        .push_bind(t.sheets)
        .push_bind(t.balance_after)
        .push_bind(t.result_code.clone())
        .push_bind(t.result_description.clone())
        .push_bind(t.error_code.clone())
        .push_bind(t.advice_attempts)
        .push_bind(t.next_advice_at)
        .push_bind(t.not_found_since)
        .push_bind(t.review_reason.clone())
        .push_bind(t.expires_at)
        .push_bind(t.created_at)
        .push_bind(t.updated_at)
        .push_bind(t.completed_at);
}

/// Binds one `exchanges` row in the order of [`EXCHANGE_INSERT`].
fn push_exchange(mut row: Separated<'_, Sqlite, &'static str>, e: &ExchangeRecord) {
    row.push_bind(text_uuid(e.id))
        .push_bind(opt_text_uuid(e.transaction_id))
        .push_bind(e.message_type.clone())
        .push_bind(e.trx_id.clone())
        .push_bind(e.request.clone())
        .push_bind(e.response.clone())
        .push_bind(e.http_status)
        .push_bind(e.outcome.clone())
        .push_bind(e.result_code.clone())
        .push_bind(e.latency_ms)
        .push_bind(e.request_id.clone())
        .push_bind(e.created_at);
}

const TRANSACTION_INSERT: &str =
    concat!("INSERT INTO transactions (", transaction_columns!(), ") ");

const EXCHANGE_INSERT: &str = "INSERT INTO exchanges (id, transaction_id, message_type, trx_id, \
     request, response, http_status, outcome, result_code, latency_ms, request_id, created_at) ";

/// Stores many Idempotency-Key answers in one statement (SQLite names the columns of a
/// `VALUES` list `column1`, `column2`, …).
const KEY_ANSWERS_UPDATE: &str = "UPDATE idempotency_keys \
     SET response_status = v.column3, response_body = v.column4 FROM (";

const KEY_ANSWERS_WHERE: &str = ") AS v \
     WHERE idempotency_keys.client = v.column1 AND idempotency_keys.key = v.column2";

/// Commits a batch of the group committer in one database transaction: its transactions, then
/// its exchanges (which may refer to them), then its Idempotency-Key answers, each kind as one
/// multi-row statement. Batch sizes vary, so these statements stay out of the prepared-statement
/// cache.
async fn flush_writes(pool: SqlitePool, writes: Arc<[Write]>) -> Result<(), StoreError> {
    let transactions: Vec<&Transaction> = writes.iter().filter_map(Write::transaction).collect();
    let exchanges: Vec<&ExchangeRecord> = writes.iter().filter_map(Write::exchange).collect();
    let answers: Vec<&KeyAnswer> = writes.iter().filter_map(Write::key_answer).collect();
    // The first statement writes, so the transaction never has to upgrade a read lock.
    let mut db = pool.begin().await?;
    if !transactions.is_empty() {
        let mut insert = QueryBuilder::<Sqlite>::new(TRANSACTION_INSERT);
        insert.push_values(transactions, push_transaction);
        insert.build().persistent(false).execute(&mut *db).await?;
    }
    if !exchanges.is_empty() {
        let mut insert = QueryBuilder::<Sqlite>::new(EXCHANGE_INSERT);
        insert.push_values(exchanges, push_exchange);
        insert.build().persistent(false).execute(&mut *db).await?;
    }
    if !answers.is_empty() {
        let mut update = QueryBuilder::<Sqlite>::new(KEY_ANSWERS_UPDATE);
        update.push_values(answers, |mut row, answer| {
            row.push_bind(answer.client.clone())
                .push_bind(answer.key.clone())
                .push_bind(answer.status)
                .push_bind(answer.body.clone());
        });
        update.push(KEY_ANSWERS_WHERE);
        update.build().persistent(false).execute(&mut *db).await?;
    }
    db.commit().await?;
    Ok(())
}

fn transaction_from_row(row: &SqliteRow) -> Result<Transaction, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let id: String = row.try_get("id")?;
    let inquiry_id: Option<String> = row.try_get("inquiry_id")?;
    Ok(Transaction {
        id: parse_uuid(&id)?,
        kind: TransactionKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        status: TransactionStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        client: row.try_get("client")?,
        request_id: row.try_get("request_id")?,
        product: row.try_get("product")?,
        bill_number: row.try_get("bill_number")?,
        trx_id: row.try_get("trx_id")?,
        retrieval: row.try_get("retrieval")?,
        amount: row.try_get("amount")?,
        admin_fee: row.try_get("admin_fee")?,
        payment_code: row.try_get("payment_code")?,
        inquiry_id: parse_opt_uuid(inquiry_id)?,
        info1: row.try_get("info1")?,
        info2: row.try_get("info2")?,
        info3: row.try_get("info3")?,
        sheets: row.try_get("sheets")?,
        balance_after: row.try_get("balance_after")?,
        result_code: row.try_get("result_code")?,
        result_description: row.try_get("result_description")?,
        error_code: row.try_get("error_code")?,
        advice_attempts: row.try_get("advice_attempts")?,
        next_advice_at: row.try_get("next_advice_at")?,
        not_found_since: row.try_get("not_found_since")?,
        review_reason: row.try_get("review_reason")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

fn transactions_from_rows(rows: &[SqliteRow]) -> Result<Vec<Transaction>, StoreError> {
    rows.iter().map(transaction_from_row).collect()
}

fn exchange_from_row(row: &SqliteRow) -> Result<ExchangeRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let transaction_id: Option<String> = row.try_get("transaction_id")?;
    Ok(ExchangeRecord {
        id: parse_uuid(&id)?,
        transaction_id: parse_opt_uuid(transaction_id)?,
        message_type: row.try_get("message_type")?,
        trx_id: row.try_get("trx_id")?,
        request: row.try_get("request")?,
        response: row.try_get("response")?,
        http_status: row.try_get("http_status")?,
        outcome: row.try_get("outcome")?,
        result_code: row.try_get("result_code")?,
        latency_ms: row.try_get("latency_ms")?,
        request_id: row.try_get("request_id")?,
        created_at: row.try_get("created_at")?,
    })
}

fn idempotency_from_row(row: &SqliteRow) -> Result<IdempotencyRecord, StoreError> {
    let transaction_id: Option<String> = row.try_get("transaction_id")?;
    Ok(IdempotencyRecord {
        client: row.try_get("client")?,
        key: row.try_get("key")?,
        request_hash: row.try_get("request_hash")?,
        transaction_id: parse_opt_uuid(transaction_id)?,
        response_status: row.try_get("response_status")?,
        response_body: row.try_get("response_body")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The columns of `api_keys`, in the order [`api_key_from_row`] reads them.
macro_rules! api_key_columns {
    () => {
        "id, lookup, hash, client, role, created_at, revoked_at, last_used_at"
    };
}

fn api_key_from_row(row: &SqliteRow) -> Result<ApiKeyRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    Ok(ApiKeyRecord {
        id: parse_uuid(&id)?,
        lookup: row.try_get("lookup")?,
        hash: row.try_get("hash")?,
        client: row.try_get("client")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?;
        if let Some(missing) = MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .find(|m| !applied.contains(&m.version))
        {
            return Err(anyhow::anyhow!(
                "migration {} ({}) is not applied",
                missing.version,
                missing.description
            )
            .into());
        }
        // Reads work on a full disk or a read-only file: a commit must reach the disk too. The
        // gateway does not use `user_version`; writing it rewrites the header page.
        let probe = sqlx::query("PRAGMA user_version = 0")
            .execute(&self.pool)
            .await
            .map_err(StoreError::from);
        self.reopen
            .probed(matches!(probe, Err(StoreError::NotWritable(..))));
        probe.map(|_| ())
    }

    async fn allocate_trx_id(&self) -> Result<TrxId, StoreError> {
        let mut block = self.trx_ids.lock().await;
        if block.is_empty() {
            // The counter holds the last trxId handed out (0: none yet); take the next block.
            let last: i64 = sqlx::query_scalar(
                "UPDATE trx_counter SET last_value = (last_value + ?1 - 1) % ?2 + 1 \
                 WHERE id = 1 RETURNING last_value",
            )
            .bind(TRX_ID_BLOCK)
            .bind(TRX_ID_MAX)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the trx_counter row is missing"))?;
            if !(1..=TRX_ID_MAX).contains(&last) {
                return Err(anyhow::anyhow!("trx_counter holds {last}, not a trxId").into());
            }
            // The block is the TRX_ID_BLOCK numbers ending at `last`, wrapping past 99999999;
            // pushed newest first so that `pop` hands them out in order.
            block.extend(
                (0..TRX_ID_BLOCK).map(|back| ((last - 1 - back).rem_euclid(TRX_ID_MAX) + 1) as u32),
            );
        }
        let value = block
            .pop()
            .ok_or_else(|| anyhow::anyhow!("the trxId block is empty"))?;
        TrxId::new(value).ok_or_else(|| anyhow::anyhow!("{value} is not a trxId").into())
    }

    async fn insert_transaction(&self, t: &Transaction) -> Result<(), StoreError> {
        self.insert_linked(t, None).await
    }

    async fn insert_transaction_for_key(
        &self,
        t: &Transaction,
        client: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        self.insert_linked(t, Some((client, key))).await
    }

    async fn update_transaction(
        &self,
        t: &Transaction,
        expected: TransactionStatus,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE transactions SET \
             status = ?3, request_id = ?4, trx_id = ?5, retrieval = ?6, amount = ?7, \
             admin_fee = ?8, payment_code = ?9, info1 = ?10, info2 = ?11, info3 = ?12, \
             sheets = ?13, balance_after = ?14, result_code = ?15, result_description = ?16, \
             error_code = ?17, advice_attempts = ?18, next_advice_at = ?19, \
             not_found_since = ?20, review_reason = ?21, expires_at = ?22, updated_at = ?23, \
             completed_at = ?24 \
             WHERE id = ?1 AND status = ?2",
        )
        .bind(text_uuid(t.id))
        .bind(expected.as_str())
        .bind(t.status.as_str())
        .bind(&t.request_id)
        .bind(&t.trx_id)
        .bind(&t.retrieval)
        .bind(t.amount)
        .bind(t.admin_fee)
        .bind(&t.payment_code)
        .bind(&t.info1)
        .bind(&t.info2)
        .bind(&t.info3)
        .bind(t.sheets)
        .bind(t.balance_after)
        .bind(&t.result_code)
        .bind(&t.result_description)
        .bind(&t.error_code)
        .bind(t.advice_attempts)
        .bind(t.next_advice_at)
        .bind(t.not_found_since)
        .bind(&t.review_reason)
        .bind(t.expires_at)
        .bind(t.updated_at)
        .bind(t.completed_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 0 => Err(StoreError::Conflict),
            Ok(_) => Ok(()),
            // Moving a failed payment out of `failed` while another payment holds the inquiry.
            Err(error) if is_paid_violation(&error) => match self.already_paid(t).await? {
                Some(existing) => Err(StoreError::AlreadyPaid(existing)),
                None => Err(StoreError::Conflict),
            },
            Err(error) => Err(error.into()),
        }
    }

    async fn get_transaction(&self, id: Uuid) -> Result<Option<Transaction>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE id = ?1"
        ))
        .bind(text_uuid(id))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(transaction_from_row).transpose()
    }

    async fn search_transactions(
        &self,
        filter: &TransactionFilter,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Transaction>, StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE TRUE"
        ));
        let text_filters = [
            ("client", &filter.client),
            ("kind", &filter.kind),
            ("product", &filter.product),
            ("bill_number", &filter.bill_number),
        ];
        for (column, value) in text_filters {
            if let Some(value) = value {
                query.push(" AND ").push(column).push(" = ");
                query.push_bind(value.clone());
            }
        }
        if !filter.statuses.is_empty() {
            query.push(" AND status IN (");
            let mut list = query.separated(", ");
            for status in &filter.statuses {
                list.push_bind(status.clone());
            }
            query.push(")");
        }
        if let Some(from) = filter.from {
            query.push(" AND created_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            query.push(" AND created_at < ").push_bind(to);
        }
        if let Some(before) = before {
            query.push(" AND id < ").push_bind(text_uuid(before));
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(limit.max(0));
        let rows = query.build().fetch_all(&self.pool).await?;
        transactions_from_rows(&rows)
    }

    async fn report_rows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, product, status, COUNT(*) AS count, \
             CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS amount, \
             CAST(COALESCE(SUM(admin_fee), 0) AS BIGINT) AS admin_fee \
             FROM transactions WHERE created_at >= ?1 AND created_at < ?2 \
             GROUP BY kind, product, status ORDER BY kind, product, status",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ReportRow {
                    kind: row.try_get("kind")?,
                    product: row.try_get("product")?,
                    status: row.try_get("status")?,
                    count: row.try_get("count")?,
                    amount: row.try_get("amount")?,
                    admin_fee: row.try_get("admin_fee")?,
                })
            })
            .collect()
    }

    async fn record_exchange(&self, e: &ExchangeRecord) -> Result<(), StoreError> {
        self.writer
            .write(Write::Exchange(Box::new(e.clone())))
            .await
    }

    async fn record_inquiry(
        &self,
        inquiry: &Transaction,
        exchange: &ExchangeRecord,
    ) -> Result<(), StoreError> {
        self.writer
            .write(Write::Inquiry(
                Box::new(inquiry.clone()),
                Box::new(exchange.clone()),
            ))
            .await
    }

    async fn list_exchanges(
        &self,
        transaction_id: Uuid,
    ) -> Result<Vec<ExchangeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, transaction_id, message_type, trx_id, request, response, http_status, \
             outcome, result_code, latency_ms, request_id, created_at \
             FROM exchanges WHERE transaction_id = ?1 ORDER BY created_at, id",
        )
        .bind(text_uuid(transaction_id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(exchange_from_row).collect()
    }

    async fn claim_idempotency_key(
        &self,
        client: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        // Loops only if the existing key is released between the insert and the select.
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (client, key, request_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (client, key) DO NOTHING",
            )
            .bind(client)
            .bind(key)
            .bind(request_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if inserted.rows_affected() == 1 {
                return Ok(KeyClaim::Claimed);
            }
            let row = sqlx::query(
                "SELECT client, key, request_hash, transaction_id, response_status, \
                 response_body, created_at \
                 FROM idempotency_keys WHERE client = ?1 AND key = ?2",
            )
            .bind(client)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return Ok(KeyClaim::Existing(idempotency_from_row(&row)?));
            }
        }
        Err(anyhow::anyhow!("idempotency key {key:?} keeps changing; try again").into())
    }

    async fn attach_idempotency_transaction(
        &self,
        client: &str,
        key: &str,
        transaction_id: Uuid,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE idempotency_keys SET transaction_id = ?3 WHERE client = ?1 AND key = ?2",
        )
        .bind(client)
        .bind(key)
        .bind(text_uuid(transaction_id))
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(anyhow::anyhow!("idempotency key {key:?} is not held").into());
        }
        Ok(())
    }

    async fn complete_idempotency_key(
        &self,
        client: &str,
        key: &str,
        status: i32,
        body: &str,
    ) -> Result<(), StoreError> {
        self.writer
            .write(Write::CompleteKey(Box::new(KeyAnswer {
                client: client.to_string(),
                key: key.to_string(),
                status,
                body: body.to_string(),
            })))
            .await
    }

    async fn release_idempotency_key(&self, client: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE client = ?1 AND key = ?2")
            .bind(client)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_idempotency_keys(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn claim_due_advice(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Transaction>, StoreError> {
        let rows = sqlx::query(concat!(
            "UPDATE transactions SET next_advice_at = ?2 \
             WHERE id IN (\
             SELECT id FROM transactions \
             WHERE status = 'pending' AND next_advice_at <= ?1 \
             ORDER BY next_advice_at, id LIMIT ?3) \
             RETURNING ",
            transaction_columns!()
        ))
        .bind(now)
        .bind(lease_until)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = transactions_from_rows(&rows)?;
        claimed.sort_by_key(|t| t.id);
        Ok(claimed)
    }

    async fn stale_sending(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Transaction>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE status = 'sending' AND updated_at < ?1 \
             ORDER BY updated_at, id LIMIT ?2"
        ))
        .bind(cutoff)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        transactions_from_rows(&rows)
    }

    async fn last_known_balance(&self) -> Result<Option<i64>, StoreError> {
        // SQLite's planner, without statistics, prefers the status index and sorts every
        // succeeded row; the partial index of migration 0003 reads just the newest one.
        // (NULLs already sort last in a descending SQLite index.)
        let balance: Option<i64> = sqlx::query_scalar(
            "SELECT balance_after FROM transactions INDEXED BY transactions_last_balance_idx \
             WHERE status = 'succeeded' AND balance_after IS NOT NULL \
             AND kind IN ('payment', 'purchase') \
             ORDER BY completed_at DESC, id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(balance)
    }

    async fn count_by_status(&self, status: TransactionStatus) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE status = ?1")
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, lookup, hash, client, role, created_at, revoked_at, \
             last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(text_uuid(key.id))
        .bind(&key.lookup)
        .bind(&key.hash)
        .bind(&key.client)
        .bind(key.role.as_str())
        .bind(key.created_at)
        .bind(key.revoked_at)
        .bind(key.last_used_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_api_key(&self, lookup: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE lookup = ?1"
        ))
        .bind(lookup)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        // A second revocation keeps the first instant.
        let result =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1")
                .bind(text_uuid(id))
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn touch_api_key(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")
            .bind(text_uuid(id))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_warning(
        &self,
        transaction_id: Option<Uuid>,
        kind: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO warnings (id, transaction_id, kind, detail, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(text_uuid(Uuid::now_v7()))
        .bind(opt_text_uuid(transaction_id))
        .bind(kind)
        .bind(detail)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_warnings(&self, limit: i64) -> Result<Vec<WarningRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, transaction_id, kind, detail, created_at FROM warnings \
             ORDER BY created_at DESC, id DESC LIMIT ?1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WarningRecord {
                    id: parse_uuid(&row.try_get::<String, _>("id")?)?,
                    transaction_id: parse_opt_uuid(row.try_get("transaction_id")?)?,
                    kind: row.try_get("kind")?,
                    detail: row.try_get("detail")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
