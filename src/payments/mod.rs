//! The use cases: inquire, pay, purchase, advise, read the balance; and the reconciler that
//! resolves payments whose outcome is unknown. Every money row is committed before its message
//! leaves, and no database transaction is held across an upstream call.

mod advice;
mod balance;
pub mod duplicate_guard;
pub mod error;
pub mod events;
mod inquiry;
pub mod outcome;
mod payment;
pub mod reconciler;
pub mod reconciliation;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::PaymentSettings;
use crate::domain::{Transaction, TransactionStatus, TrxId};
use crate::h2h::breaker::Permit;
use crate::h2h::client::Exchange;
use crate::h2h::{CircuitBreaker, Draft, MessageType, Response, UpstreamClient};
use crate::store::{ExchangeOutcome, ExchangeRecord, SharedStore, StoreError};

pub use balance::Balance;
pub use error::{PaymentError, UpstreamFailure};
pub use payment::{PaymentRequest, PurchaseRequest};

/// Who is asking: the API client's name, and whether it may read other clients' rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub client: String,
    pub reads_all: bool,
    pub request_id: Option<String>,
}

impl Caller {
    /// Whether this caller may see `transaction` (others' rows are "not found").
    pub fn may_see(&self, transaction: &Transaction) -> bool {
        self.reads_all || transaction.client == self.client
    }
}

/// The use cases, bound to one upstream client (one per worker thread: awc is thread-local).
pub struct Payments {
    store: SharedStore,
    upstream: UpstreamClient,
    clock: Arc<dyn Clock>,
    settings: PaymentSettings,
    /// Signalled after a commit that queued events, to wake the webhook worker.
    events_committed: Arc<tokio::sync::Notify>,
    /// The process's circuit breaker toward the upstream, shared by every worker.
    breaker: Arc<CircuitBreaker>,
    /// The process's locks of the duplicate purchase guard, shared by every worker.
    purchase_locks: Arc<duplicate_guard::PurchaseLocks>,
}

impl Payments {
    pub fn new(
        store: SharedStore,
        upstream: UpstreamClient,
        clock: Arc<dyn Clock>,
        settings: PaymentSettings,
        breaker: Arc<CircuitBreaker>,
        purchase_locks: Arc<duplicate_guard::PurchaseLocks>,
    ) -> Self {
        Self {
            store,
            upstream,
            clock,
            settings,
            breaker,
            purchase_locks,
            events_committed: Arc::default(),
        }
    }

    /// Signals `events_committed` after every commit that recorded an event.
    pub fn with_event_signal(mut self, events_committed: Arc<tokio::sync::Notify>) -> Self {
        self.events_committed = events_committed;
        self
    }

    /// Commits `transaction`'s new state if it is still in `expected` (the store's
    /// compare-and-set), with the event that announces it, in the same database transaction.
    async fn commit_state(
        &self,
        transaction: &Transaction,
        expected: TransactionStatus,
    ) -> Result<(), StoreError> {
        let event = events::event_for(transaction, expected, self.now());
        self.store
            .update_transaction_with_event(transaction, expected, event.as_ref())
            .await?;
        if event.is_some() {
            self.events_committed.notify_one();
        }
        Ok(())
    }

