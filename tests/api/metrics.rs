//! `/metrics` (Prometheus text, no API key) and per-key rate limiting of the `/v1` routes.
//!
//! The counters and histograms are process-wide and the tests of this binary run in parallel,
//! so assertions on them compare before and after ("at least"); the state gauges come from the
//! test's own database and are exact.

use mpospay_gateway::config::RateLimitSettings;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestOptions};

both_backends!(
    requests_and_upstream_exchanges_are_counted_by_route_pattern,
    the_pending_and_review_gauges_come_from_the_database,
    a_key_over_its_limit_gets_429_while_other_keys_go_on,
);

const INQUIRY_ROUTE: &str = "/v1/bills/{billNumber}/inquiry";

/// `GET /metrics` without an API key: its text.
async fn scrape(app: &TestApp) -> String {
    let answer = app.send("GET", "/metrics", None, None, None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert!(
        answer
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{:?}",
        answer.headers
    );
    match answer.body {
        Value::String(text) => text,
        other => panic!("not Prometheus text: {other}"),
    }
}

/// The value of the sample `name{labels}` (label order does not matter), if present.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let mut present: Vec<&str> = series_labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .collect();
            let mut wanted: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            present.sort_unstable();
            wanted.sort_unstable();
            (present == wanted).then(|| value.parse().ok())?
        })
}

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or(0.0)
}

async fn requests_and_upstream_exchanges_are_counted_by_route_pattern(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = scrape(&app).await;
    let inquiries_ok = [
        ("route", INQUIRY_ROUTE),
        ("method", "POST"),
        ("status", "200"),
    ];
    let upstream_inquiry_ok = [
        ("message_type", "inquiry"),
        ("outcome", "answered"),
        ("result_code", "000"),
    ];

    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(inquiry.status, 200, "{:?}", inquiry.body);
    let payment = app
        .pay("AF085713323054", "2042", &inquiry.id(), "metrics-pay-1")
        .await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);
    let replay = app
        .pay("AF085713323054", "2042", &inquiry.id(), "metrics-pay-1")
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let unknown = app
        .send("GET", "/no/such/route/12345", None, None, None)
        .await;
    assert_eq!(unknown.status, 404);

    let after = scrape(&app).await;
    assert!(
        value(&after, "gateway_http_requests_total", &inquiries_ok)
            >= value(&before, "gateway_http_requests_total", &inquiries_ok) + 1.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            "gateway_http_request_duration_seconds_count",
            &[("route", INQUIRY_ROUTE)]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "gateway_upstream_request_duration_seconds_count",
            &upstream_inquiry_ok
        ) >= value(
            &before,
            "gateway_upstream_request_duration_seconds_count",
            &upstream_inquiry_ok
        ) + 1.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            "gateway_upstream_request_duration_seconds_bucket",
            &[
                ("message_type", "inquiry"),
                ("outcome", "answered"),
                ("result_code", "000"),
                ("le", "+Inf"),
            ]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "gateway_upstream_request_duration_seconds_count",
            &[
                ("message_type", "payment"),
                ("outcome", "answered"),
                ("result_code", "000")
            ]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        value(&after, "gateway_idempotent_replays_total", &[])
            >= value(&before, "gateway_idempotent_replays_total", &[]) + 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "gateway_http_requests_total",
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ) >= 1.0,
        "{after}"
    );
    // Raw paths, bill numbers and keys never become labels.
    assert!(!after.contains("AF085713323054"), "{after}");
    assert!(!after.contains("/no/such/route"), "{after}");
    for key in [&app.operator_key, &app.finance_key, &app.admin_key] {
        assert!(!after.contains(&key[..16]), "a key in the metrics");
    }
    assert!(!after.contains("pos-web"), "a client name in the metrics");
}

