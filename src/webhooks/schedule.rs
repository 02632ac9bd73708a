//! When a delivery is tried again: after each delay of `webhooks.retry_schedule_secs`, then it
//! is `failed` (API.md, "Delivery").

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The schedule of API.md: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_RETRY_SCHEDULE_SECS: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];

/// The delays between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    At(DateTime<Utc>),
    /// The schedule is used up.
    Failed,
}

impl RetrySchedule {
    pub fn from_secs(secs: &[u64]) -> Self {
        Self {
            delays: secs.iter().copied().map(Duration::from_secs).collect(),
        }
    }

    /// After `attempts` attempts (the first counts as 1), the last of which failed at `now`.
    /// An empty schedule never retries.
    pub fn after_failure(&self, attempts: u32, now: DateTime<Utc>) -> NextAttempt {
        let index = (attempts as usize).saturating_sub(1);
        match self.delays.get(index) {
            Some(delay) => NextAttempt::At(
                chrono::Duration::from_std(*delay)
                    .ok()
                    .and_then(|delay| now.checked_add_signed(delay))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            ),
            None => NextAttempt::Failed,
        }
    }

    /// How many attempts a delivery gets at most.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::from_secs(&DEFAULT_RETRY_SCHEDULE_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_delay_follows_one_failure_then_the_delivery_fails() {
        let schedule = RetrySchedule::default();
        let now = Utc::now();
        let delays: Vec<i64> = (1..=7)
            .map(|attempts| match schedule.after_failure(attempts, now) {
                NextAttempt::At(at) => (at - now).num_seconds(),
                NextAttempt::Failed => panic!("attempt {attempts} should be retried"),
            })
            .collect();
        assert_eq!(delays, vec![5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(schedule.after_failure(8, now), NextAttempt::Failed);
        assert_eq!(schedule.after_failure(80, now), NextAttempt::Failed);
        assert_eq!(schedule.max_attempts(), 8);
    }

    #[test]
    fn an_empty_schedule_fails_after_the_first_attempt() {
        let schedule = RetrySchedule::from_secs(&[]);
        assert_eq!(schedule.after_failure(1, Utc::now()), NextAttempt::Failed);
    }

    #[test]
    fn a_huge_delay_saturates_instead_of_panicking() {
        let schedule = RetrySchedule::from_secs(&[u64::MAX]);
        assert!(matches!(
            schedule.after_failure(1, DateTime::<Utc>::MIN_UTC),
            NextAttempt::At(_)
        ));
    }
}
