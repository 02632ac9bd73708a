//! The reconciler: a background worker that resolves payments whose outcome is unknown.
//!
//! Each tick it (1) hands transactions left in `sending` by a process that died to the advice
//! queue (payments) or to a person (purchases), (2) claims due pending payments with a lease so
//! that several gateway processes never advise the same one at once, and sends advice for each,
//! (3) now and then prunes expired Idempotency-Keys, and (4) watches the deposit: every
//! `deposit.check_interval_secs` it takes the balance (the latest `balanceAfter` or reading of
//! that interval, else a balance inquiry, stored as a reading), keeps it for the gauge
//! `gateway_deposit_balance_rupiah`, and decides `deposit.low` once per fall below
//! `deposit.low_balance` ([`assess_deposit`]). The monitor's state lives in the database
//! (`deposit_monitor`): a restart does not alert again, and of several gateway processes on one
//! database only one records the event (a compare-and-set) and the balance is read once per
//! interval, not once per process.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::DepositSettings;
use crate::domain::{TransactionKind, TransactionStatus};
use crate::store::StoreError;
use crate::webhooks::Event;

use super::error::PaymentError;
use super::{Caller, Payments};

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
    /// Whether the deposit monitor checked the balance.
    pub deposit_checked: bool,
}

pub struct Reconciler {
    payments: Payments,
    interval: Duration,
    last_prune: Option<Instant>,
    deposit: DepositSettings,
    /// When the deposit monitor looks next (one interval after start).
    next_deposit_check: Instant,
}

/// The deposit monitor's decision on one balance.
#[derive(Debug, Clone, PartialEq)]
pub struct DepositDecision {
    /// Whether the balance is below the threshold now: the state to keep.
    pub low: bool,
    /// `deposit.low`, when the balance has just fallen below the threshold.
    pub event: Option<Event>,
}

/// Decides on one balance, given whether the last one was low: `deposit.low` once per fall below
/// `threshold`, not again until the balance has been at or above it. A threshold of 0 (or less)
/// is off: never low.
pub fn assess_deposit(
    was_low: bool,
    balance: i64,
    threshold: i64,
    now: DateTime<Utc>,
) -> DepositDecision {
    let low = threshold > 0 && balance < threshold;
    DepositDecision {
        low,
        event: (low && !was_low).then(|| Event::deposit_low(balance, threshold, now)),
    }
}

impl Reconciler {
    pub fn new(payments: Payments) -> Self {
        let interval = Duration::from_millis(payments.settings.reconciler_interval_ms.max(10));
        Self {
            payments,
            interval,
            last_prune: None,
            deposit: DepositSettings::default(),
            next_deposit_check: Instant::now()
                + Duration::from_secs(DepositSettings::default().check_interval_secs),
        }
    }

    /// Watches the deposit with these settings (the first check one interval from now).
    pub fn with_deposit(mut self, deposit: DepositSettings) -> Self {
        self.deposit = deposit;
        self.next_deposit_check = Instant::now() + self.deposit_interval();
        self
    }

    fn deposit_interval(&self) -> Duration {
        Duration::from_secs(self.deposit.check_interval_secs.max(1))
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
        if Instant::now() >= self.next_deposit_check {
            report.deposit_checked = self.check_deposit().await?;
        }
        Ok(report)
    }

    /// One check of the deposit, unless another process sharing the database made one less
    /// than an interval ago (then the next is an interval after that one). Returns whether it
    /// checked.
    pub async fn check_deposit(&mut self) -> Result<bool, PaymentError> {
        let interval = self.deposit_interval();
        self.next_deposit_check = Instant::now() + interval;
        let payments = &self.payments;
        let store = payments.store();
        let state = store.deposit_monitor().await?;
        let now = payments.now();
        let span = TimeDelta::from_std(interval).unwrap_or(TimeDelta::MAX);
        if let Some(at) = state.checked_at.filter(|at| *at + span > now) {
            let wait = (at + span - now).to_std().unwrap_or_default();
            self.next_deposit_check = Instant::now() + wait;
            return Ok(false);
        }
        let balance = match store.latest_balance(now - span).await? {
            Some(seen) => seen.balance,
            None => {
                let caller = Caller {
                    client: "reconciler".into(),
                    reads_all: true,
                    request_id: None,
                };
                payments.balance(&caller).await?.balance
            }
        };
        let decision = assess_deposit(state.low, balance, self.deposit.low_balance, now);
        let stored = store
            .record_deposit_check(
                balance,
                now,
                state.low,
                decision.low,
                decision.event.as_ref(),
            )
            .await?;
        if let (true, Some(event)) = (stored, &decision.event) {
            tracing::warn!(event_id = %event.id, balance, threshold = self.deposit.low_balance,
                "deposit.low: the deposit balance fell below deposit.low_balance");
            payments.events_committed.notify_one();
        }
        Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::EventData;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_764_547_200, 0).unwrap()
    }

    #[test]
    fn deposit_low_is_decided_once_per_fall_below_the_threshold() {
        let threshold = 1_000_000;
        let mut low = false;
        let mut events = Vec::new();
        for balance in [
            2_000_000, 1_000_000, 999_999, 500_000, 400_000, 1_000_000, 1_200_000, 900_000, 800_000,
        ] {
            let decision = assess_deposit(low, balance, threshold, now());
            low = decision.low;
            events.extend(decision.event);
        }
        let balances: Vec<_> = events
            .iter()
            .map(|event| match event.data {
                EventData::DepositLow { balance, threshold } => (balance, threshold),
                _ => panic!("not a deposit event: {event:?}"),
            })
            .collect();
        assert_eq!(
            balances,
            vec![(999_999, threshold), (900_000, threshold)],
            "once on each fall; at the threshold is not below it"
        );
        assert!(low);
    }

    #[test]
    fn a_zero_threshold_is_off_and_a_remembered_fall_does_not_alert_again() {
        let off = assess_deposit(false, 0, 0, now());
        assert_eq!((off.low, off.event), (false, None));
        // A restart reads `low` back from the database: still below, no second event.
        let again = assess_deposit(true, 10, 1_000_000, now());
        assert_eq!((again.low, again.event), (true, None));
    }
}
