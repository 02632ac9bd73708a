//! The one SQL implementation of the store, for both databases.
//!
//! Every statement is written once, with `$n` parameters (sqlx-sqlite binds them by number
//! too), in [`shared_statements!`], which is instantiated for [`Postgres`] and for [`Sqlite`]:
//! sqlx code generic over `Database` needs a higher-ranked bound for every type it binds or
//! reads and for every executor, so the shared text is compiled once per database instead.
//! What really differs lives in each database's [`Dialect`] (`postgres.rs`, `sqlite.rs`): where
//! trxIds come from, how a group-commit batch is committed, how due advice is claimed, how the
//! "already paid" index names itself, the readiness write probe, and how a uuid is stored. Each
//! table's columns are named once ([`columns!`]).
//!
//! A method is one autocommitted statement (plus a read-only follow-up where a conflict has to
//! be explained), except where writes must commit together: `insert_transaction_for_key` (the
//! key link and the row, in one database transaction) and the group commit's batches. No
//! database transaction is ever held across an await on the network.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::Migrator;
use sqlx::{Database, Pool, Postgres, QueryBuilder, Row, Sqlite};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::group_commit::{BatchPart, GroupCommit, KeyAnswer, Write};
use super::{
    ExchangeOutcome, ExchangeRecord, IdempotencyRecord, KeyClaim, ReportRow, Store, StoreError,
    TransactionFilter,
};
use crate::domain::{Transaction, TransactionKind, TransactionStatus, TrxId};
use crate::h2h::MessageType;
use crate::keys::{ApiKeyRecord, Role};

/// What differs between the two databases; everything else is [`shared_statements!`].
pub trait Dialect: Database {
    /// `postgres` or `sqlite`.
    const BACKEND: &'static str;
    /// Claims due advice (`$1` now, `$2` the lease's end, `$3` the limit), returning the claimed
    /// rows' [`transaction_columns!`].
    const CLAIM_DUE_ADVICE: &'static str;
    /// A uuid as sqlx's codecs bind and read it: Postgres's `uuid`, SQLite's hyphenated TEXT.
    type UuidColumn: From<Uuid> + Into<Uuid>;
    /// What readiness's write probe remembers between probes.
    type Probe: Debug + Send + Sync + 'static;

    fn migrator() -> &'static Migrator;

    /// Whether a unique violation is the "already paid" partial index's.
    fn names_paid_index(error: &dyn DatabaseError) -> bool;

    /// Takes the next block of trxIds (committed before they are handed out), in the order to
    /// hand them out.
    fn take_trx_ids(pool: &Pool<Self>)
        -> impl Future<Output = Result<Vec<u32>, StoreError>> + Send;

