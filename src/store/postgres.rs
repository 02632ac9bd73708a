//! The Postgres adapter: production storage, shared by several gateway processes.
//!
//! Every method is one autocommitted statement (plus a read-only follow-up where a conflict
//! has to be explained), so no transaction is ever held across an await on the network. The
//! exception is the group committer ([`super::group_commit`]): finished inquiries and exchanges
//! are inserted many at a time, with multi-row statements in one transaction. trxIds come from
//! the sequence in blocks of [`TRX_ID_BLOCK`], handed out from memory.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::encode::IsNull;
use sqlx::error::{BoxDynError, ErrorKind};
use sqlx::migrate::Migrator;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{
    PgArgumentBuffer, PgPoolOptions, PgRow, PgTypeInfo, PgValueFormat, PgValueRef,
};
use sqlx::query_builder::Separated;
use sqlx::{Decode, Encode, PgPool, Postgres, QueryBuilder, Row, Type};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::group_commit::{GroupCommit, KeyAnswer, Write};
use super::{
    ExchangeRecord, IdempotencyRecord, KeyClaim, ReportRow, Store, StoreError, TransactionFilter,
    WarningRecord,
};
use crate::domain::{Transaction, TransactionKind, TransactionStatus, TrxId};
use crate::keys::{ApiKeyRecord, Role};

/// The embedded Postgres migrations.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The partial unique index that enforces "already paid".
const PAID_INQUIRY_INDEX: &str = "transactions_paid_inquiry_unique";

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

/// A `uuid` column value. (sqlx's own `uuid` feature is not enabled in this crate, so the
/// binary wire format — 16 raw bytes — is implemented here.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PgUuid(Uuid);

/// The OID of the built-in `uuid` type (stable across Postgres versions).
const UUID_OID: u32 = 2950;

impl Type<Postgres> for PgUuid {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(UUID_OID))
    }
}

impl Encode<'_, Postgres> for PgUuid {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl Decode<'_, Postgres> for PgUuid {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        let uuid = match value.format() {
            PgValueFormat::Binary => Uuid::from_slice(value.as_bytes()?)?,
            PgValueFormat::Text => value.as_str()?.parse()?,
        };
        Ok(PgUuid(uuid))
    }
}

fn pg_uuid(id: Option<Uuid>) -> Option<PgUuid> {
    id.map(PgUuid)
}

/// The Postgres store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    writer: GroupCommit,
    /// trxIds taken from the sequence and not handed out yet (popped from the end).
    trx_ids: Arc<Mutex<Vec<u32>>>,
}

/// How many trxIds one sequence round trip takes. A process that stops loses the rest of its
/// block: trxIds may skip, never repeat.
pub const TRX_ID_BLOCK: i64 = 32;

