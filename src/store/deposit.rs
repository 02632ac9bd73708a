//! The deposit's storage (API.md, "Deposit: reconciliation and monitoring"): readings of the
//! balance, what the reconciliation of a business day reads, and the deposit monitor's state.
//! A port of its own that [`super::Store`] requires, with one set of statements for both
//! databases, like [`super::sql`]'s. Nothing here is written on the payment path: readings come
//! from `GET /v1/balance` and the monitor, which send a balance inquiry anyway.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{Database, Postgres, Row, Sqlite};
use uuid::Uuid;

use super::sql::{Dialect, SqlStore};
use super::StoreError;
use crate::payments::reconciliation::{BalanceReading, DayRecord, SucceededTransaction};
use crate::webhooks::Event;

/// The deposit monitor's state, shared by every gateway process on the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorState {
    /// Whether the balance last seen was below `deposit.low_balance` (`deposit.low` was
    /// decided for this fall).
    pub low: bool,
    /// The balance last seen, and when.
    pub balance: Option<i64>,
    pub checked_at: Option<DateTime<Utc>>,
}

/// What the deposit's reconciliation and monitoring need from a database.
#[async_trait]
pub trait DepositStore {
    /// Stores one reading of the balance (one autocommitted insert).
    async fn record_balance_reading(&self, reading: &BalanceReading) -> Result<(), StoreError>;

    /// What the reconciliation of the business day `[start, end)` reads, with `margin` either
    /// side for its cut by position on the chain (`reconciliation::business_day`): the
    /// succeeded payments and purchases created in the wider window (with or without
    /// `balanceAfter`), the readings taken in it, and the numbers of the day's payments and
    /// purchases that are pending (or still sending) and in review.
    async fn reconciliation_window(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        margin: TimeDelta,
    ) -> Result<DayRecord, StoreError>;

    /// The latest balance seen since `since`: a reading, or the `balanceAfter` of a succeeded
    /// payment or purchase created since then (the latest answered).
    async fn latest_balance(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Option<BalanceReading>, StoreError>;

    async fn deposit_monitor(&self) -> Result<MonitorState, StoreError>;

    /// Stores a check of the balance and `low`, if the state is still `was_low` (a
    /// compare-and-set: of concurrent monitors, one moves it), and with it, in the same
    /// database transaction, `event` (`deposit.low`) and its deliveries. Returns whether it was
    /// stored.
    async fn record_deposit_check(
        &self,
        balance: i64,
        at: DateTime<Utc>,
        was_low: bool,
        low: bool,
        event: Option<&Event>,
    ) -> Result<bool, StoreError>;
}

/// The succeeded payments and purchases created in `[$1, $2)`, as the chain needs them.
pub const WINDOW_TRANSACTIONS: &str =
    "SELECT id, CAST(COALESCE(amount, 0) + COALESCE(admin_fee, 0) AS BIGINT) AS total, \
     balance_after, created_at, COALESCE(completed_at, updated_at) AS answered_at \
     FROM transactions WHERE created_at >= $1 AND created_at < $2 \
     AND status = 'succeeded' AND kind IN ('payment', 'purchase')";

/// The payments and purchases created in `[$1, $2)` whose outcome is not final.
pub const DAY_OPEN_COUNTS: &str =
    "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'review' THEN 0 ELSE 1 END), 0) AS BIGINT) \
     AS pending, \
     CAST(COALESCE(SUM(CASE WHEN status = 'review' THEN 1 ELSE 0 END), 0) AS BIGINT) AS review \
     FROM transactions WHERE created_at >= $1 AND created_at < $2 \
     AND status IN ('sending', 'pending', 'review') AND kind IN ('payment', 'purchase')";

/// The readings taken in `[$1, $2)`.
pub const WINDOW_READINGS: &str =
    "SELECT balance, read_at FROM balance_readings WHERE read_at >= $1 AND read_at < $2";

/// The latest `balanceAfter` of the succeeded payments and purchases created since `$1`.
pub const LATEST_BALANCE_AFTER: &str =
    "SELECT balance_after AS balance, COALESCE(completed_at, updated_at) AS read_at \
     FROM transactions WHERE created_at >= $1 \
     AND status = 'succeeded' AND kind IN ('payment', 'purchase') \
     AND balance_after IS NOT NULL \
     ORDER BY read_at DESC, id DESC LIMIT 1";

/// The latest reading since `$1`.
pub const LATEST_READING: &str = "SELECT balance, read_at FROM balance_readings \
     WHERE read_at >= $1 ORDER BY read_at DESC LIMIT 1";

/// The deposit statements, for one database.
macro_rules! deposit_statements {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// A row with `balance` and `read_at`.
            fn balance_reading(
                row: &<$db as Database>::Row,
            ) -> Result<BalanceReading, sqlx::Error> {
                Ok(BalanceReading {
                    balance: row.try_get("balance")?,
                    at: row.try_get("read_at")?,
                })
            }
        }