    /// Sets the trxId counter so that the next block starts after `last` (`0`: at 00000001).
    fn set_trx_counter(
        pool: &Pool<Self>,
        last: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Commits one batch of the group committer, all or nothing.
    fn flush(
        pool: Pool<Self>,
        writes: Arc<[Write]>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static;

    /// Readiness beyond "answers, and every migration is applied": that a write would commit.
    fn probe_writes(
        pool: &Pool<Self>,
        probe: &Self::Probe,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The store: one pool, its group committer and its block of trxIds.
#[derive(Debug)]
pub struct SqlStore<D: Dialect> {
    pool: Pool<D>,
    writer: GroupCommit,
    trx_ids: Mutex<TrxIdBlocks<D>>,
    probe: D::Probe,
}

/// How many trxIds one round trip takes. A process that stops loses the rest of its block and
/// the next one it took ahead: trxIds may skip, never repeat.
pub const TRX_ID_BLOCK: i64 = 128;

/// The trxIds taken from the database and not handed out yet, and the next block, taken in the
/// background once half of this one is used: no request waits for a block's durable commit
/// unless a burst empties both.
struct TrxIdBlocks<D: Dialect> {
    /// Popped from the end.
    ready: Vec<u32>,
    next: Option<tokio::task::JoinHandle<Result<Vec<u32>, StoreError>>>,
    _database: std::marker::PhantomData<D>,
}

impl<D: Dialect> Default for TrxIdBlocks<D> {
    fn default() -> Self {
        Self {
            ready: Vec::new(),
            next: None,
            _database: std::marker::PhantomData,
        }
    }
}

impl<D: Dialect> Debug for TrxIdBlocks<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrxIdBlocks")
            .field("ready", &self.ready.len())
            .field("next", &self.next.is_some())
            .finish()
    }
}

/// How many times an insert that hit the "already paid" index is retried when the blocking
/// payment turned out to have failed in the meantime.
const PAID_RETRIES: usize = 3;

/// The columns of a table, each named once, with what every statement derives from them: the
/// column list of SQL text (`names`), the binds of a row (`bind`) and the row reader (`read`),
/// in one order. A column holds the record's field of the same name, stored as is unless it
/// says how: `uuid`, `opt_uuid`, or `name(Type)` (an enum by its `as_str`, read with
/// `Type::parse`). Columns come in bracketed groups; `first` applies an operation to the first
/// group only (the mutable columns of `transactions`, all that an update writes).
macro_rules! columns {
    (first $op:ident $args:tt [$($group:tt)*] $($rest:tt)*) => {
        $crate::store::sql::columns!($op $args [$($group)*])
    };
    (names ()
        [$first:ident $(: $fc:ident $(($ft:ty))?)? $(, $col:ident $(: $c:ident $(($t:ty))?)?)*]
        $([$($more:ident $(: $mc:ident $(($mt:ty))?)?),*])*
    ) => {
        concat!(
            stringify!($first)
            $(, ", ", stringify!($col))*
            $($(, ", ", stringify!($more))*)*
        )
    };
    (bind ($row:ident, $value:ident, $db:ty)
        $([$($col:ident $(: $codec:ident $(($ty:ty))?)?),*])*
    ) => {
        $($(
            $row.push_bind($crate::store::sql::columns!(@bind $db, $value.$col $(, $codec)?));
        )*)*
    };
    (read ($row:ident, $record:ident)
        $([$($col:ident $(: $codec:ident $(($ty:ty))?)?),*])*
    ) => {
        $record {
            $($($col: $crate::store::sql::columns!(@read $row, $col $(, $codec $(($ty))?)?),)*)*
        }
    };
    (@bind $db:ty, $field:expr) => { &$field };
    (@bind $db:ty, $field:expr, uuid) => { stored::<$db>($field) };
    (@bind $db:ty, $field:expr, opt_uuid) => { opt_stored::<$db>($field) };
    (@bind $db:ty, $field:expr, name) => { $field.as_str() };
    (@read $row:ident, $col:ident) => { $row.try_get(stringify!($col))? };
    (@read $row:ident, $col:ident, uuid) => { Self::uuid_at($row, stringify!($col))? };
    (@read $row:ident, $col:ident, opt_uuid) => { Self::opt_uuid_at($row, stringify!($col))? };
    (@read $row:ident, $col:ident, name($ty:ty)) => {
        Self::parsed_at($row, stringify!($col), <$ty>::parse)?
    };
}

/// `transactions`: the mutable columns ([`Store::update_transaction`] writes them), then the
/// ones set once.
macro_rules! transaction_table {
    ($($op:tt)+) => {
        $crate::store::sql::columns!($($op)+
            [status: name(TransactionStatus), request_id, trx_id, retrieval, amount, admin_fee,
             payment_code, info1, info2, info3, sheets, balance_after, result_code,
             result_description, error_code, advice_attempts, next_advice_at, not_found_since,
             review_reason, expires_at, updated_at, completed_at]
            [id: uuid, kind: name(TransactionKind), client, product, bill_number,
             inquiry_id: opt_uuid, created_at])
    };
}

/// Every column of `transactions`, for SQL text.
macro_rules! transaction_columns {
    () => {
        $crate::store::sql::transaction_table!(names())
    };
}
pub(crate) use {columns, transaction_columns, transaction_table};

macro_rules! exchange_table {
    ($($op:tt)+) => {
        columns!($($op)+
            [id: uuid, transaction_id: opt_uuid, message_type: name(MessageType), trx_id, request,
             response, http_status, outcome: name(ExchangeOutcome), result_code, latency_ms,
             request_id, created_at])
    };
}

macro_rules! api_key_table {
    ($($op:tt)+) => {
        columns!($($op)+
            [id: uuid, lookup, hash, client, role: name(Role), created_at, revoked_at, last_used_at])
    };
}

macro_rules! idempotency_table {
    ($($op:tt)+) => {
        columns!($($op)+
            [client, key, request_hash, transaction_id: opt_uuid, response_status, response_body,
             created_at])
    };
}

fn is_paid_violation<D: Dialect>(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.kind() == ErrorKind::UniqueViolation && D::names_paid_index(db.as_ref())
        }
        _ => false,
    }
}