/// The most recent succeeded payment's balance (served by `transactions_last_balance_idx`;
/// `tests/query_plans.rs` checks that it is).
pub const LAST_BALANCE_SQL: &str = "SELECT balance_after FROM transactions \
     WHERE status = 'succeeded' AND balance_after IS NOT NULL \
     AND kind IN ('payment', 'purchase') \
     ORDER BY completed_at DESC NULLS LAST, id DESC LIMIT 1";

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
        let writer = GroupCommit::spawn({
            let pool = pool.clone();
            move |writes| flush_writes(pool.clone(), writes)
        });
        let store = Self {
            pool,
            writer,
            trx_ids: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies any migration not applied yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("applying Postgres migrations")
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Sets the trxId counter so that the next allocation returns the number after `last`
    /// (`0` starts again at 00000001). For tests and operators.
    pub async fn set_trx_counter(&self, last: u32) -> Result<(), StoreError> {
        self.trx_ids.lock().await.clear();
        // `is_called = false` with 1 makes the next value 1 (a fresh counter).
        sqlx::query("SELECT setval('trx_id_seq', GREATEST($1, 1), $1 > 0)")
            .bind(i64::from(last))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The payment of `inquiry_id` that is not failed, if any.
    async fn active_payment(&self, inquiry_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        let id: Option<PgUuid> = sqlx::query_scalar(
            "SELECT id FROM transactions \
             WHERE inquiry_id = $1 AND kind = 'payment' AND status <> 'failed' \
             ORDER BY id LIMIT 1",
        )
        .bind(PgUuid(inquiry_id))
        .fetch_optional(&self.pool)
        .await?;
        Ok(id.map(|id| id.0))
    }

    /// Explains a violation of the "already paid" index.
    async fn already_paid(&self, transaction: &Transaction) -> Result<Option<Uuid>, StoreError> {
        match transaction.inquiry_id {
            Some(inquiry_id) => self.active_payment(inquiry_id).await,
            None => Ok(None),
        }
    }
}

impl PostgresStore {
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
                    "UPDATE idempotency_keys SET transaction_id = $3 \
                     WHERE client = $1 AND key = $2 AND transaction_id IS NULL",
                )
                .bind(client)
                .bind(key)
                .bind(PgUuid(t.id))
                .execute(&mut *db)
                .await?;
                if linked.rows_affected() == 0 {
                    // Gone, or linked by a concurrent takeover of the same abandoned key.
                    return Err(StoreError::KeyTaken);
                }
            }
            let mut insert = QueryBuilder::<Postgres>::new(TRANSACTION_INSERT);
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
            db.kind() == ErrorKind::UniqueViolation && db.constraint() == Some(PAID_INQUIRY_INDEX)
        }
        _ => false,
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("stored {what} {value:?} is not valid"))
}

/// Binds one `transactions` row in the order of [`transaction_columns!`].
fn push_transaction(mut row: Separated<'_, Postgres, &'static str>, t: &Transaction) {
    row.push_bind(PgUuid(t.id))
        .push_bind(t.kind.as_str())
        .push_bind(t.status.as_str())
        .push_bind(&t.client)
        .push_bind(&t.request_id)
        .push_bind(&t.product)
        .push_bind(&t.bill_number)
        .push_bind(&t.trx_id)
        .push_bind(&t.retrieval)
        .push_bind(t.amount)
        .push_bind(t.admin_fee)
        .push_bind(&t.payment_code)
        .push_bind(pg_uuid(t.inquiry_id))
        .push_bind(&t.info1)
        .push_bind(&t.info2)
        .push_bind(&t.info3)
        .push_bind(t.sheets)
        .push_bind(t.balance_after)
        .push_bind(&t.result_code)
        .push_bind(&t.result_description)
        .push_bind(&t.error_code)
        .push_bind(t.advice_attempts)
        .push_bind(t.next_advice_at)
        .push_bind(t.not_found_since)
        .push_bind(&t.review_reason)
        .push_bind(t.expires_at)
        .push_bind(t.created_at)
        .push_bind(t.updated_at)
        .push_bind(t.completed_at);
}

/// Binds one `exchanges` row in the order of [`EXCHANGE_INSERT`].
fn push_exchange(mut row: Separated<'_, Postgres, &'static str>, e: &ExchangeRecord) {
    row.push_bind(PgUuid(e.id))
        .push_bind(pg_uuid(e.transaction_id))
        .push_bind(&e.message_type)
        .push_bind(&e.trx_id)
        .push_bind(&e.request)
        .push_bind(&e.response)
        .push_bind(e.http_status)
        .push_bind(&e.outcome)
        .push_bind(&e.result_code)
        .push_bind(e.latency_ms)
        .push_bind(&e.request_id)
        .push_bind(e.created_at);
}

const TRANSACTION_INSERT: &str =
    concat!("INSERT INTO transactions (", transaction_columns!(), ") ");

const EXCHANGE_INSERT: &str = "INSERT INTO exchanges (id, transaction_id, message_type, trx_id, \
     request, response, http_status, outcome, result_code, latency_ms, request_id, created_at) ";

