//! The background probe of the database behind `/readyz` and `/metrics` (API.md, "Abuse and slow
//! clients": they are cheap, no request writes to the database or the disk).
//!
//! Readiness on SQLite writes (a commit must reach the disk, see `store::sqlite`), and the state
//! gauges count rows: so neither runs per request. A task probes every [`PROBE_INTERVAL`] and
//! keeps the last result; `/readyz` and `/metrics` read it. Readiness is at most that stale.

use std::time::Duration;

use tokio::sync::watch;

use crate::domain::TransactionStatus;
use crate::metrics::StateCounts;
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
        };
    }
    Probed {
        ready: Ok(()),
        states: StateCounts {
            pending: count(store, TransactionStatus::Pending).await,
            review: count(store, TransactionStatus::Review).await,
        },
    }
}

/// A failed count is left out of the metrics (and logged).
async fn count(store: &SharedStore, status: TransactionStatus) -> Option<i64> {
    match tokio::time::timeout(PROBE_TIMEOUT, store.count_by_status(status)).await {
        Ok(Ok(count)) => Some(count),
        Err(_) => {
            tracing::warn!(status = status.as_str(), "metrics: the count took too long");
            None
        }
        Ok(Err(error)) => {
            tracing::warn!(error = %error, status = status.as_str(), "metrics: could not count transactions");
            None
        }
    }
}
