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

use crate::metrics;

use super::probes::Probes;

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
pub async fn scrape(probes: web::Data<Probes>) -> HttpResponse {
    // Read by the background probe (src/http/probes.rs), not per scrape.
    let probed = probes.last().await;
    let states = probed.as_ref().map(|p| p.states).unwrap_or_default();
    let queue = probed.map(|p| p.webhooks).unwrap_or_default();
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .insert_header(("Cache-Control", "no-store"))
        .body(metrics::render(states) + &metrics::render_webhooks(queue))
}
