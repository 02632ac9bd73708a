//! The gateway's Prometheus metrics: one process-wide registry, every metric defined here, and
//! small recording functions the rest of the code calls (one line at each place that counts).
//!
//! Labels are always drawn from small fixed sets — route *patterns* (never raw paths), HTTP
//! methods, status codes, message types, outcomes, short result codes — so the number of series
//! stays bounded. No API key, client name, bill number or secret ever becomes a label.
//!
//! The `gateway_transactions_in_state` gauges are not kept here: they are counted from the
//! database by the background probe (`http::probes`, every few seconds) and passed to
//! [`render`], so every gateway process sharing one database reports the same numbers.

use std::collections::BTreeSet;
use std::sync::{LazyLock, PoisonError, RwLock};
use std::time::Duration;

use actix_web::http::Method;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::h2h::ResultCode;
use crate::payments::outcome::AdviceVerdict;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Request latency buckets, in seconds (payments wait for the upstream, up to its timeout).
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
];
/// Upstream latency buckets, in seconds.
const UPSTREAM_BUCKETS: &[f64] = &[
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
];

/// Group-commit batch size buckets (writes per database transaction).
const WRITE_BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Every metric the process keeps.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    upstream_duration: HistogramVec,
    advice_attempts: IntCounterVec,
    idempotent_replays: IntCounter,
    rate_limited: IntCounter,
    write_batch: prometheus::Histogram,
    upstream_circuit_open: prometheus::IntGauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "gateway_http_requests_total",
                "HTTP requests answered, by route pattern, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_http_request_duration_seconds",
                "Time to produce the response (headers), by route pattern",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_upstream_request_duration_seconds",
                "Upstream exchanges, by message type, outcome and result code (empty when no answer)",
            )
            .buckets(UPSTREAM_BUCKETS.to_vec()),
            &["message_type", "outcome", "result_code"],
        )
        .expect("valid metric");
        let advice_attempts = IntCounterVec::new(
            Opts::new(
                "gateway_advice_attempts_total",
                "Advice messages sent, by what the answer said (succeeded, failed, not_found, unresolved)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let idempotent_replays = IntCounter::new(
            "gateway_idempotent_replays_total",
            "Payment and purchase repeats answered from an Idempotency-Key without going upstream",
        )
        .expect("valid metric");
        let rate_limited = IntCounter::new(
            "gateway_rate_limited_total",
            "Requests refused with 429 because their client was over its rate limit",
        )
        .expect("valid metric");
        let write_batch = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "gateway_db_write_batch_size",
                "Writes committed together by the group committer, per database transaction",
            )
            .buckets(WRITE_BATCH_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let upstream_circuit_open = prometheus::IntGauge::new(
            "gateway_upstream_circuit_open",
            "1 while the circuit breaker toward the upstream is open (requests refused at once), else 0",
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(upstream_duration.clone()),
            Box::new(advice_attempts.clone()),
            Box::new(idempotent_replays.clone()),
            Box::new(rate_limited.clone()),
            Box::new(write_batch.clone()),
            Box::new(upstream_circuit_open.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        Self {
            registry,
            http_requests,
            http_duration,
            upstream_duration,
            advice_attempts,
            idempotent_replays,
            rate_limited,
            write_batch,
            upstream_circuit_open,
        }
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The method label: the standard methods by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Result codes besides the vendor's that are labels of their own: those listed in
/// configuration (`payments.unknown_outcome_codes`), added by every gateway of the process.
static CONFIGURED_RESULT_CODES: LazyLock<RwLock<BTreeSet<String>>> =
    LazyLock::new(Default::default);

/// Makes `codes` labels of their own (API.md: codes that are neither the vendor's nor listed in
/// configuration are counted as `other`).
pub fn allow_result_codes(codes: &[String]) {
    CONFIGURED_RESULT_CODES
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(codes.iter().map(|code| code.trim().to_string()));
}

/// The vendor's result codes and configured ones; anything else the upstream sends is `other`,
/// so that neither a biller nor a misbehaving upstream can grow the series.
fn result_code_label(code: Option<&str>) -> &str {
    let Some(code) = code.map(str::trim) else {
        return "";
    };
    match ResultCode::parse(code) {
        ResultCode::Other(_)
            if !CONFIGURED_RESULT_CODES
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(code) =>
        {
            "other"
        }
        _ => code,
    }
}

/// One answered HTTP request. `route` is the matched route pattern (`None`: no route matched).
pub fn record_http(route: Option<&str>, method: &Method, status: u16, elapsed: Duration) {
    let m = metrics();
    let route = route.unwrap_or(UNMATCHED_ROUTE);
    let status = status.to_string();
    m.http_requests
        .with_label_values(&[route, method_label(method), status.as_str()])
        .inc();
    m.http_duration
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
}

/// One upstream exchange. `outcome` is the exchange's outcome kind (`answered`, `timeout`, …);
/// `result_code` is `None` when no answer came.
pub fn observe_upstream(
    message_type: &str,
    outcome: &str,
    result_code: Option<&str>,
    latency: Duration,
) {
    metrics()
        .upstream_duration
        .with_label_values(&[message_type, outcome, result_code_label(result_code)])
        .observe(latency.as_secs_f64());
}

/// One advice answer, by what it said.
pub fn record_advice(verdict: &AdviceVerdict) {
    let result = match verdict {
        AdviceVerdict::Succeeded => "succeeded",
        AdviceVerdict::Failed(_) => "failed",
        AdviceVerdict::NotFound => "not_found",
        AdviceVerdict::AskAgain(_) => "unresolved",
    };
    metrics().advice_attempts.with_label_values(&[result]).inc();
}

/// One group commit of `size` writes.
pub fn observe_write_batch(size: usize) {
    metrics().write_batch.observe(size as f64);
}

/// A payment or purchase repeat answered from its Idempotency-Key.
pub fn record_idempotent_replay() {
    metrics().idempotent_replays.inc();
}

/// A request refused because its client was over the rate limit.
pub fn record_rate_limited() {
    metrics().rate_limited.inc();
}

/// The circuit breaker toward the upstream opened (`true`) or closed (one breaker per process).
pub fn set_upstream_circuit_open(open: bool) {
    metrics().upstream_circuit_open.set(i64::from(open));
}

/// Transactions per state and the deposit balance, as the background probe last read them.
/// `None`: the read failed (left out).
#[derive(Debug, Clone, Copy, Default)]
pub struct StateCounts {
    pub pending: Option<i64>,
    pub review: Option<i64>,
    /// The deposit balance the monitor last saw (`None`: not seen yet, or the read failed).
    pub deposit_balance: Option<i64>,
}

/// The Prometheus text exposition of every metric, plus the per-scrape state gauges.
pub fn render(states: StateCounts) -> String {
    let mut families = metrics().registry.gather();
    // A registry of its own per scrape: several gateways in one process (tests) never mix up
    // their databases' counts.
    let scrape = Registry::new();
    let in_state = IntGaugeVec::new(
        Opts::new(
            "gateway_transactions_in_state",
            "Transactions whose outcome is not final yet: pending (advice running) and review (a person must look)",
        ),
        &["status"],
    )
    .expect("valid metric");
    for (status, count) in [("pending", states.pending), ("review", states.review)] {
        if let Some(count) = count {
            in_state.with_label_values(&[status]).set(count);
        }
    }
    scrape
        .register(Box::new(in_state))
        .expect("metric registered once");
    if let Some(balance) = states.deposit_balance {
        let deposit = prometheus::IntGauge::new(
            "gateway_deposit_balance_rupiah",
            "The deposit balance at the upstream the monitor last saw, rupiah",
        )
        .expect("valid metric");
        deposit.set(balance);
        scrape
            .register(Box::new(deposit))
            .expect("metric registered once");
    }
    families.extend(scrape.gather());
    TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|error| {
            tracing::error!(error = %error, "could not encode metrics");
            String::new()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(result_code_label(None), "");
        assert_eq!(result_code_label(Some("000")), "000");
        assert_eq!(result_code_label(Some("<html>oops</html>")), "other");
        assert_eq!(result_code_label(Some("")), "other");
        assert_eq!(result_code_label(Some("994")), "994");
        assert_eq!(result_code_label(Some("00")), "00");
        assert_eq!(result_code_label(Some("4x7")), "other");
        allow_result_codes(&["4x8".to_string()]);
        assert_eq!(result_code_label(Some("4x8")), "4x8");
        assert_eq!(
            method_label(&Method::from_bytes(b"FROBNICATE").unwrap()),
            "other"
        );
        assert_eq!(method_label(&Method::POST), "POST");
    }

    #[test]
    fn render_includes_every_family_and_the_state_gauges() {
        record_http(
            Some("/v1/bills/{billNumber}/inquiry"),
            &Method::POST,
            200,
            Duration::from_millis(3),
        );
        record_http(None, &Method::GET, 404, Duration::from_millis(1));
        observe_upstream(
            "inquiry",
            "answered",
            Some("000"),
            Duration::from_millis(40),
        );
        observe_upstream("payment", "timeout", None, Duration::from_secs(15));
        record_advice(&AdviceVerdict::NotFound);
        record_idempotent_replay();
        record_rate_limited();
        let text = render(StateCounts {
            pending: Some(3),
            review: None,
            deposit_balance: Some(49_694_450),
        });
        for expected in [
            r#"gateway_http_requests_total{method="POST",route="/v1/bills/{billNumber}/inquiry",status="200"}"#,
            r#"gateway_http_requests_total{method="GET",route="unmatched",status="404"}"#,
            r#"gateway_http_request_duration_seconds_bucket{route="/v1/bills/{billNumber}/inquiry""#,
            r#"gateway_upstream_request_duration_seconds_count{message_type="inquiry",outcome="answered",result_code="000"}"#,
            r#"gateway_upstream_request_duration_seconds_count{message_type="payment",outcome="timeout",result_code=""}"#,
            r#"gateway_advice_attempts_total{result="not_found"}"#,
            "gateway_idempotent_replays_total ",
            "gateway_rate_limited_total ",
            r#"gateway_transactions_in_state{status="pending"} 3"#,
            "gateway_deposit_balance_rupiah 49694450",
        ] {
            assert!(text.contains(expected), "{expected} missing in\n{text}");
        }
        assert!(!text.contains(r#"status="review""#), "{text}");
    }
}

/// Webhook delivery attempts by outcome (`delivered`, `retrying`, `failed`): kept apart from
/// [`Metrics`] in a registry of their own, rendered by [`render_webhooks`].
static WEBHOOK_DELIVERIES: LazyLock<(Registry, IntCounterVec)> = LazyLock::new(|| {
    let registry = Registry::new();
    let attempts = IntCounterVec::new(
        Opts::new(
            "gateway_webhook_deliveries_total",
            "Webhook delivery attempts, by outcome: delivered, retrying (failed, another attempt \
             is scheduled), failed (failed, the schedule ran out)",
        ),
        &["outcome"],
    )
    .expect("valid metric");
    registry
        .register(Box::new(attempts.clone()))
        .expect("metric registered once");
    (registry, attempts)
});

/// One webhook delivery attempt; `outcome` is one of `delivered`, `retrying`, `failed`.
pub fn record_webhook_delivery(outcome: &'static str) {
    WEBHOOK_DELIVERIES.1.with_label_values(&[outcome]).inc();
}

/// The webhook delivery queue, as the background probe last read it: pending deliveries and the
/// age of the oldest. `None`: the read failed (left out).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookQueue {
    pub pending: Option<i64>,
    pub oldest_pending_age_secs: Option<f64>,
}

/// The webhook metrics in Prometheus text format, to append to [`render`]'s.
pub fn render_webhooks(queue: WebhookQueue) -> String {
    let mut families = WEBHOOK_DELIVERIES.0.gather();
    let scrape = Registry::new();
    let depth = prometheus::IntGauge::new(
        "gateway_webhook_queue_depth",
        "Webhook deliveries pending (waiting for their next attempt or in flight)",
    )
    .expect("valid metric");
    let age = prometheus::Gauge::new(
        "gateway_webhook_oldest_pending_age_seconds",
        "Age of the oldest pending webhook delivery, seconds (0 when none is pending)",
    )
    .expect("valid metric");
    if let Some(pending) = queue.pending {
        depth.set(pending);
        scrape
            .register(Box::new(depth))
            .expect("metric registered once");
    }
    if let Some(seconds) = queue.oldest_pending_age_secs {
        age.set(seconds);
        scrape
            .register(Box::new(age))
            .expect("metric registered once");
    }
    families.extend(scrape.gather());
    TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|error| {
            tracing::error!(error = %error, "could not encode webhook metrics");
            String::new()
        })
}