async fn the_pending_and_review_gauges_come_from_the_database(backend: Backend) {
    // Nobody resolves the payment behind the test's back.
    let options = TestOptions {
        reconciler: false,
        ..TestOptions::default()
    };
    let app = spawn_app_with(backend, options).await;
    let pending = [("status", "pending")];
    let review = [("status", "review")];
    let before = scrape(&app).await;
    assert_eq!(
        sample(&before, "gateway_transactions_in_state", &pending),
        Some(0.0)
    );
    assert_eq!(
        sample(&before, "gateway_transactions_in_state", &review),
        Some(0.0)
    );

    // Applied upstream, answer lost, every advice answers 102: it stays pending.
    let payment = app.inquire_and_pay("97006000001", "2042").await;
    assert_eq!(payment.status, 202, "{:?}", payment.body);
    let advice = app.advise(&payment.id()).await;
    assert_eq!(advice.body["status"], "pending", "{:?}", advice.body);
    // A purchase with an unknown outcome goes straight to review.
    let purchase = app.purchase("3100", "97001000001", "metrics-buy-1").await;
    assert_eq!(purchase.body["status"], "review", "{:?}", purchase.body);

    // The gauges are the background probe's counts (every 2 s), not counted per scrape.
    let began = std::time::Instant::now();
    let after = loop {
        let text = scrape(&app).await;
        let counted = sample(&text, "gateway_transactions_in_state", &pending) == Some(1.0)
            && sample(&text, "gateway_transactions_in_state", &review) == Some(1.0);
        if counted || began.elapsed() > std::time::Duration::from_secs(6) {
            break text;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        sample(&after, "gateway_transactions_in_state", &pending),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "gateway_transactions_in_state", &review),
        Some(1.0),
        "{after}"
    );
    let unresolved = [("result", "unresolved")];
    assert!(
        value(&after, "gateway_advice_attempts_total", &unresolved)
            >= value(&before, "gateway_advice_attempts_total", &unresolved) + 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "gateway_upstream_request_duration_seconds_count",
            &[
                ("message_type", "payment"),
                ("outcome", "connection_lost"),
                ("result_code", "")
            ]
        ) >= 1.0,
        "no answer: an empty result_code\n{after}"
    );
}

async fn a_key_over_its_limit_gets_429_while_other_keys_go_on(backend: Backend) {
    let options = TestOptions {
        rate_limit: RateLimitSettings {
            requests_per_second: 2,
            burst: 2,
            ..RateLimitSettings::default()
        },
        ..TestOptions::default()
    };
    let app = spawn_app_with(backend, options).await;
    let before = scrape(&app).await;
    let path = format!("/v1/transactions/{}", uuid::Uuid::now_v7());

    for _ in 0..2 {
        let answer = app.get(&path, &app.operator_key).await;
        assert_eq!(answer.status, 404, "{:?}", answer.body);
    }
    let limited = app.get(&path, &app.operator_key).await;
    assert_eq!(limited.status, 429, "{:?}", limited.body);
    assert_eq!(limited.error_code(), "rate_limited");
    assert!(limited.body["error"]["message"].is_string());
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(retry_after >= 1, "{retry_after}");
    assert!(limited.header("x-request-id").is_some());

    // Another key (another client) is unaffected.
    let other = app.get(&path, &app.other_operator_key).await;
    assert_eq!(other.status, 404, "{:?}", other.body);
    // Probes and the scraper are never limited.
    for _ in 0..5 {
        assert_eq!(
            app.send("GET", "/healthz", None, None, None).await.status,
            200
        );
    }
    let after = scrape(&app).await;
    assert!(
        value(&after, "gateway_rate_limited_total", &[])
            >= value(&before, "gateway_rate_limited_total", &[]) + 1.0,
        "{after}"
    );
    assert!(
        value(
            &after,
            "gateway_http_requests_total",
            &[
                ("route", "/v1/transactions/{id}"),
                ("method", "GET"),
                ("status", "429")
            ]
        ) >= 1.0,
        "{after}"
    );

    // The budget refills at the configured rate.
    actix_rt::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    let again = app.get(&path, &app.operator_key).await;
    assert_eq!(again.status, 404, "{:?}", again.body);
}
