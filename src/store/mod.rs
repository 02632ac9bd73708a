//! The storage port: what the use cases need from a database, in their own words. One SQL
//! implementation ([`sql::SqlStore`]) serves both databases, [`postgres::PostgresStore`]
//! (production, shared by several gateway processes) and [`sqlite::SqliteStore`] (the embedded
//! default); each database's file holds only what really differs (its [`sql::Dialect`]). They
//! share one test suite (`tests/store.rs`).

pub mod deposit;
pub mod events;
mod group_commit;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Transaction, TransactionKind, TransactionStatus, TrxId};
pub use crate::h2h::ExchangeOutcome;
use crate::h2h::MessageType;
use crate::keys::ApiKeyRecord;
pub use deposit::{DepositStore, MonitorState};

pub use events::{
    ClaimedDeliveryRecord, DeliveryQueue, DeliveryRecord, EventStore, WebhookEndpointRecord,
};

/// Failures of the storage port. Cloneable, so that the group commit can give every caller of a
/// failed batch the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A payment for this inquiry already exists that has not failed (the unique constraint
    /// on `inquiry_id` fired). Carries the existing payment's id.
    #[error("inquiry already paid by transaction {0}")]
    AlreadyPaid(Uuid),
    /// The compare-and-set update found the row in another state.
    #[error("transaction changed concurrently")]
    Conflict,
    /// The Idempotency-Key to link is already linked to a transaction (a concurrent takeover
    /// of the same abandoned key won), or gone.
    #[error("the idempotency key is linked to another transaction, or gone")]
    KeyTaken,
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Arc<sqlx::Error>),
    /// The database stores nothing more: its disk is full, or it is read-only (reads may
    /// still work). Carries the reason in words for the client.
    #[error("the database {0}")]
    NotWritable(&'static str, #[source] Arc<sqlx::Error>),
    #[error(transparent)]
    Unexpected(Arc<anyhow::Error>),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let Some(reason) = not_writable(&error) {
            return StoreError::NotWritable(reason, Arc::new(error));
        }
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(Arc::new(error))
            }
            other => anyhow::Error::new(other).into(),
        }
    }
}

impl From<anyhow::Error> for StoreError {
    fn from(error: anyhow::Error) -> Self {
        StoreError::Unexpected(Arc::new(error))
    }
}

/// Why the database refuses writes, if `error` says so: SQLite's `SQLITE_FULL` and
/// `SQLITE_READONLY` (extended codes carry the primary one in their low byte), Postgres's
/// `disk_full` and `read_only_sql_transaction`.
fn not_writable(error: &sqlx::Error) -> Option<&'static str> {
    const FULL: &str = "is full (no space left on its disk)";
    const READ_ONLY: &str = "is read-only";
    let database = error.as_database_error()?;
    let code = database.code()?;
    if database
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return match code.as_ref() {
            "53100" => Some(FULL),
            "25006" => Some(READ_ONLY),
            _ => None,
        };
    }
    match code.parse::<i32>().ok()? & 0xff {
        13 => Some(FULL),
        8 => Some(READ_ONLY),
        _ => None,
    }
}

/// One message sent upstream and what came back. The message is stored without its signature;
/// nothing stored is secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeRecord {
    pub id: Uuid,
    pub transaction_id: Option<Uuid>,
    pub message_type: MessageType,
    pub trx_id: String,
    /// The request as sent, minus `sign` (JSON text).
    pub request: String,
    /// The raw answer body, if any came.
    pub response: Option<String>,
    pub http_status: Option<i32>,
    pub outcome: ExchangeOutcome,
    pub result_code: Option<String>,
    pub latency_ms: i64,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A stored Idempotency-Key and, once the first request finished, its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub client: String,
    pub key: String,
    /// SHA-256 (hex) of the route and body of the first request.
    pub request_hash: String,
    pub transaction_id: Option<Uuid>,
    /// `None` while the first request is still running.
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The answer to [`Store::claim_idempotency_key`].
#[derive(Debug, Clone, PartialEq)]
pub enum KeyClaim {
    /// The key was new and is now held by this request.
    Claimed,
    /// The key existed; here is what it holds.
    Existing(IdempotencyRecord),
}

/// Search filters for transactions (all optional; empty `statuses` means any).
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub client: Option<String>,
    pub kind: Option<TransactionKind>,
    /// Stored statuses to include (the public `pending` is `pending` and `sending`).
    pub statuses: Vec<TransactionStatus>,
    pub product: Option<String>,
    pub bill_number: Option<String>,
    /// `created_at >= from`.
    pub from: Option<DateTime<Utc>>,
    /// `created_at < to`.
    pub to: Option<DateTime<Utc>>,
}

/// One group of the daily report: transactions of one kind, product and stored status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub kind: TransactionKind,
    pub product: String,
    pub status: TransactionStatus,
    pub count: i64,
    pub amount: i64,
    pub admin_fee: i64,
}