/// Stores many Idempotency-Key answers in one statement.
const KEY_ANSWERS_UPDATE: &str = "UPDATE idempotency_keys AS k \
     SET response_status = v.status, response_body = v.body FROM (";

const KEY_ANSWERS_WHERE: &str =
    ") AS v (client, key, status, body) WHERE k.client = v.client AND k.key = v.key";

/// Commits a batch of the group committer as ONE statement (one round trip, one commit): its
/// transactions, exchanges and Idempotency-Key answers as multi-row data-modifying `WITH`
/// clauses. The statement is atomic; foreign keys are checked at its end, when the transactions
/// its exchanges refer to are in. Batch sizes vary, so it stays out of the prepared-statement
/// cache.
async fn flush_writes(pool: PgPool, writes: Arc<[Write]>) -> Result<(), StoreError> {
    let transactions: Vec<&Transaction> = writes.iter().filter_map(Write::transaction).collect();
    let exchanges: Vec<&ExchangeRecord> = writes.iter().filter_map(Write::exchange).collect();
    let answers: Vec<&KeyAnswer> = writes.iter().filter_map(Write::key_answer).collect();
    let mut query = QueryBuilder::<Postgres>::new("WITH ");
    let mut first = true;
    let mut clause = |query: &mut QueryBuilder<Postgres>, name: &str| {
        if !std::mem::take(&mut first) {
            query.push(", ");
        }
        query.push(name).push(" AS (");
    };
    if !transactions.is_empty() {
        clause(&mut query, "t");
        query.push(TRANSACTION_INSERT);
        query.push_values(transactions, push_transaction);
        query.push(")");
    }
    if !exchanges.is_empty() {
        clause(&mut query, "e");
        query.push(EXCHANGE_INSERT);
        query.push_values(exchanges, push_exchange);
        query.push(")");
    }
    if !answers.is_empty() {
        clause(&mut query, "a");
        query.push(KEY_ANSWERS_UPDATE);
        query.push_values(answers, |mut row, answer| {
            row.push_bind(&answer.client)
                .push_bind(&answer.key)
                .push_bind(answer.status)
                .push_bind(&answer.body);
        });
        query.push(KEY_ANSWERS_WHERE);
        query.push(")");
    }
    query.push(" SELECT 1");
    query.build().persistent(false).execute(&pool).await?;
    Ok(())
}