/// A uuid as `D` stores it, to bind.
pub(super) fn stored<D: Dialect>(uuid: Uuid) -> D::UuidColumn {
    uuid.into()
}

fn opt_stored<D: Dialect>(uuid: Option<Uuid>) -> Option<D::UuidColumn> {
    uuid.map(Into::into)
}

fn corrupt(what: &str, value: &str) -> StoreError {
    anyhow::anyhow!("stored {what} {value:?} is not valid").into()
}

impl<D: Dialect> SqlStore<D> {
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }

    /// Sets the trxId counter so that the next allocation returns the number after `last`
    /// (`0` starts again at 00000001). For tests and operators.
    pub async fn set_trx_counter(&self, last: u32) -> Result<(), StoreError> {
        let mut blocks = self.trx_ids.lock().await;
        blocks.ready.clear();
        if let Some(next) = blocks.next.take() {
            // Its block, if it took one, is from the old counter: dropped.
            let _ = next.await;
        }
        D::set_trx_counter(&self.pool, last).await
    }

    async fn next_trx_id(&self) -> Result<TrxId, StoreError> {
        let mut blocks = self.trx_ids.lock().await;
        if blocks.ready.is_empty() {
            let block = match blocks.next.take() {
                Some(next) => match next.await {
                    Ok(Ok(block)) => block,
                    // Taking it ahead failed (the database was away): try again now.
                    _ => D::take_trx_ids(&self.pool).await?,
                },
                None => D::take_trx_ids(&self.pool).await?,
            };
            blocks.ready.extend(block.into_iter().rev());
        }
        if blocks.next.is_none() && blocks.ready.len() as i64 <= TRX_ID_BLOCK / 2 {
            let pool = self.pool.clone();
            blocks.next = Some(tokio::spawn(async move { D::take_trx_ids(&pool).await }));
        }
        let value = blocks
            .ready
            .pop()
            .ok_or_else(|| anyhow::anyhow!("the trxId block is empty"))?;
        TrxId::new(value).ok_or_else(|| anyhow::anyhow!("{value} is not a trxId").into())
    }
}

