//! `GET /metrics` for the Prometheus scraper, and the middleware that counts every request.
//!
//! `/metrics` needs no API key, as scrapers expect. It shows no secret, key or client name, but
//! it does show traffic and the pending/review backlog: **do not expose it publicly**. Keep the
//! gateway's listener on a private network, or have the reverse proxy in front of it refuse
//! `/metrics` from outside and let only the scraper reach it.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{get, web, HttpResponse};

use crate::domain::TransactionStatus;
use crate::metrics::{self, StateCounts};
use crate::store::SharedStore;

/// Middleware (for `actix_web::middleware::from_fn`): counts the request by its route pattern
/// (`/v1/bills/{billNumber}/inquiry`, never the raw path), method and status, and observes how
/// long the response took to start.
pub async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let pattern = request.match_pattern();
    let result = next.call(request).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics::record_http(
        pattern.as_deref(),
        &method,
        status.as_u16(),
        started.elapsed(),
    );
    result
}

/// The pending and review counts and the deposit balance the monitor last saw, from the
/// database; a failed read is left out (and logged).
async fn state_counts(store: &SharedStore) -> StateCounts {
    async fn count(store: &SharedStore, status: TransactionStatus) -> Option<i64> {
        match store.count_by_status(status).await {
            Ok(count) => Some(count),
            Err(error) => {
                tracing::warn!(error = %error, status = status.as_str(), "metrics: could not count transactions");
                None
            }
        }
    }
    let deposit_balance = match store.deposit_monitor().await {
        Ok(state) => state.balance,
        Err(error) => {
            tracing::warn!(error = %error, "metrics: could not read the deposit monitor");
            None
        }
    };
    StateCounts {
        pending: count(store, TransactionStatus::Pending).await,
        review: count(store, TransactionStatus::Review).await,
        deposit_balance,
    }
}

/// The webhook delivery queue, from the database; a failed read is left out (and logged).
async fn webhook_queue(store: &SharedStore) -> metrics::WebhookQueue {
    match store.delivery_queue().await {
        Ok(queue) => metrics::WebhookQueue {
            pending: Some(queue.pending),
            oldest_pending_age_secs: Some(queue.oldest_pending_at.map_or(0.0, |at| {
                (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
            })),
        },
        Err(error) => {
            tracing::warn!(error = %error, "metrics: could not read the webhook queue");
            metrics::WebhookQueue::default()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    operation_id = "metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Request counts and latencies by route pattern, upstream exchanges, idempotent \
        replays, rate-limited requests, the pending/review backlog, webhook deliveries and their \
        queue. No API key: keep it off \
        the public network.",
    responses((status = 200, description = "Prometheus text exposition format.", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")),
)]
#[get("/metrics")]
pub async fn scrape(store: web::Data<SharedStore>) -> HttpResponse {
    let states = state_counts(store.get_ref()).await;
    let queue = webhook_queue(store.get_ref()).await;
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .insert_header(("Cache-Control", "no-store"))
        .body(metrics::render(states) + &metrics::render_webhooks(queue))
}
