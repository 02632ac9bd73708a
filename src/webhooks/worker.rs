//! The delivery worker: claims due deliveries from the store with a lease, sends each attempt as
//! its own task (at most `webhooks.concurrency` at once, so that a slow receiver holds up
//! nobody else, and never a payment), and records what came of it. Woken at once when this
//! process commits an event; otherwise it polls, for events other processes committed and for
//! retries coming due.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use super::delivery::{attempt_delivery, ClaimedDelivery, DeliveryStatus};
use super::encryption::EncryptionKey;
use super::rotation::open_live_secrets;
use super::schedule::RetrySchedule;
use super::sender::WebhookSender;
use crate::clock::Clock;
use crate::store::{ClaimedDeliveryRecord, SharedStore};

/// How often the worker looks for due deliveries when nothing woke it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a claim holds a delivery beyond the attempt's timeout (recording the outcome).
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// What the worker runs with.
pub struct DeliveryWorker {
    pub store: SharedStore,
    pub key: Arc<EncryptionKey>,
    pub sender: WebhookSender,
    pub schedule: RetrySchedule,
    pub clock: Arc<dyn Clock>,
    /// Attempts in flight at most (at least 1).
    pub concurrency: usize,
    /// Signalled after a commit that queued deliveries.
    pub wake: Arc<Notify>,
}

impl DeliveryWorker {
    /// Runs until `stop` fires. Must run on an actix runtime (the sender is thread-local).
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let worker = Rc::new(self);
        loop {
            // Wait for a free slot, then claim as many deliveries as there are free slots.
            let first = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_closed) => return,
                },
                _ = stop.changed() => return,
            };
            let free = slots.available_permits() + 1;
            let claimed = worker.claim(free).await;
            let full = claimed.len() == free;
            let mut first = Some(first);
            for delivery in claimed {
                let slot = match first.take() {
                    Some(slot) => slot,
                    // Only this loop takes slots: `free` of them are there.
                    None => match slots.clone().try_acquire_owned() {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                };
                let worker = worker.clone();
                actix_rt::spawn(async move {
                    worker.deliver(delivery).await;
                    drop(slot);
                });
            }
            drop(first);
            if full {
                continue;
            }
            tokio::select! {
                _ = worker.wake.notified() => {}
                _ = actix_rt::time::sleep(POLL_INTERVAL) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn claim(&self, limit: usize) -> Vec<ClaimedDeliveryRecord> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.sender.timeout() + LEASE_MARGIN)
            .unwrap_or(chrono::Duration::MAX);
        match self
            .store
            .claim_due_deliveries(now, now + lease, limit as i64)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(error = %error, "webhooks: could not claim due deliveries");
                Vec::new()
            }
        }
    }

    /// One attempt of one claimed delivery, recorded if the lease still holds.
    async fn deliver(&self, claimed: ClaimedDeliveryRecord) {
        let now = self.clock.now();
        let previous = claimed
            .previous_secret
            .as_ref()
            .map(|(secret, until)| (secret, *until));
        // A secret that does not open (another key) leaves no secret: nothing is sent, and the
        // delivery waits for the next attempt like any failure.
        let secrets = open_live_secrets(&self.key, &claimed.secret, previous, now)
            .unwrap_or_else(|error| {
                tracing::error!(delivery_id = %claimed.id, error = %error, "webhooks: the endpoint's secret does not open");
                Vec::new()
            });
        let delivery = ClaimedDelivery {
            event_id: claimed.event.id.clone(),
            body: claimed.event.to_json(),
            url: claimed.url,
            secrets,
            attempts: u32::try_from(claimed.attempts).unwrap_or(0),
        };
        let update =
            attempt_delivery(&self.sender, &self.schedule, &delivery, self.clock.as_ref()).await;
        crate::metrics::record_webhook_delivery(match update.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "retrying",
            DeliveryStatus::Failed => "failed",
        });
        match self
            .store
            .record_delivery_attempt(claimed.id, claimed.lease_until, &update)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(delivery_id = %claimed.id, "webhooks: the delivery changed during the attempt (retried, deleted, or its lease ran out); not recorded")
            }
            Err(error) => {
                tracing::warn!(delivery_id = %claimed.id, error = %error, "webhooks: could not record an attempt; it is retried when its lease ends")
            }
        }
    }
}