    /// Leave from the circuit breaker to send a message, asked before anything is recorded.
    fn admit(&self) -> Result<Permit, PaymentError> {
        self.breaker.admit().map_err(PaymentError::CircuitOpen)
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Now, to the microsecond: what both databases keep, so that a transaction (and the
    /// event announcing it) shows the times `GET /v1/transactions/{id}` shows.
    fn now(&self) -> DateTime<Utc> {
        chrono::SubsecRound::trunc_subsecs(self.clock.now(), 6)
    }

    /// A transaction the caller may see, or "not found".
    pub async fn transaction(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Transaction, PaymentError> {
        match self.store.get_transaction(id).await? {
            Some(transaction) if caller.may_see(&transaction) => Ok(transaction),
            _ => Err(PaymentError::NotFound("transaction")),
        }
    }

    /// Signs and sends one message, and records the exchange whatever came of it. `permit`:
    /// the circuit breaker's leave, told what came of it (advice sends without one).
    async fn send_and_record(
        &self,
        draft: Draft,
        transaction_id: Option<Uuid>,
        request_id: Option<&str>,
        permit: Option<Permit>,
    ) -> Result<Exchange, PaymentError> {
        let (exchange, record) = self.send(draft, transaction_id, request_id, permit).await;
        self.store.record_exchange(&record).await?;
        Ok(exchange)
    }

    /// Signs and sends one message; returns what came of it and the record to store.
    async fn send(
        &self,
        draft: Draft,
        transaction_id: Option<Uuid>,
        request_id: Option<&str>,
        permit: Option<Permit>,
    ) -> (Exchange, ExchangeRecord) {
        let request = self.upstream.credentials().build_request(draft, self.now());
        let message_type = request.message_type;
        let exchange = self.upstream.send(request).await;
        if let Some(permit) = permit {
            permit.record(&exchange.outcome);
        }
        // Money messages and failed exchanges at info; an answered lookup (inquiry, balance) at
        // debug, so that a routine inquiry logs one line (its request's), not two. Every
        // exchange is stored in the database anyway.
        macro_rules! log_exchange {
            ($level:ident) => {
                tracing::$level!(
                    message_type = %message_type,
                    trx_id = %exchange.request.trx_id,
                    outcome = exchange.outcome.kind(),
                    result_code = exchange.outcome.response().map(|r| r.result_code.as_str()),
                    latency_ms = exchange.latency.as_millis() as u64,
                    "upstream exchange"
                )
            };
        }
        let lookup = matches!(
            message_type,
            MessageType::Inquiry | MessageType::BalanceInquiry
        );
        if lookup && exchange.outcome.response().is_some() {
            log_exchange!(debug);
        } else {
            log_exchange!(info);
        }
        crate::metrics::observe_upstream(
            message_type.as_str(),
            exchange.outcome.kind(),
            exchange.outcome.response().map(|r| r.result_code.as_str()),
            exchange.latency,
        );
        let record = ExchangeRecord {
            id: Uuid::now_v7(),
            transaction_id,
            message_type,
            trx_id: exchange.request.trx_id.clone(),
            request: exchange.request.without_signature().to_string(),
            response: exchange
                .raw_response
                .as_deref()
                .map(|raw| crate::h2h::message::answer_for_record(raw, &exchange.request.sign)),
            http_status: exchange.http_status.map(i32::from),
            outcome: ExchangeOutcome::from(&exchange.outcome),
            result_code: exchange
                .outcome
                .response()
                .map(|response| response.result_code.clone()),
            latency_ms: exchange.latency.as_millis() as i64,
            request_id: request_id.map(str::to_string),
            created_at: self.now(),
        };
        (exchange, record)
    }

    async fn next_trx_id(&self) -> Result<TrxId, PaymentError> {
        Ok(self.store.allocate_trx_id().await?)
    }

    /// The delay before advice attempt number `attempts + 1`.
    fn advice_delay(&self, attempts: i32) -> Duration {
        let schedule = &self.settings.advice_schedule_secs;
        let index = (attempts.max(0) as usize).min(schedule.len().saturating_sub(1));
        Duration::from_secs(schedule.get(index).copied().unwrap_or(300))
    }
}

/// Copies what an answer says about the bill into the transaction. Amounts the answer does not
/// carry keep their earlier value (a payment starts with its inquiry's amounts).
fn absorb_response(transaction: &mut Transaction, response: &Response) {
    fn non_empty(s: &str) -> Option<String> {
        (!s.is_empty()).then(|| s.to_string())
    }
    // A decline echoes zero amounts: a payment keeps the amounts it tried to pay.
    let success = crate::h2h::ResultCode::parse(&response.result_code).is_success();
    for (field, value) in [
        (&mut transaction.amount, response.nominal_amount()),
        (&mut transaction.admin_fee, response.admin_fee()),
    ] {
        if let Some(value) = value.filter(|v| success || (field.is_none() && *v > 0)) {
            *field = Some(value);
        }
    }
    if let Some(code) = non_empty(&response.payment_code) {
        transaction.payment_code.get_or_insert(code);
    }
    for (field, value) in [
        (&mut transaction.info1, &response.info1),
        (&mut transaction.info2, &response.info2),
        (&mut transaction.info3, &response.info3),
    ] {
        if let Some(value) = non_empty(value) {
            *field = Some(value);
        }
    }
    if let Some(sheets) = response.sheets() {
        transaction.sheets = Some(sheets);
    }
    if let Some(balance) = response.balance() {
        transaction.balance_after = Some(balance);
    }
    transaction.result_code = Some(response.result_code.clone());
    transaction.result_description = Some(response.result_desc.clone());
}

/// The message type a transaction is first sent as.
fn message_type_of(transaction: &Transaction) -> MessageType {
    match transaction.kind {
        crate::domain::TransactionKind::Inquiry => MessageType::Inquiry,
        crate::domain::TransactionKind::Payment => MessageType::Payment,
        crate::domain::TransactionKind::Purchase => MessageType::Purchase,
    }
}