/// The shared statements, their bindings and row readers, for one database.
macro_rules! shared_statements {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// Wraps a connected pool: starts its group committer and applies any migration not
            /// applied yet.
            pub(super) async fn open(
                pool: Pool<$db>,
                probe: <$db as Dialect>::Probe,
            ) -> anyhow::Result<Self> {
                let writer = GroupCommit::spawn({
                    let pool = pool.clone();
                    move |writes| <$db as Dialect>::flush(pool.clone(), writes)
                });
                // Serialised across processes by sqlx's lock on Postgres.
                <$db as Dialect>::migrator()
                    .run(&pool)
                    .await
                    .with_context(|| format!("applying {} migrations", <$db>::NAME))?;
                Ok(Self {
                    pool,
                    writer,
                    trx_ids: Mutex::default(),
                    probe,
                })
            }

            /// Appends the statement of one part of a group-commit batch.
            pub(super) fn push_batch_part(
                query: &mut QueryBuilder<$db>,
                writes: &[Write],
                part: BatchPart,
            ) {
                let writes = writes.iter();
                match part {
                    BatchPart::Transactions => {
                        Self::insert_transactions(query, writes.filter_map(Write::transaction))
                    }
                    BatchPart::Exchanges => {
                        Self::insert_exchanges(query, writes.filter_map(Write::exchange))
                    }
                    BatchPart::KeyAnswers => {
                        Self::store_key_answers(query, writes.filter_map(Write::key_answer))
                    }
                }
            }

            /// Appends `INSERT INTO transactions … VALUES …` for `rows`.
            fn insert_transactions<'t>(
                query: &mut QueryBuilder<$db>,
                rows: impl IntoIterator<Item = &'t Transaction>,
            ) {
                query.push(concat!(
                    "INSERT INTO transactions (",
                    transaction_columns!(),
                    ") "
                ));
                query.push_values(rows, |mut row, t| {
                    transaction_table!(bind (row, t, $db));
                });
            }

            /// The compare-and-set of [`Store::update_transaction`]: one row-value assignment
            /// of every mutable field of `t`, only from the `expected` status.
            pub(super) fn update_statement(
                t: &Transaction,
                expected: TransactionStatus,
            ) -> QueryBuilder<$db> {
                let mut update = QueryBuilder::new(concat!(
                    "UPDATE transactions SET (",
                    transaction_table!(first names ()),
                    ") = ("
                ));
                let mut fields = update.separated(", ");
                transaction_table!(first bind (fields, t, $db));
                update.push(") WHERE id = ").push_bind(stored::<$db>(t.id));
                update.push(" AND status = ").push_bind(expected.as_str());
                update
            }

            /// What the result of [`Self::update_statement`] means: no row updated is a
            /// conflict, and the "already paid" index (moving a failed payment out of `failed`
            /// while another payment holds the inquiry) is explained.
            pub(super) async fn updated(
                &self,
                t: &Transaction,
                result: Result<<$db as Database>::QueryResult, sqlx::Error>,
            ) -> Result<(), StoreError> {
                match result {
                    Ok(done) if done.rows_affected() == 0 => Err(StoreError::Conflict),
                    Ok(_) => Ok(()),
                    Err(error) if is_paid_violation::<$db>(&error) => {
                        match self.already_paid(t).await? {
                            Some(existing) => Err(StoreError::AlreadyPaid(existing)),
                            None => Err(StoreError::Conflict),
                        }
                    }
                    Err(error) => Err(error.into()),
                }
            }

            /// Appends `INSERT INTO exchanges … VALUES …` for `rows`.
            fn insert_exchanges<'e>(
                query: &mut QueryBuilder<$db>,
                rows: impl IntoIterator<Item = &'e ExchangeRecord>,
            ) {
                query.push(concat!(
                    "INSERT INTO exchanges (",
                    exchange_table!(names ()),
                    ") "
                ));
                query.push_values(rows, |mut row, e| {
                    exchange_table!(bind (row, e, $db));
                });
            }

            /// Appends the update that stores `answers` on their Idempotency-Keys.
            fn store_key_answers<'a>(
                query: &mut QueryBuilder<$db>,
                answers: impl IntoIterator<Item = &'a KeyAnswer>,
            ) {
                // Both databases name the columns of a `VALUES` list `column1`, `column2`, ….
                query.push(
                    "UPDATE idempotency_keys \
                     SET response_status = v.column3, response_body = v.column4 FROM (",
                );
                query.push_values(answers, |mut row, answer| {
                    row.push_bind(&answer.client)
                        .push_bind(&answer.key)
                        .push_bind(answer.status)
                        .push_bind(&answer.body);
                });
                query.push(
                    ") AS v WHERE idempotency_keys.client = v.column1 \
                     AND idempotency_keys.key = v.column2",
                );
            }

            /// Inserts `t`, and if `key` (client, Idempotency-Key) is given, links that key to
            /// it in the same database transaction: both or neither. The "already paid" index
            /// is explained as [`StoreError::AlreadyPaid`].
            async fn insert_linked(
                &self,
                t: &Transaction,
                key: Option<(&str, &str)>,
            ) -> Result<(), StoreError> {
                for _ in 0..PAID_RETRIES {
                    // The first statement writes, so the transaction never upgrades a read lock.
                    let mut db = self.pool.begin().await?;
                    if let Some((client, key)) = key {
                        let linked = sqlx::query(
                            "UPDATE idempotency_keys SET transaction_id = $3 \
                             WHERE client = $1 AND key = $2 AND transaction_id IS NULL",
                        )
                        .bind(client)
                        .bind(key)
                        .bind(stored::<$db>(t.id))
                        .execute(&mut *db)
                        .await?;
                        if linked.rows_affected() == 0 {
                            // Gone, or linked by a concurrent takeover of the same abandoned key.
                            return Err(StoreError::KeyTaken);
                        }
                    }
                    let mut insert = QueryBuilder::new("");
                    Self::insert_transactions(&mut insert, [t]);
                    match insert.build().execute(&mut *db).await {
                        Ok(_) => {
                            db.commit().await?;
                            return Ok(());
                        }
                        Err(error) if is_paid_violation::<$db>(&error) => {
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

            /// Explains a violation of the "already paid" index: the payment of the inquiry
            /// that is not failed, if any.
            async fn already_paid(
                &self,
                t: &Transaction,
            ) -> Result<Option<Uuid>, StoreError> {
                let Some(inquiry_id) = t.inquiry_id else {
                    return Ok(None);
                };
                let id: Option<<$db as Dialect>::UuidColumn> = sqlx::query_scalar(
                    "SELECT id FROM transactions \
                     WHERE inquiry_id = $1 AND kind = 'payment' AND status <> 'failed' \
                     ORDER BY id LIMIT 1",
                )
                .bind(stored::<$db>(inquiry_id))
                .fetch_optional(&self.pool)
                .await?;
                Ok(id.map(Into::into))
            }

            pub(super) fn uuid_at(row: &<$db as Database>::Row, column: &str) -> Result<Uuid, StoreError> {
                Ok(row
                    .try_get::<<$db as Dialect>::UuidColumn, _>(column)?
                    .into())
            }

            fn opt_uuid_at(
                row: &<$db as Database>::Row,
                column: &str,
            ) -> Result<Option<Uuid>, StoreError> {
                let id: Option<<$db as Dialect>::UuidColumn> = row.try_get(column)?;
                Ok(id.map(Into::into))
            }

            /// A text column holding one of an enum's names.
            fn parsed_at<T>(
                row: &<$db as Database>::Row,
                column: &str,
                parse: fn(&str) -> Option<T>,
            ) -> Result<T, StoreError> {
                let text: String = row.try_get(column)?;
                parse(&text).ok_or_else(|| corrupt(column, &text))
            }

            fn transaction_from_row(
                row: &<$db as Database>::Row,
            ) -> Result<Transaction, StoreError> {
                Ok(transaction_table!(read (row, Transaction)))
            }

            fn exchange_from_row(
                row: &<$db as Database>::Row,
            ) -> Result<ExchangeRecord, StoreError> {
                Ok(exchange_table!(read (row, ExchangeRecord)))
            }

            fn api_key_from_row(row: &<$db as Database>::Row) -> Result<ApiKeyRecord, StoreError> {
                Ok(api_key_table!(read (row, ApiKeyRecord)))
            }
        }

        #[async_trait]
        impl Store for SqlStore<$db> {
            fn backend(&self) -> &'static str {
                <$db as Dialect>::BACKEND
            }

            async fn check_ready(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                let applied: Vec<i64> =
                    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                        .fetch_all(&self.pool)
                        .await?;
                if let Some(missing) = <$db as Dialect>::migrator()
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
                <$db as Dialect>::probe_writes(&self.pool, &self.probe).await
            }

            async fn allocate_trx_id(&self) -> Result<TrxId, StoreError> {
                self.next_trx_id().await
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
                let result = Self::update_statement(t, expected)
                    .build()
                    .execute(&self.pool)
                    .await;
                self.updated(t, result).await
            }

            async fn get_transaction(&self, id: Uuid) -> Result<Option<Transaction>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    transaction_columns!(),
                    " FROM transactions WHERE id = $1"
                ))
                .bind(stored::<$db>(id))
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::transaction_from_row).transpose()
            }

            async fn search_transactions(
                &self,
                filter: &TransactionFilter,
                before: Option<Uuid>,
                limit: i64,
            ) -> Result<Vec<Transaction>, StoreError> {
                let mut query = QueryBuilder::new(concat!(
                    "SELECT ",
                    transaction_columns!(),
                    " FROM transactions WHERE TRUE"
                ));
                let text_filters = [
                    ("client", filter.client.as_deref()),
                    ("kind", filter.kind.map(TransactionKind::as_str)),
                    ("product", filter.product.as_deref()),
                    ("bill_number", filter.bill_number.as_deref()),
                ];
                for (column, value) in text_filters {
                    if let Some(value) = value {
                        query
                            .push(format_args!(" AND {column} = "))
                            .push_bind(value);
                    }
                }
                if !filter.statuses.is_empty() {
                    query.push(" AND status IN (");
                    let mut list = query.separated(", ");
                    for status in &filter.statuses {
                        list.push_bind(status.as_str());
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
                    query.push(" AND id < ").push_bind(stored::<$db>(before));
                }
                query
                    .push(" ORDER BY id DESC LIMIT ")
                    .push_bind(limit.max(0));
                let rows = query.build().fetch_all(&self.pool).await?;
                rows.iter().map(Self::transaction_from_row).collect()
            }

            async fn report_rows(
                &self,
                from: DateTime<Utc>,
                to: DateTime<Utc>,
            ) -> Result<Vec<ReportRow>, StoreError> {
                let rows = sqlx::query(
                    // An inquiry moves no money: its amounts are not summed (API.md's report
                    // counts inquiries only).
                    "SELECT kind, product, status, COUNT(*) AS count, \
                     CAST(COALESCE(SUM(CASE WHEN kind = 'inquiry' THEN 0 ELSE amount END), 0) \
                     AS BIGINT) AS amount, \
                     CAST(COALESCE(SUM(CASE WHEN kind = 'inquiry' THEN 0 ELSE admin_fee END), 0) \
                     AS BIGINT) AS admin_fee \
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
                            kind: Self::parsed_at(row, "kind", TransactionKind::parse)?,
                            product: row.try_get("product")?,
                            status: Self::parsed_at(row, "status", TransactionStatus::parse)?,
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
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    exchange_table!(names ()),
                    " FROM exchanges WHERE transaction_id = $1 ORDER BY created_at, id"
                ))
                .bind(stored::<$db>(transaction_id))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::exchange_from_row).collect()
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
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        idempotency_table!(names ()),
                        " FROM idempotency_keys WHERE client = $1 AND key = $2"
                    ))
                    .bind(client)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some(row) = row.as_ref() {
                        return Ok(KeyClaim::Existing(idempotency_table!(read (
                            row,
                            IdempotencyRecord
                        ))));
                    }
                }
                Err(anyhow::anyhow!("idempotency key {key:?} keeps changing; try again").into())
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

            async fn release_idempotency_key(
                &self,
                client: &str,
                key: &str,
            ) -> Result<(), StoreError> {
                // A key linked to a transaction holds a request that recorded something (a
                // concurrent takeover of the same abandoned key): never released.
                sqlx::query(
                    "DELETE FROM idempotency_keys \
                     WHERE client = $1 AND key = $2 AND transaction_id IS NULL",
                )
                    .bind(client)
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn prune_idempotency_keys(
                &self,
                cutoff: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
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
                let rows = sqlx::query(<$db as Dialect>::CLAIM_DUE_ADVICE)
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await?;
                let mut claimed = rows
                    .iter()
                    .map(Self::transaction_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
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
                rows.iter().map(Self::transaction_from_row).collect()
            }

            async fn count_by_status(&self, status: TransactionStatus) -> Result<i64, StoreError> {
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE status = $1")
                        .bind(status.as_str())
                        .fetch_one(&self.pool)
                        .await?;
                Ok(count)
            }

            async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
                let mut insert = QueryBuilder::new(concat!(
                    "INSERT INTO api_keys (",
                    api_key_table!(names ()),
                    ") "
                ));
                insert.push_values([key], |mut row, key| {
                    api_key_table!(bind (row, key, $db));
                });
                insert.build().execute(&self.pool).await?;
                Ok(())
            }

            async fn find_api_key(&self, lookup: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    api_key_table!(names ()),
                    " FROM api_keys WHERE lookup = $1"
                ))
                .bind(lookup)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::api_key_from_row).transpose()
            }

            async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    api_key_table!(names ()),
                    " FROM api_keys ORDER BY created_at DESC, id DESC"
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::api_key_from_row).collect()
            }

            async fn revoke_api_key(
                &self,
                id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                // A second revocation keeps the first instant.
                let result = sqlx::query(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                )
                .bind(stored::<$db>(id))
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn touch_api_key(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(stored::<$db>(id))
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn recent_purchase(
                &self,
                client: &str,
                key: &str,
                product: &str,
                customer_number: &str,
                since: DateTime<Utc>,
            ) -> Result<Option<Uuid>, StoreError> {
                // `kind = 'purchase'` is written out so that the partial index of migration 0007
                // applies.
                let id: Option<<$db as Dialect>::UuidColumn> = sqlx::query_scalar(
                    "SELECT id FROM transactions \
                     WHERE kind = 'purchase' AND bill_number = $1 AND created_at >= $2 \
                     AND client = $3 AND product = $4 \
                     AND status IN ('succeeded', 'pending', 'sending', 'review') \
                     AND NOT EXISTS (SELECT 1 FROM idempotency_keys AS k \
                         WHERE k.client = $3 AND k.key = $5 AND k.transaction_id = transactions.id) \
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(customer_number)
                .bind(since)
                .bind(client)
                .bind(product)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(id.map(Into::into))
            }
        }
    };
}

shared_statements!(Postgres);
shared_statements!(Sqlite);