        #[async_trait]
        impl DepositStore for SqlStore<$db> {
            async fn record_balance_reading(
                &self,
                reading: &BalanceReading,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO balance_readings (id, balance, read_at) VALUES ($1, $2, $3)",
                )
                .bind(<$db as Dialect>::UuidColumn::from(Uuid::now_v7()))
                .bind(reading.balance)
                .bind(reading.at)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn reconciliation_window(
                &self,
                start: DateTime<Utc>,
                end: DateTime<Utc>,
                margin: TimeDelta,
            ) -> Result<DayRecord, StoreError> {
                let (from, to) = (start - margin, end + margin);
                let rows = sqlx::query(WINDOW_TRANSACTIONS)
                    .bind(from)
                    .bind(to)
                    .fetch_all(self.pool())
                    .await?;
                let transactions = rows
                    .iter()
                    .map(|row| {
                        let id: <$db as Dialect>::UuidColumn = row.try_get("id")?;
                        Ok(SucceededTransaction {
                            id: id.into(),
                            total: row.try_get("total")?,
                            balance_after: row.try_get("balance_after")?,
                            sent_at: row.try_get("created_at")?,
                            answered_at: row.try_get("answered_at")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                let readings = sqlx::query(WINDOW_READINGS)
                    .bind(from)
                    .bind(to)
                    .fetch_all(self.pool())
                    .await?
                    .iter()
                    .map(Self::balance_reading)
                    .collect::<Result<Vec<_>, sqlx::Error>>()?;
                let counts = sqlx::query(DAY_OPEN_COUNTS)
                    .bind(start)
                    .bind(end)
                    .fetch_one(self.pool())
                    .await?;
                let count = |column: &str| -> Result<u64, sqlx::Error> {
                    Ok(counts.try_get::<i64, _>(column)?.max(0) as u64)
                };
                Ok(DayRecord {
                    transactions,
                    readings,
                    pending_count: count("pending")?,
                    review_count: count("review")?,
                })
            }

            async fn latest_balance(
                &self,
                since: DateTime<Utc>,
            ) -> Result<Option<BalanceReading>, StoreError> {
                // The newer of the last balance a payment or purchase answered with and the
                // last reading (a reading wins a tie).
                let mut latest: Option<BalanceReading> = None;
                for statement in [LATEST_BALANCE_AFTER, LATEST_READING] {
                    let row = sqlx::query(statement)
                        .bind(since)
                        .fetch_optional(self.pool())
                        .await?;
                    if let Some(row) = row {
                        let reading = Self::balance_reading(&row)?;
                        if latest.as_ref().is_none_or(|l| reading.at >= l.at) {
                            latest = Some(reading);
                        }
                    }
                }
                Ok(latest)
            }

            async fn deposit_monitor(&self) -> Result<MonitorState, StoreError> {
                let row = sqlx::query(
                    "SELECT low, balance, checked_at FROM deposit_monitor WHERE id = 1",
                )
                .fetch_optional(self.pool())
                .await?;
                let Some(row) = row else {
                    return Ok(MonitorState::default());
                };
                Ok(MonitorState {
                    low: row.try_get("low")?,
                    balance: row.try_get("balance")?,
                    checked_at: row.try_get("checked_at")?,
                })
            }

            async fn record_deposit_check(
                &self,
                balance: i64,
                at: DateTime<Utc>,
                was_low: bool,
                low: bool,
                event: Option<&Event>,
            ) -> Result<bool, StoreError> {
                // The state and its event commit together: a fall is announced exactly once.
                let mut db = self.pool().begin().await?;
                let done = sqlx::query(
                    "UPDATE deposit_monitor SET low = $1, balance = $2, checked_at = $3 \
                     WHERE id = 1 AND low = $4",
                )
                .bind(low)
                .bind(balance)
                .bind(at)
                .bind(was_low)
                .execute(&mut *db)
                .await?;
                let stored = done.rows_affected() == 1;
                if let (true, Some(event)) = (stored, event) {
                    Self::insert_event_on(&mut db, event, None, None).await?;
                }
                db.commit().await?;
                Ok(stored)
            }
        }
    };
}

deposit_statements!(Postgres);
deposit_statements!(Sqlite);
