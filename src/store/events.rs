//! The storage of events and webhooks (API.md, "Notifications"): the transactional outbox (an
//! event and its deliveries committed with the state they announce), the feed, the endpoints
//! with their encrypted secrets, and the deliveries a worker claims with a lease.
//!
//! Like [`super::sql`], the statements are written once in [`event_statements!`] and
//! instantiated for Postgres and SQLite; what differs (how due deliveries are claimed) is the
//! [`EventDialect`].

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{Database, Postgres, QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::sql::{stored, Dialect, SqlStore};
use super::StoreError;
use crate::domain::{Transaction, TransactionStatus};
use crate::webhooks::{
    DeliveryStatus, DeliveryUpdate, Event, EventFilter, EventId, EventType, StoredSecret,
};

/// A webhook endpoint as stored: its secrets only encrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpointRecord {
    pub id: Uuid,
    pub url: String,
    /// `None`: every client's transactions, and `deposit.*`.
    pub client: Option<String>,
    pub events: EventFilter,
    pub secret: StoredSecret,
    /// The secret before the last rotation, signing too until `previous_secret_until`.
    pub previous_secret: Option<StoredSecret>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// One delivery of one event to one endpoint, as the deliveries log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A due delivery claimed by this caller until `lease_until`, with what sending it needs.
#[derive(Debug, Clone)]
pub struct ClaimedDeliveryRecord {
    pub id: Uuid,
    /// The lease: only the holder records the attempt ([`EventStore::record_delivery_attempt`]).
    pub lease_until: DateTime<Utc>,
    pub attempts: i32,
    pub event: Event,
    pub url: String,
    pub secret: StoredSecret,
    pub previous_secret: Option<(StoredSecret, DateTime<Utc>)>,
}

/// The delivery queue, for the metrics gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryQueue {
    /// Deliveries still `pending`.
    pub pending: i64,
    /// When the oldest pending delivery was created.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// The events and webhooks part of the storage port.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// [`super::Store::update_transaction`] (the same compare-and-set and errors), and with
    /// `event`, the event and one pending delivery per live endpoint that wants it, all in one
    /// database transaction: the state and its announcement commit together or not at all.
    async fn update_transaction_with_event(
        &self,
        transaction: &Transaction,
        expected: TransactionStatus,
        event: Option<&Event>,
    ) -> Result<(), StoreError>;

    /// Commits an event that belongs to no transaction (`deposit.low`) with its deliveries.
    async fn insert_event(&self, event: &Event) -> Result<(), StoreError>;

    /// The feed: events with an id after `after`, oldest first, at most `limit`; only
    /// `client`'s transaction events when given, only `kind` when given, only events created
    /// before `created_before`.
    async fn list_events(
        &self,
        client: Option<&str>,
        kind: Option<EventType>,
        after: Option<&EventId>,
        created_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError>;

    /// Deletes the events created before `cutoff` and their finished deliveries (an event with
    /// a delivery still pending is kept); returns how many events.
    async fn prune_events(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn insert_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpointRecord,
    ) -> Result<(), StoreError>;

    /// The endpoints not deleted, oldest first.
    async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpointRecord>, StoreError>;

    /// The endpoint, unless it is unknown or deleted.
    async fn get_webhook_endpoint(
        &self,
        id: Uuid,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError>;

    /// Deletes (softly) the endpoint and fails its pending deliveries: nothing more is sent to
    /// it. False when it is unknown or already deleted.
    async fn delete_webhook_endpoint(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Makes `secret` the endpoint's secret; the one before keeps signing until
    /// `previous_until`. False when the endpoint is unknown or deleted.
    async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        secret: &StoredSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Pending deliveries of live endpoints that are due at `now`, claimed until `lease_until`:
    /// their next attempt moves to the lease's end in the same statement, so another process
    /// does not claim them before it (`FOR UPDATE SKIP LOCKED` on Postgres), and a process that
    /// dies holding them leaves them due again when it ends.
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDeliveryRecord>, StoreError>;

    /// Records the outcome of an attempt, only if the delivery is still held with the lease
    /// ending at `lease_until` (else false: the lease ran out, or it was retried or its
    /// endpoint deleted meanwhile).
    async fn record_delivery_attempt(
        &self,
        id: Uuid,
        lease_until: DateTime<Utc>,
        update: &DeliveryUpdate,
    ) -> Result<bool, StoreError>;

    /// An endpoint's deliveries, newest first, at most `limit`, optionally only in `status` and
    /// older than the `before` id.
    async fn list_deliveries(
        &self,
        endpoint_id: Uuid,
        status: Option<DeliveryStatus>,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Makes the delivery due at `now` (also a delivered or failed one), unless its endpoint is
    /// deleted; the delivery as it now is, `None` when there is no such delivery to retry.
    async fn retry_delivery(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<DeliveryRecord>, StoreError>;

    /// How many deliveries are pending, and since when the oldest.
    async fn delivery_queue(&self) -> Result<DeliveryQueue, StoreError>;
}

/// What differs between the databases for events: how due deliveries are claimed.
pub trait EventDialect: Dialect {
    /// Claims due deliveries (`$1` now, `$2` the lease's end, `$3` the limit): sets their
    /// `next_attempt_at` and `lease_until` to `$2`, returning their `id`s.
    const CLAIM_DUE_DELIVERIES: &'static str;
}

macro_rules! endpoint_columns {
    () => {
        "id, url, client, events, secret_encrypted, previous_secret_encrypted, \
         previous_secret_until, created_at, deleted_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "d.id, d.endpoint_id, d.event_id, e.type, d.status, d.attempts, d.next_attempt_at, \
         d.last_attempt_at, d.last_status_code, d.last_error, d.created_at"
    };
}

fn corrupt(what: &str, value: &str) -> StoreError {
    anyhow::anyhow!("stored {what} {value:?} is not valid").into()
}

/// The lowest possible event id: the feed's start.
const BEFORE_EVERY_EVENT: &str = "evt_";

/// The statements of [`EventStore`] for one database.
macro_rules! event_statements {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// Inserts `event` and its deliveries on `db` (inside the caller's transaction).
            pub(super) async fn insert_event_on(
                db: &mut <$db as Database>::Connection,
                event: &Event,
                client: Option<&str>,
                transaction_id: Option<Uuid>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO events (id, type, client, transaction_id, data, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(event.id.as_str())
                .bind(event.kind.as_str())
                .bind(client)
                .bind(transaction_id.map(stored::<$db>))
                .bind(event.data_json())
                .bind(event.created_at)
                .execute(&mut *db)
                .await?;
                let endpoints = sqlx::query(
                    "SELECT id, client, events FROM webhook_endpoints WHERE deleted_at IS NULL",
                )
                .fetch_all(&mut *db)
                .await?;
                let mut wanting = Vec::new();
                for row in &endpoints {
                    let text: String = row.try_get("events")?;
                    let filter =
                        EventFilter::from_json(&text).map_err(|_| corrupt("events", &text))?;
                    let endpoint_client: Option<String> = row.try_get("client")?;
                    if filter.wants(endpoint_client.as_deref(), event.kind, client) {
                        wanting.push(Self::uuid_at(row, "id")?);
                    }
                }
                if wanting.is_empty() {
                    return Ok(());
                }
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO webhook_deliveries \
                     (id, endpoint_id, event_id, status, attempts, next_attempt_at, created_at) ",
                );
                insert.push_values(wanting, |mut row, endpoint_id| {
                    row.push_bind(stored::<$db>(Uuid::now_v7()))
                        .push_bind(stored::<$db>(endpoint_id))
                        .push_bind(event.id.as_str())
                        .push_bind(DeliveryStatus::Pending.as_str())
                        .push_bind(0_i32)
                        .push_bind(event.created_at)
                        .push_bind(event.created_at);
                });
                insert.build().persistent(false).execute(&mut *db).await?;
                Ok(())
            }

            fn endpoint_from_row(
                row: &<$db as Database>::Row,
            ) -> Result<WebhookEndpointRecord, StoreError> {
                let events: String = row.try_get("events")?;
                Ok(WebhookEndpointRecord {
                    id: Self::uuid_at(row, "id")?,
                    url: row.try_get("url")?,
                    client: row.try_get("client")?,
                    events: EventFilter::from_json(&events)
                        .map_err(|_| corrupt("events", &events))?,
                    secret: StoredSecret::from_stored(row.try_get("secret_encrypted")?),
                    previous_secret: row
                        .try_get::<Option<String>, _>("previous_secret_encrypted")?
                        .map(StoredSecret::from_stored),
                    previous_secret_until: row.try_get("previous_secret_until")?,
                    created_at: row.try_get("created_at")?,
                    deleted_at: row.try_get("deleted_at")?,
                })
            }

            fn delivery_from_row(
                row: &<$db as Database>::Row,
            ) -> Result<DeliveryRecord, StoreError> {
                let event_id: String = row.try_get("event_id")?;
                let kind: String = row.try_get("type")?;
                let status: String = row.try_get("status")?;
                Ok(DeliveryRecord {
                    id: Self::uuid_at(row, "id")?,
                    endpoint_id: Self::uuid_at(row, "endpoint_id")?,
                    event_id: EventId::parse(&event_id)
                        .ok_or_else(|| corrupt("event id", &event_id))?,
                    event_type: EventType::parse(&kind).map_err(|_| corrupt("type", &kind))?,
                    status: DeliveryStatus::parse(&status)
                        .ok_or_else(|| corrupt("status", &status))?,
                    attempts: row.try_get("attempts")?,
                    next_attempt_at: row.try_get("next_attempt_at")?,
                    last_attempt_at: row.try_get("last_attempt_at")?,
                    last_status_code: row.try_get("last_status_code")?,
                    last_error: row.try_get("last_error")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            fn event_from_row(row: &<$db as Database>::Row) -> Result<Event, StoreError> {
                let id: String = row.try_get("event_id")?;
                let kind: String = row.try_get("type")?;
                let data: String = row.try_get("data")?;
                Event::from_stored(&id, &kind, row.try_get("event_created_at")?, &data)
                    .ok_or_else(|| corrupt("event", &id))
            }

            async fn get_delivery(&self, id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    delivery_columns!(),
                    " FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
                     WHERE d.id = $1"
                ))
                .bind(stored::<$db>(id))
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(Self::delivery_from_row).transpose()
            }
        }

        #[async_trait]
        impl EventStore for SqlStore<$db> {
            async fn update_transaction_with_event(
                &self,
                t: &Transaction,
                expected: TransactionStatus,
                event: Option<&Event>,
            ) -> Result<(), StoreError> {
                let Some(event) = event else {
                    return super::Store::update_transaction(self, t, expected).await;
                };
                // The same compare-and-set as `update_transaction`, first (it writes, so the
                // transaction never upgrades a read lock), then the event and its deliveries.
                let mut db = self.pool().begin().await?;
                let result = Self::update_statement(t, expected)
                    .build()
                    .execute(&mut *db)
                    .await;
                if !matches!(&result, Ok(done) if done.rows_affected() > 0) {
                    // Explaining a conflict reads outside this transaction.
                    db.rollback().await?;
                    return self.updated(t, result).await;
                }
                Self::insert_event_on(&mut db, event, Some(&t.client), Some(t.id)).await?;
                db.commit().await?;
                Ok(())
            }

            async fn insert_event(&self, event: &Event) -> Result<(), StoreError> {
                let mut db = self.pool().begin().await?;
                Self::insert_event_on(&mut db, event, None, None).await?;
                db.commit().await?;
                Ok(())
            }

            async fn list_events(
                &self,
                client: Option<&str>,
                kind: Option<EventType>,
                after: Option<&EventId>,
                created_before: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<Event>, StoreError> {
                let mut query = QueryBuilder::<$db>::new(
                    "SELECT id AS event_id, type, created_at AS event_created_at, data \
                     FROM events WHERE id > ",
                );
                query.push_bind(after.map_or(BEFORE_EVERY_EVENT, EventId::as_str));
                query.push(" AND created_at < ").push_bind(created_before);
                if let Some(client) = client {
                    query.push(" AND client = ").push_bind(client);
                }
                if let Some(kind) = kind {
                    query.push(" AND type = ").push_bind(kind.as_str());
                }
                query.push(" ORDER BY id LIMIT ").push_bind(limit.max(0));
                let rows = query.build().fetch_all(self.pool()).await?;
                rows.iter().map(Self::event_from_row).collect()
            }

            async fn prune_events(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
                let mut db = self.pool().begin().await?;
                sqlx::query(
                    "DELETE FROM webhook_deliveries WHERE status <> 'pending' \
                     AND event_id IN (SELECT id FROM events WHERE created_at < $1)",
                )
                .bind(cutoff)
                .execute(&mut *db)
                .await?;
                let pruned = sqlx::query(
                    "DELETE FROM events WHERE created_at < $1 AND NOT EXISTS \
                     (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = events.id)",
                )
                .bind(cutoff)
                .execute(&mut *db)
                .await?;
                db.commit().await?;
                Ok(pruned.rows_affected())
            }

            async fn insert_webhook_endpoint(
                &self,
                e: &WebhookEndpointRecord,
            ) -> Result<(), StoreError> {
                sqlx::query(concat!(
                    "INSERT INTO webhook_endpoints (",
                    endpoint_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(stored::<$db>(e.id))
                .bind(&e.url)
                .bind(&e.client)
                .bind(e.events.to_json())
                .bind(e.secret.as_str())
                .bind(e.previous_secret.as_ref().map(StoredSecret::as_str))
                .bind(e.previous_secret_until)
                .bind(e.created_at)
                .bind(e.deleted_at)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn list_webhook_endpoints(
                &self,
            ) -> Result<Vec<WebhookEndpointRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    endpoint_columns!(),
                    " FROM webhook_endpoints WHERE deleted_at IS NULL ORDER BY created_at, id"
                ))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::endpoint_from_row).collect()
            }

            async fn get_webhook_endpoint(
                &self,
                id: Uuid,
            ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    endpoint_columns!(),
                    " FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL"
                ))
                .bind(stored::<$db>(id))
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(Self::endpoint_from_row).transpose()
            }

            async fn delete_webhook_endpoint(
                &self,
                id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let mut db = self.pool().begin().await?;
                let deleted = sqlx::query(
                    "UPDATE webhook_endpoints SET deleted_at = $2 \
                     WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(stored::<$db>(id))
                .bind(now)
                .execute(&mut *db)
                .await?;
                if deleted.rows_affected() == 0 {
                    db.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, \
                     lease_until = NULL, last_error = 'endpoint deleted' \
                     WHERE endpoint_id = $1 AND status = 'pending'",
                )
                .bind(stored::<$db>(id))
                .execute(&mut *db)
                .await?;
                db.commit().await?;
                Ok(true)
            }

            async fn rotate_webhook_secret(
                &self,
                id: Uuid,
                secret: &StoredSecret,
                previous_until: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                // Both databases evaluate every right-hand side on the row as it was.
                let rotated = sqlx::query(
                    "UPDATE webhook_endpoints SET previous_secret_encrypted = secret_encrypted, \
                     previous_secret_until = $3, secret_encrypted = $2 \
                     WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(stored::<$db>(id))
                .bind(secret.as_str())
                .bind(previous_until)
                .execute(self.pool())
                .await?;
                Ok(rotated.rows_affected() > 0)
            }

            async fn claim_due_deliveries(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<ClaimedDeliveryRecord>, StoreError> {
                // What both databases keep, so that the lease compares equal when recorded.
                let lease_until = lease_until.trunc_subsecs(6);
                let ids: Vec<<$db as Dialect>::UuidColumn> =
                    sqlx::query_scalar(<$db as EventDialect>::CLAIM_DUE_DELIVERIES)
                        .bind(now)
                        .bind(lease_until)
                        .bind(limit.max(0))
                        .fetch_all(self.pool())
                        .await?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = QueryBuilder::<$db>::new(
                    "SELECT d.id, d.attempts, d.lease_until, e.id AS event_id, e.type, \
                     e.created_at AS event_created_at, e.data, w.url, w.secret_encrypted, \
                     w.previous_secret_encrypted, w.previous_secret_until \
                     FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
                     JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id IN (",
                );
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(id);
                }
                query.push(") ORDER BY d.id");
                let rows = query.build().persistent(false).fetch_all(self.pool()).await?;
                rows.iter()
                    .map(|row| {
                        let previous: Option<String> = row.try_get("previous_secret_encrypted")?;
                        let previous_until: Option<DateTime<Utc>> =
                            row.try_get("previous_secret_until")?;
                        Ok(ClaimedDeliveryRecord {
                            id: Self::uuid_at(row, "id")?,
                            lease_until: row
                                .try_get::<Option<DateTime<Utc>>, _>("lease_until")?
                                .unwrap_or(lease_until),
                            attempts: row.try_get("attempts")?,
                            event: Self::event_from_row(row)?,
                            url: row.try_get("url")?,
                            secret: StoredSecret::from_stored(row.try_get("secret_encrypted")?),
                            previous_secret: previous
                                .zip(previous_until)
                                .map(|(s, until)| (StoredSecret::from_stored(s), until)),
                        })
                    })
                    .collect()
            }

            async fn record_delivery_attempt(
                &self,
                id: Uuid,
                lease_until: DateTime<Utc>,
                u: &DeliveryUpdate,
            ) -> Result<bool, StoreError> {
                let recorded = sqlx::query(
                    "UPDATE webhook_deliveries SET status = $3, attempts = $4, \
                     next_attempt_at = $5, lease_until = NULL, last_attempt_at = $6, \
                     last_status_code = $7, last_error = $8 \
                     WHERE id = $1 AND lease_until = $2 AND status = 'pending'",
                )
                .bind(stored::<$db>(id))
                .bind(lease_until)
                .bind(u.status.as_str())
                .bind(i32::try_from(u.attempts).unwrap_or(i32::MAX))
                .bind(u.next_attempt_at)
                .bind(u.last_attempt_at)
                .bind(u.last_status_code.map(i32::from))
                .bind(&u.last_error)
                .execute(self.pool())
                .await?;
                Ok(recorded.rows_affected() > 0)
            }

            async fn list_deliveries(
                &self,
                endpoint_id: Uuid,
                status: Option<DeliveryStatus>,
                before: Option<Uuid>,
                limit: i64,
            ) -> Result<Vec<DeliveryRecord>, StoreError> {
                let mut query = QueryBuilder::<$db>::new(concat!(
                    "SELECT ",
                    delivery_columns!(),
                    " FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
                     WHERE d.endpoint_id = "
                ));
                query.push_bind(stored::<$db>(endpoint_id));
                if let Some(status) = status {
                    query.push(" AND d.status = ").push_bind(status.as_str());
                }
                if let Some(before) = before {
                    query.push(" AND d.id < ").push_bind(stored::<$db>(before));
                }
                query
                    .push(" ORDER BY d.id DESC LIMIT ")
                    .push_bind(limit.max(0));
                let rows = query.build().fetch_all(self.pool()).await?;
                rows.iter().map(Self::delivery_from_row).collect()
            }

            async fn retry_delivery(
                &self,
                id: Uuid,
                now: DateTime<Utc>,
            ) -> Result<Option<DeliveryRecord>, StoreError> {
                let retried = sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $2, \
                     lease_until = NULL WHERE id = $1 AND endpoint_id IN \
                     (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)",
                )
                .bind(stored::<$db>(id))
                .bind(now)
                .execute(self.pool())
                .await?;
                if retried.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_delivery(id).await
            }

            async fn delivery_queue(&self) -> Result<DeliveryQueue, StoreError> {
                let pending: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'",
                )
                .fetch_one(self.pool())
                .await?;
                let oldest_pending_at: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT created_at FROM webhook_deliveries WHERE status = 'pending' \
                     ORDER BY created_at LIMIT 1",
                )
                .fetch_optional(self.pool())
                .await?;
                Ok(DeliveryQueue {
                    pending,
                    oldest_pending_at,
                })
            }
        }
    };
}

event_statements!(Postgres);
event_statements!(Sqlite);
