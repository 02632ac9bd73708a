//! The background probe of the database behind `/readyz` and `/metrics` (API.md, "Abuse and slow
//! clients": they are cheap, no request writes to the database or the disk).
//!
//! Readiness on SQLite writes (a commit must reach the disk, see `store::sqlite`), and the state
//! gauges count rows: so neither runs per request. A task probes every [`PROBE_INTERVAL`] and
//! keeps the last result; `/readyz` and `/metrics` read it. Readiness is at most that stale.

use std::time::Duration;

use tokio::sync::watch;

use crate::domain::TransactionStatus;
use crate::metrics::{StateCounts, WebhookQueue};
use crate::store::SharedStore;

/// How often the database is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// A probe the database does not answer within this long is "not ready" (a pool waiting for a
/// crashed server would otherwise keep the last result for its whole acquire timeout).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long `/readyz` waits for the first probe of a just started process.
const FIRST_PROBE_WAIT: Duration = Duration::from_secs(5);

/// What the last probe found.
#[derive(Debug, Clone)]
pub struct Probed {
    /// `Err`: why the database is not ready (for the log).
    pub ready: Result<(), String>,
    pub states: StateCounts,
    pub webhooks: WebhookQueue,
}

/// The last probe's result, shared by every worker.
#[derive(Debug, Clone)]
pub struct Probes {
    last: watch::Receiver<Option<Probed>>,
}

impl Probes {
    /// Starts probing `store` (on the current runtime) until `stop` fires.
    pub fn start(store: SharedStore, mut stop: watch::Receiver<bool>) -> Self {
        let (publish, last) = watch::channel(None);
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if publish.send(Some(probe(&store).await)).is_err() {
                            return;
                        }
                    }
                    _ = stop.changed() => return,
                }
            }
        });
        Self { last }
    }

    /// The last result; right after start-up, waits (briefly) for the first.
    pub async fn last(&self) -> Option<Probed> {
        let mut last = self.last.clone();
        let first = tokio::time::timeout(FIRST_PROBE_WAIT, last.wait_for(Option::is_some)).await;
        match first {
            Ok(Ok(probed)) => probed.clone(),
            _ => None,
        }
    }
}

async fn probe(store: &SharedStore) -> Probed {
    let ready = match tokio::time::timeout(PROBE_TIMEOUT, store.check_ready()).await {
        Ok(checked) => checked.map_err(|error| error.to_string()),
        Err(_) => Err(format!(
            "the database did not answer within {PROBE_TIMEOUT:?}"
        )),
    };
    if let Err(why) = ready {
        tracing::warn!(error = %why, "not ready");
        // The counts would wait on the same database: left out of the metrics.
        return Probed {
            ready: Err(why),
            states: StateCounts::default(),
            webhooks: WebhookQueue::default(),
        };
    }
    let deposit_balance = read("the deposit monitor", store.deposit_monitor())
        .await
        .and_then(|state| state.balance);
    let webhooks = read("the webhook queue", store.delivery_queue())
        .await
        .map(|queue| WebhookQueue {
            pending: Some(queue.pending),
            oldest_pending_age_secs: Some(queue.oldest_pending_at.map_or(0.0, |at| {
                (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
            })),
        })
        .unwrap_or_default();
    Probed {
        ready: Ok(()),
        states: StateCounts {
            pending: count(store, TransactionStatus::Pending).await,
            review: count(store, TransactionStatus::Review).await,
            deposit_balance,
        },
        webhooks,
    }
}

/// One read of the probe; a failed or slow one is left out of the metrics (and logged).
async fn read<T>(
    what: &str,
    reading: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
) -> Option<T> {
    match tokio::time::timeout(PROBE_TIMEOUT, reading).await {
        Ok(Ok(value)) => Some(value),
        Err(_) => {
            tracing::warn!("metrics: reading {what} took too long");
            None
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "metrics: could not read {what}");
            None
        }
    }
}

/// A failed count is left out of the metrics (and logged).
async fn count(store: &SharedStore, status: TransactionStatus) -> Option<i64> {
    read(status.as_str(), store.count_by_status(status)).await
}
