//! The circuit breaker toward the upstream (API.md, "Circuit breaker"): after
//! `upstream.breaker_failures` consecutive transport failures the gateway stops sending
//! inquiries, purchases, payments and balance reads for `upstream.breaker_cooldown_secs`; they
//! are refused at once, before anything is recorded or sent. Then one request is let through as
//! a probe, and an answer closes the circuit again. Advice does not ask the breaker: pending
//! payments keep their own schedule.
//!
//! One breaker per process, shared by every worker's upstream client.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::client::{Outcome, UnknownReason};

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive transport failures that open the circuit; `0` never opens it.
    pub failures: u32,
    /// How long the circuit stays open before a probe is let through.
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown: Duration::from_secs(10),
        }
    }
}

/// The circuit is open: nothing may be sent for `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitOpen {
    pub retry_after: Duration,
}

impl CircuitOpen {
    /// Whole seconds for `Retry-After`, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    /// Set while the circuit is open (also after the cool-down, until a probe succeeds).
    open_until: Option<Instant>,
    /// A probe is out: nobody else is let through until it comes back.
    probing: bool,
}

/// The breaker. Cheap to share: [`CircuitBreaker::admit`] takes a short lock, never across I/O.
#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

/// Leave to send one message; hand what came of it to [`Permit::record`]. A probe's permit
/// dropped without a record (the request stopped before sending) frees the probe's place.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    probe: bool,
    recorded: bool,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a few numbers, consistent after every statement: a panic elsewhere
        // leaves nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the circuit is open now (for the metric and the logs).
    pub fn is_open(&self) -> bool {
        self.state().open_until.is_some()
    }

    /// Leave to send, or [`CircuitOpen`]. Called before anything is recorded.
    pub fn admit(self: &Arc<Self>) -> Result<Permit, CircuitOpen> {
        let mut state = self.state();
        let probe = match state.open_until {
            None => false,
            Some(until) => {
                let now = Instant::now();
                if now < until {
                    return Err(CircuitOpen {
                        retry_after: until - now,
                    });
                }
                if state.probing {
                    // The probe is out; its answer decides. Ask again in about its timeout.
                    return Err(CircuitOpen {
                        retry_after: Duration::from_secs(1),
                    });
                }
                state.probing = true;
                tracing::info!(
                    "upstream circuit half-open: letting one request through as a probe"
                );
                true
            }
        };
        Ok(Permit {
            breaker: self.clone(),
            probe,
            recorded: false,
        })
    }

    fn record(&self, probe: bool, outcome: &Outcome) {
        let mut state = self.state();
        if probe {
            state.probing = false;
        }
        if !is_transport_failure(outcome) {
            state.consecutive_failures = 0;
            if state.open_until.take().is_some() {
                tracing::info!("upstream answered: circuit closed");
                crate::metrics::set_upstream_circuit_open(false);
            }
            return;
        }
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        let threshold = self.settings.failures;
        let reopen = probe && state.open_until.is_some();
        let trip =
            state.open_until.is_none() && threshold > 0 && state.consecutive_failures >= threshold;
        if reopen || trip {
            state.open_until = Some(Instant::now() + self.settings.cooldown);
            tracing::warn!(
                consecutive_failures = state.consecutive_failures,
                cooldown_secs = self.settings.cooldown.as_secs(),
                "upstream circuit open: requests are refused until the cool-down ends"
            );
            crate::metrics::set_upstream_circuit_open(true);
        }
    }
}

impl Permit {
    /// Tells the breaker what came of the message this permit let out.
    pub fn record(mut self, outcome: &Outcome) {
        self.recorded = true;
        self.breaker.record(self.probe, outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            self.breaker.state().probing = false;
        }
    }
}

/// Timeout, refused, reset, HTTP ≠ 200: the upstream is not answering. An answer of any result
/// code, or a body that is not a valid answer, came from a live upstream.
fn is_transport_failure(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Answered(_) => false,
        Outcome::NotSent(_) => true,
        Outcome::Unknown(reason) => !matches!(reason, UnknownReason::InvalidBody(_)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Outcome {
        Outcome::NotSent("connection refused".into())
    }

    fn answered() -> Outcome {
        Outcome::Answered(Box::default())
    }

    fn breaker(cooldown: Duration) -> Arc<CircuitBreaker> {
        CircuitBreaker::new(BreakerSettings {
            failures: 3,
            cooldown,
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let breaker = breaker(Duration::from_secs(60));
        for _ in 0..2 {
            breaker.admit().unwrap().record(&refused());
        }
        breaker.admit().unwrap().record(&answered());
        for _ in 0..2 {
            breaker.admit().unwrap().record(&refused());
        }
        assert!(!breaker.is_open(), "an answer in between resets the count");
        breaker
            .admit()
            .unwrap()
            .record(&Outcome::Unknown(UnknownReason::HttpStatus(502)));
        assert!(breaker.is_open());
        let open = breaker.admit().unwrap_err();
        assert!(open.retry_after_secs() > 50 && open.retry_after_secs() <= 60);
    }

    #[test]
    fn after_the_cooldown_one_probe_decides() {
        let breaker = breaker(Duration::from_millis(50));
        for _ in 0..3 {
            breaker.admit().unwrap().record(&refused());
        }
        assert!(breaker.admit().is_err());
        std::thread::sleep(Duration::from_millis(60));
        let probe = breaker.admit().expect("the probe is let through");
        assert!(breaker.admit().is_err(), "only one probe at a time");
        probe.record(&refused());
        assert!(breaker.admit().is_err(), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(60));
        // A probe that never went out frees its place.
        drop(breaker.admit().unwrap());
        let probe = breaker.admit().expect("another probe");
        probe.record(&answered());
        assert!(!breaker.is_open());
        assert!(breaker.admit().is_ok());
    }

    #[test]
    fn zero_failures_never_opens() {
        let breaker = CircuitBreaker::new(BreakerSettings {
            failures: 0,
            cooldown: Duration::from_secs(10),
        });
        for _ in 0..20 {
            breaker.admit().unwrap().record(&refused());
        }
        assert!(!breaker.is_open());
    }
}