/// The storage port (the deposit's part is [`DepositStore`]).
#[async_trait]
pub trait Store: EventStore + DepositStore + Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;

    /// Readiness: the database answers and every migration is applied.
    async fn check_ready(&self) -> Result<(), StoreError>;

    /// The next trxId, committed before it is returned: unique across concurrent callers and
    /// across processes sharing the database; wraps from 99999999 to 00000001. Adapters take
    /// them in blocks, so a process that stops leaves a gap (never a repeat).
    async fn allocate_trx_id(&self) -> Result<TrxId, StoreError>;

    /// Commits a new transaction (normally in status `sending`). A payment whose `inquiry_id`
    /// already has a payment that is not `failed` gives [`StoreError::AlreadyPaid`]; this is
    /// enforced by a unique index, not only by a check.
    async fn insert_transaction(&self, transaction: &Transaction) -> Result<(), StoreError>;

    /// Like [`Store::insert_transaction`], and links the held Idempotency-Key `key` of `client`
    /// to the new transaction in the same database transaction (one commit; both or neither).
    /// A key already linked to a transaction (or gone) gives [`StoreError::KeyTaken`].
    async fn insert_transaction_for_key(
        &self,
        transaction: &Transaction,
        client: &str,
        key: &str,
    ) -> Result<(), StoreError>;

    /// Writes every mutable field of `transaction` (status, amounts, upstream fields, advice
    /// schedule, review reason, timestamps) if the stored row is still in `expected` status.
    /// Otherwise [`StoreError::Conflict`].
    async fn update_transaction(
        &self,
        transaction: &Transaction,
        expected: TransactionStatus,
    ) -> Result<(), StoreError>;

    async fn get_transaction(&self, id: Uuid) -> Result<Option<Transaction>, StoreError>;

    /// Newest first, at most `limit`, optionally only rows older than the `before` id (UUIDv7
    /// ids sort by creation time).
    async fn search_transactions(
        &self,
        filter: &TransactionFilter,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Transaction>, StoreError>;

    /// Counts and sums (amount, admin fee) of the transactions created in `[from, to)`, grouped
    /// by kind, product and status.
    async fn report_rows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ReportRow>, StoreError>;

    /// Records one upstream exchange (committed together with concurrent writes: see
    /// `group_commit`).
    async fn record_exchange(&self, exchange: &ExchangeRecord) -> Result<(), StoreError>;

    /// Commits a finished inquiry (its final status) and its exchange together, in one
    /// database transaction shared with concurrent writes. An inquiry moves no money, so it is
    /// written once, after its answer, instead of as `sending` and again.
    async fn record_inquiry(
        &self,
        inquiry: &Transaction,
        exchange: &ExchangeRecord,
    ) -> Result<(), StoreError>;

    /// The exchanges of one transaction, oldest first.
    async fn list_exchanges(&self, transaction_id: Uuid)
        -> Result<Vec<ExchangeRecord>, StoreError>;

    /// Inserts the key for `client` with the request hash, or returns what it already holds.
    /// Atomic: of concurrent callers with one key, exactly one gets [`KeyClaim::Claimed`].
    async fn claim_idempotency_key(
        &self,
        client: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError>;

    /// Stores the first answer to replay.
    async fn complete_idempotency_key(
        &self,
        client: &str,
        key: &str,
        status: i32,
        body: &str,
    ) -> Result<(), StoreError>;

    /// Forgets a key whose request was rejected before anything was recorded; a key linked to a
    /// transaction (by a concurrent takeover of the same key) is kept.
    async fn release_idempotency_key(&self, client: &str, key: &str) -> Result<(), StoreError>;

    /// Deletes keys created before `cutoff`; returns how many.
    async fn prune_idempotency_keys(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Pending transactions whose `next_advice_at` is due, claimed for this caller: their
    /// `next_advice_at` is moved to `lease_until` in the same statement, so that another
    /// process does not claim them until the lease ends (`FOR UPDATE SKIP LOCKED` on Postgres).
    async fn claim_due_advice(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Transaction>, StoreError>;

    /// Transactions still in `sending` whose `updated_at` is before `cutoff`: their process
    /// died mid-call. Oldest first.
    async fn stale_sending(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Transaction>, StoreError>;

    /// How many transactions are in `status` now (for the metrics gauges; uses the status
    /// index).
    async fn count_by_status(&self, status: TransactionStatus) -> Result<i64, StoreError>;

    /// Stores a new API key (its hash only).
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    /// The key with this lookup part (revoked ones too).
    async fn find_api_key(&self, lookup: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Every key, newest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Marks a key revoked; false if there is no such key.
    async fn revoke_api_key(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Records that a key was used.
    async fn touch_api_key(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// The newest purchase by `client` of `product` for `customer_number` created at or after
    /// `since` that is succeeded, pending (or still `sending`) or in review, and not the one
    /// linked to the Idempotency-Key `key` of `client` (a repeat of the same request is
    /// idempotency's business, not a duplicate): the duplicate purchase guard's earlier purchase
    /// (API.md, "Cashier protections").
    async fn recent_purchase(
        &self,
        client: &str,
        key: &str,
        product: &str,
        customer_number: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;
}

/// The store the application uses.
pub type SharedStore = Arc<dyn Store>;

/// Connects to `database_url` (`postgres://…` or `sqlite://…`), applies migrations, and returns
/// the matching adapter.
pub async fn connect(database_url: &str, max_connections: u32) -> anyhow::Result<SharedStore> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PostgresStore::connect(database_url, max_connections).await?,
        ))
    } else if database_url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::connect(database_url, max_connections).await?,
        ))
    } else {
        anyhow::bail!("unsupported database URL: expected postgres://, postgresql:// or sqlite:")
    }
}
