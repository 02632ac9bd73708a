//! The reconciler: a background worker that resolves payments whose outcome is unknown.
//!
//! Each tick it (1) hands transactions left in `sending` by a process that died to the advice
//! queue (payments) or to a person (purchases), (2) claims due pending payments with a lease so
//! that several gateway processes never advise the same one at once, and sends advice for each,
//! and (3) now and then prunes expired Idempotency-Keys.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::domain::{TransactionKind, TransactionStatus};
use crate::store::StoreError;

use super::error::PaymentError;
use super::Payments;

/// How many due payments one tick claims.
const BATCH: i64 = 16;
/// How long events (the feed, and finished deliveries) are kept (API.md: at least 30 days).
pub const EVENT_RETENTION_DAYS: i64 = 30;
/// How often expired Idempotency-Keys and events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What one tick did (for tests and logs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub recovered: usize,
    pub advised: usize,
}

pub struct Reconciler {
    payments: Payments,
    interval: Duration,
    last_prune: Option<Instant>,
}

impl Reconciler {
    pub fn new(payments: Payments) -> Self {
        let interval = Duration::from_millis(payments.settings.reconciler_interval_ms.max(10));
        Self {
            payments,
            interval,
            last_prune: None,
        }
    }

    /// Runs until `stop` fires. Errors are logged and retried next tick.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.tick().await {
                Ok(report) if report != TickReport::default() => {
                    tracing::info!(?report, "reconciler tick")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "reconciler tick failed"),
            }
            tokio::select! {
                _ = actix_rt::time::sleep(self.interval) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One pass over the work that is due.
    pub async fn tick(&mut self) -> Result<TickReport, PaymentError> {
        let mut report = TickReport {
            recovered: self.recover_interrupted().await?,
            ..TickReport::default()
        };
        let payments = &self.payments;
        let now = payments.now();
        let lease = chrono::Duration::from_std(payments.upstream.timeout() * 2).unwrap_or_default()
            + chrono::Duration::seconds(10);
        let due = payments
            .store
            .claim_due_advice(now, now + lease, BATCH)
            .await?;
        for transaction in due {
            payments.advise(transaction, None).await?;
            report.advised += 1;
        }
        if self.last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            self.last_prune = Some(Instant::now());
            let retention =
                chrono::Duration::days(payments.settings.idempotency_retention_days as i64);
            let pruned = payments
                .store
                .prune_idempotency_keys(Utc::now() - retention)
                .await?;
            if pruned > 0 {
                tracing::info!(pruned, "expired idempotency keys pruned");
            }
            let events = payments
                .store
                .prune_events(Utc::now() - chrono::Duration::days(EVENT_RETENTION_DAYS))
                .await?;
            if events > 0 {
                tracing::info!(events, "events past their retention pruned");
            }
        }
        Ok(report)
    }

    /// Transactions still `sending` well past the upstream timeout belong to a process that
    /// stopped mid-call: their outcome is unknown.
    async fn recover_interrupted(&self) -> Result<usize, PaymentError> {
        let payments = &self.payments;
        let now = payments.now();
        let grace = chrono::Duration::from_std(payments.upstream.timeout()).unwrap_or_default()
            + chrono::Duration::seconds(5);
        let stale = payments.store.stale_sending(now - grace, BATCH).await?;
        let mut recovered = 0;
        for mut transaction in stale {
            transaction.updated_at = now;
            match transaction.kind {
                TransactionKind::Payment => {
                    transaction.status = TransactionStatus::Pending;
                    transaction.next_advice_at = Some(now);
                }
                TransactionKind::Purchase => {
                    transaction.status = TransactionStatus::Review;
                    transaction.review_reason = Some(
                        "the gateway stopped while this purchase was in flight; its outcome is \
                         unknown and a purchase cannot be advised"
                            .into(),
                    );
                }
                TransactionKind::Inquiry => {
                    transaction.status = TransactionStatus::Failed;
                    transaction.completed_at = Some(now);
                    transaction.error_code = Some("upstream_unavailable".into());
                }
            }
            match payments
                .commit_state(&transaction, TransactionStatus::Sending)
                .await
            {
                Ok(()) => {
                    tracing::warn!(trx_id = %transaction.trx_id, status = transaction.status.as_str(), "recovered an interrupted transaction");
                    recovered += 1;
                }
                Err(StoreError::Conflict) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(recovered)
    }
}