fn transaction_from_row(row: &PgRow) -> Result<Transaction, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let id: PgUuid = row.try_get("id")?;
    let inquiry_id: Option<PgUuid> = row.try_get("inquiry_id")?;
    Ok(Transaction {
        id: id.0,
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
        inquiry_id: inquiry_id.map(|id| id.0),
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

fn transactions_from_rows(rows: &[PgRow]) -> Result<Vec<Transaction>, StoreError> {
    rows.iter().map(transaction_from_row).collect()
}

fn exchange_from_row(row: &PgRow) -> Result<ExchangeRecord, StoreError> {
    let id: PgUuid = row.try_get("id")?;
    let transaction_id: Option<PgUuid> = row.try_get("transaction_id")?;
    Ok(ExchangeRecord {
        id: id.0,
        transaction_id: transaction_id.map(|id| id.0),
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

fn idempotency_from_row(row: &PgRow) -> Result<IdempotencyRecord, StoreError> {
    let transaction_id: Option<PgUuid> = row.try_get("transaction_id")?;
    Ok(IdempotencyRecord {
        client: row.try_get("client")?,
        key: row.try_get("key")?,
        request_hash: row.try_get("request_hash")?,
        transaction_id: transaction_id.map(|id| id.0),
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

fn api_key_from_row(row: &PgRow) -> Result<ApiKeyRecord, StoreError> {
    let id: PgUuid = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    Ok(ApiKeyRecord {
        id: id.0,
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
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
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
        Ok(())
    }

    async fn allocate_trx_id(&self) -> Result<TrxId, StoreError> {
        // A sequence: unique across connections and processes, no row lock (migration 0004).
        let mut block = self.trx_ids.lock().await;
        if block.is_empty() {
            let values: Vec<i64> =
                sqlx::query_scalar("SELECT nextval('trx_id_seq') FROM generate_series(1, $1)")
                    .bind(TRX_ID_BLOCK)
                    .fetch_all(&self.pool)
                    .await?;
            for value in values.into_iter().rev() {
                let id = u32::try_from(value)
                    .ok()
                    .filter(|v| TrxId::new(*v).is_some())
                    .ok_or_else(|| anyhow::anyhow!("trx_id_seq gave {value}, not a trxId"))?;
                block.push(id);
            }
        }
        let value = block
            .pop()
            .ok_or_else(|| anyhow::anyhow!("trx_id_seq gave no value"))?;
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
             status = $3, request_id = $4, trx_id = $5, retrieval = $6, amount = $7, \
             admin_fee = $8, payment_code = $9, info1 = $10, info2 = $11, info3 = $12, \
             sheets = $13, balance_after = $14, result_code = $15, result_description = $16, \
             error_code = $17, advice_attempts = $18, next_advice_at = $19, \
             not_found_since = $20, review_reason = $21, expires_at = $22, updated_at = $23, \
             completed_at = $24 \
             WHERE id = $1 AND status = $2",
        )
        .bind(PgUuid(t.id))
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
            " FROM transactions WHERE id = $1"
        ))
        .bind(PgUuid(id))
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
        let mut query = QueryBuilder::<Postgres>::new(concat!(
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
            query.push(" AND id < ").push_bind(PgUuid(before));
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
             FROM transactions WHERE created_at >= $1 AND created_at < $2 \
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
             FROM exchanges WHERE transaction_id = $1 ORDER BY created_at, id",
        )
        .bind(PgUuid(transaction_id))
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
                 VALUES ($1, $2, $3, $4) ON CONFLICT (client, key) DO NOTHING",
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
                 FROM idempotency_keys WHERE client = $1 AND key = $2",
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
            "UPDATE idempotency_keys SET transaction_id = $3 WHERE client = $1 AND key = $2",
        )
        .bind(client)
        .bind(key)
        .bind(PgUuid(transaction_id))
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
        sqlx::query("DELETE FROM idempotency_keys WHERE client = $1 AND key = $2")
            .bind(client)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_idempotency_keys(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
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
            "WITH due AS MATERIALIZED (\
             SELECT id FROM transactions \
             WHERE status = 'pending' AND next_advice_at <= $1 \
             ORDER BY next_advice_at, id LIMIT $3 \
             FOR UPDATE SKIP LOCKED) \
             UPDATE transactions SET next_advice_at = $2 \
             WHERE id IN (SELECT id FROM due) RETURNING ",
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
            " FROM transactions WHERE status = 'sending' AND updated_at < $1 \
             ORDER BY updated_at, id LIMIT $2"
        ))
        .bind(cutoff)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        transactions_from_rows(&rows)
    }

    async fn last_known_balance(&self) -> Result<Option<i64>, StoreError> {
        let balance: Option<i64> = sqlx::query_scalar(LAST_BALANCE_SQL)
            .fetch_optional(&self.pool)
            .await?;
        Ok(balance)
    }

    async fn count_by_status(&self, status: TransactionStatus) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, lookup, hash, client, role, created_at, revoked_at, \
             last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(PgUuid(key.id))
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
            " FROM api_keys WHERE lookup = $1"
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
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(PgUuid(id))
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn touch_api_key(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(PgUuid(id))
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
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(PgUuid(Uuid::now_v7()))
        .bind(pg_uuid(transaction_id))
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
             ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WarningRecord {
                    id: row.try_get::<PgUuid, _>("id")?.0,
                    transaction_id: row
                        .try_get::<Option<PgUuid>, _>("transaction_id")?
                        .map(|id| id.0),
                    kind: row.try_get("kind")?,
                    detail: row.try_get("detail")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}
