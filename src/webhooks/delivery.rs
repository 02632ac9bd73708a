//! The delivery worker's one step, independent of the store: given a claimed delivery, sign and
//! send it, and return the state the store records (API.md, "Delivery"; the deliveries log).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::EventId;
use super::schedule::{NextAttempt, RetrySchedule};
use super::secret::EndpointSecret;
use super::sender::{AttemptOutcome, WebhookSender};
use super::signature::sign;
use crate::clock::Clock;

/// Where a delivery is, as the deliveries log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A due delivery a worker holds the lease of, with what sending it needs.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The `webhook-id` of every attempt.
    pub event_id: EventId,
    /// The event as JSON ([`super::Event::to_json`]), the same bytes on every attempt.
    pub body: Vec<u8>,
    pub url: String,
    /// The live secrets, current first ([`super::live_secrets`]).
    pub secrets: Vec<EndpointSecret>,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What the store records after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub status: DeliveryStatus,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// For `pending`: when to try again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
}

/// Signs and sends one attempt of `delivery`, and says what the delivery becomes.
#[tracing::instrument(skip_all, fields(event_id = %delivery.event_id, attempt = delivery.attempts + 1))]
pub async fn attempt_delivery(
    sender: &WebhookSender,
    schedule: &RetrySchedule,
    delivery: &ClaimedDelivery,
    clock: &dyn Clock,
) -> DeliveryUpdate {
    let attempted_at = clock.now();
    let outcome = match sign(
        delivery.event_id.as_str(),
        attempted_at.timestamp(),
        &delivery.body,
        &delivery.secrets,
    ) {
        Ok(signed) => sender.send(&delivery.url, &delivery.body, &signed).await,
        Err(error) => AttemptOutcome::Retry {
            status: None,
            error: error.to_string(),
        },
    };
    if let AttemptOutcome::Retry { status, error } = &outcome {
        tracing::info!(?status, %error, "webhook attempt failed");
    }
    next_state(
        &outcome,
        delivery.attempts,
        schedule,
        attempted_at,
        clock.now(),
    )
}

/// The delivery's state after an attempt made at `attempted_at` that ended at `finished_at`
/// with `outcome`, `attempts_before` attempts having been made before it.
pub fn next_state(
    outcome: &AttemptOutcome,
    attempts_before: u32,
    schedule: &RetrySchedule,
    attempted_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
) -> DeliveryUpdate {
    let attempts = attempts_before.saturating_add(1);
    match outcome {
        AttemptOutcome::Delivered { status } => DeliveryUpdate {
            status: DeliveryStatus::Delivered,
            attempts,
            next_attempt_at: None,
            last_attempt_at: attempted_at,
            last_status_code: Some(*status),
            last_error: None,
        },
        AttemptOutcome::Retry { status, error } => {
            let (status_now, next_attempt_at) = match schedule.after_failure(attempts, finished_at)
            {
                NextAttempt::At(at) => (DeliveryStatus::Pending, Some(at)),
                NextAttempt::Failed => (DeliveryStatus::Failed, None),
            };
            DeliveryUpdate {
                status: status_now,
                attempts,
                next_attempt_at,
                last_attempt_at: attempted_at,
                last_status_code: *status,
                last_error: Some(error.clone()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::SystemClock;
    use crate::webhooks::client_config;

    fn failure() -> AttemptOutcome {
        AttemptOutcome::Retry {
            status: Some(500),
            error: "HTTP 500 Internal Server Error".into(),
        }
    }

    #[test]
    fn a_2xx_is_delivered_with_its_status() {
        let now = Utc::now();
        let update = next_state(
            &AttemptOutcome::Delivered { status: 204 },
            2,
            &RetrySchedule::default(),
            now,
            now,
        );
        assert_eq!(
            update,
            DeliveryUpdate {
                status: DeliveryStatus::Delivered,
                attempts: 3,
                next_attempt_at: None,
                last_attempt_at: now,
                last_status_code: Some(204),
                last_error: None,
            }
        );
    }

    #[test]
    fn a_failure_waits_for_the_next_delay_then_the_delivery_fails() {
        let (started, now) = (Utc::now(), Utc::now() + chrono::Duration::seconds(2));
        let schedule = RetrySchedule::default();
        let first = next_state(&failure(), 0, &schedule, started, now);
        assert_eq!(first.status, DeliveryStatus::Pending);
        assert_eq!(first.attempts, 1);
        assert_eq!(
            first.next_attempt_at,
            Some(now + chrono::Duration::seconds(5))
        );
        assert_eq!(first.last_attempt_at, started);
        assert_eq!(first.last_status_code, Some(500));
        assert_eq!(
            first.last_error.as_deref(),
            Some("HTTP 500 Internal Server Error")
        );
        let seventh = next_state(&failure(), 6, &schedule, started, now);
        assert_eq!(seventh.status, DeliveryStatus::Pending);
        assert_eq!(
            seventh.next_attempt_at,
            Some(now + chrono::Duration::seconds(36000))
        );
        let last = next_state(&failure(), 7, &schedule, started, now);
        assert_eq!(last.status, DeliveryStatus::Failed);
        assert_eq!(last.attempts, 8);
        assert_eq!(last.next_attempt_at, None);
        // A manual retry of a failed delivery is one more attempt: failing again, it stays failed.
        let again = next_state(&failure(), 8, &schedule, started, now);
        assert_eq!(again.status, DeliveryStatus::Failed);
    }

    #[test]
    fn statuses_are_named_as_in_api_md() {
        for status in [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ] {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[actix_web::test]
    async fn a_receiver_that_is_down_is_retried_on_schedule() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let sender = WebhookSender::new(client_config(None).unwrap(), Duration::from_secs(5));
        let delivery = ClaimedDelivery {
            event_id: EventId::generate(),
            body: b"{}".to_vec(),
            url: format!("http://127.0.0.1:{port}/hook"),
            secrets: vec![EndpointSecret::generate()],
            attempts: 0,
        };
        let before = Utc::now();
        let update =
            attempt_delivery(&sender, &RetrySchedule::default(), &delivery, &SystemClock).await;
        assert_eq!(update.status, DeliveryStatus::Pending);
        assert_eq!(update.attempts, 1);
        assert_eq!(update.last_status_code, None);
        assert_eq!(update.last_error.as_deref(), Some("connection refused"));
        let next = update.next_attempt_at.unwrap();
        assert!(next >= before + chrono::Duration::seconds(5));
        assert!(next <= Utc::now() + chrono::Duration::seconds(5));
    }

    #[actix_web::test]
    async fn without_a_secret_nothing_is_sent_and_the_delivery_waits() {
        let sender = WebhookSender::new(client_config(None).unwrap(), Duration::from_secs(1));
        let delivery = ClaimedDelivery {
            event_id: EventId::generate(),
            body: b"{}".to_vec(),
            url: "http://127.0.0.1:9/hook".into(),
            secrets: Vec::new(),
            attempts: 0,
        };
        let update =
            attempt_delivery(&sender, &RetrySchedule::default(), &delivery, &SystemClock).await;
        assert_eq!(update.status, DeliveryStatus::Pending);
        assert_eq!(
            update.last_error.as_deref(),
            Some("no live secret to sign with")
        );
    }
}
