//! The circuit breaker toward the upstream (issue 14; API.md, "Circuit breaker"), on the gateway
//! binary configured through its environment: after the threshold of transport failures the
//! answers come at once (503, `Retry-After`), the simulator sees nothing more and nothing is
//! recorded; after the cool-down one probe closes it; pending advice keeps its schedule.

use std::time::{Duration, Instant};

use mpospay_gateway::domain::TransactionKind;
use mpospay_gateway::keys::Role;
use mpospay_gateway::sandbox::{ForcedFault, SandboxConfig};
use mpospay_gateway::store::{SharedStore, TransactionFilter};
use mpospay_testkit::{free_port, GatewayCommand};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{create_key, Backend, TestDatabase, Upstream};

both_backends!(
    a_blackholed_upstream_opens_the_circuit_and_one_probe_closes_it,
    a_refused_upstream_opens_the_circuit_for_every_upstream_route,
    advice_of_pending_payments_goes_on_while_the_circuit_is_open,
);

const FAILURES: usize = 3;

/// A gateway binary with a breaker of [`FAILURES`] and `cooldown_secs`.
fn gateway(command: GatewayCommand, cooldown_secs: u64) -> GatewayCommand {
    command
        .env("GATEWAY_UPSTREAM_BREAKER_FAILURES", FAILURES.to_string())
        .env(
            "GATEWAY_UPSTREAM_BREAKER_COOLDOWN_SECS",
            cooldown_secs.to_string(),
        )
}

/// A thin client of one gateway process.
struct Api {
    base: String,
    key: String,
    http: awc::Client,
}

struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<String>,
    replayed: bool,
    took: Duration,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api {
    fn new(base: &str, key: &str) -> Self {
        Self {
            base: base.to_string(),
            key: key.to_string(),
            http: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let started = Instant::now();
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .insert_header(("Authorization", format!("Bearer {}", self.key)));
        if let Some(key) = key {
            request = request.insert_header(("Idempotency-Key", key));
        }
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("the gateway answers");
        let bytes = response.body().limit(1 << 20).await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Reply {
            status: response.status().as_u16(),
            retry_after: header("Retry-After"),
            replayed: header("Idempotent-Replayed").as_deref() == Some("true"),
            body: serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
            took: started.elapsed(),
        }
    }

    async fn inquire(&self, bill: &str) -> Reply {
        self.call(
            "POST",
            &format!("/v1/bills/{bill}/inquiry"),
            None,
            Some(json!({"product": "2042"})),
        )
        .await
    }

    async fn purchase(&self, key: &str) -> Reply {
        self.call(
            "POST",
            "/v1/purchases",
            Some(key),
            Some(json!({"product": "3100", "customerNumber": "08132259999"})),
        )
        .await
    }

    async fn circuit_gauge(&self) -> String {
        let metrics = self.call("GET", "/metrics", None, None).await;
        let text = metrics.body.as_str().unwrap_or_default().to_string();
        text.lines()
            .find(|line| line.starts_with("gateway_upstream_circuit_open "))
            .unwrap_or_else(|| panic!("no circuit gauge in\n{text}"))
            .to_string()
    }
}

async fn stored_count(store: &SharedStore, kind: Option<TransactionKind>) -> usize {
    store
        .search_transactions(
            &TransactionFilter {
                kind,
                ..Default::default()
            },
            None,
            10_000,
        )
        .await
        .unwrap()
        .len()
}

/// The circuit is open: refused at once with `Retry-After`, `upstream_unavailable`.
fn assert_refused_at_once(reply: &Reply) {
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(reply.code(), "upstream_unavailable");
    let retry_after: u64 = reply.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(
        (1..=120).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert!(
        reply.took < Duration::from_millis(300),
        "took {:?}",
        reply.took
    );
}

async fn a_blackholed_upstream_opens_the_circuit_and_one_probe_closes_it(backend: Backend) {
    let upstream = Upstream::start(SandboxConfig::default()).await;
    let database = TestDatabase::new(backend).await;
    let store = mpospay_gateway::store::connect(&database.url, 2)
        .await
        .unwrap();
    let key = create_key(&store, "pos-web", Role::Operator).await;
    let cooldown = 3;
    let mut process = gateway(upstream.gateway_process(&database.url), cooldown)
        .start()
        .await;
    let api = Api::new(&process.base_url(), &key);
    assert_eq!(api.circuit_gauge().await, "gateway_upstream_circuit_open 0");

    upstream
        .sandbox
        .set_forced_fault(Some(ForcedFault::Blackhole));
    for _ in 0..FAILURES {
        let inquiry = api.inquire("AF085713323054").await;
        assert_eq!(inquiry.status, 504, "{:?}", inquiry.body);
        assert_eq!(inquiry.code(), "upstream_timeout");
    }
    let opened = Instant::now();
    let received = upstream.sandbox.received().len();
    assert_eq!(received, FAILURES);
    let stored = stored_count(&store, None).await;

    // Open: every upstream route answers at once; nothing reaches the simulator or the database.
    assert_refused_at_once(&api.inquire("AF085713323054").await);
    assert_refused_at_once(&api.purchase("tap-while-open").await);
    assert_refused_at_once(&api.call("GET", "/v1/balance", None, None).await);
    assert_eq!(upstream.sandbox.received().len(), received);
    assert_eq!(stored_count(&store, None).await, stored);
    assert_eq!(api.circuit_gauge().await, "gateway_upstream_circuit_open 1");

    // The upstream is back; the circuit stays open until the cool-down ends.
    upstream.sandbox.set_forced_fault(None);
    assert_refused_at_once(&api.inquire("AF085713323054").await);
    let wait = Duration::from_secs(cooldown) + Duration::from_millis(300);
    actix_rt::time::sleep(wait.saturating_sub(opened.elapsed())).await;
    let probe = api.inquire("AF085713323054").await;
    assert_eq!(probe.status, 200, "{:?}", probe.body);
    assert_eq!(upstream.sandbox.received().len(), received + 1, "one probe");
    assert_eq!(api.circuit_gauge().await, "gateway_upstream_circuit_open 0");
    assert_eq!(api.inquire("AF085713323054").await.status, 200);

    // The purchase refused while open recorded nothing: its key buys now.
    let purchase = api.purchase("tap-while-open").await;
    assert_eq!(purchase.status, 200, "{:?}", purchase.body);
    assert!(!purchase.replayed);
    process.stop().await;
}

async fn a_refused_upstream_opens_the_circuit_for_every_upstream_route(backend: Backend) {
    let upstream = Upstream::start(SandboxConfig::default()).await;
    let database = TestDatabase::new(backend).await;
    let store = mpospay_gateway::store::connect(&database.url, 2)
        .await
        .unwrap();
    let key = create_key(&store, "pos-web", Role::Operator).await;
    // An inquiry that succeeded before the upstream went away, to pay while it is away.
    let refused = format!("http://127.0.0.1:{}", free_port());
    let command = GatewayCommand::new(
        env!("CARGO_BIN_EXE_mpospay-gateway"),
        &database.url,
        &refused,
        &upstream.partner(),
    )
    .env("GATEWAY_UPSTREAM_TIMEOUT_MS", "1000")
    .env("GATEWAY_RATE_LIMIT_REQUESTS_PER_SECOND", "10000")
    .env("GATEWAY_RATE_LIMIT_BURST", "10000");
    let mut process = gateway(command, 60).start().await;
    let api = Api::new(&process.base_url(), &key);

    for _ in 0..FAILURES {
        let inquiry = api.inquire("AF085713323054").await;
        assert_eq!(inquiry.status, 502, "{:?}", inquiry.body);
        assert_eq!(inquiry.code(), "upstream_unavailable");
    }
    let stored = stored_count(&store, None).await;
    assert_eq!(stored, FAILURES, "the refused inquiries, failed");
    assert_refused_at_once(&api.inquire("AF085713323054").await);
    for key in ["buy-1", "buy-2"] {
        assert_refused_at_once(&api.purchase(key).await);
    }
    assert_refused_at_once(&api.call("GET", "/v1/balance", None, None).await);
    assert_eq!(stored_count(&store, None).await, stored, "nothing recorded");
    assert_eq!(
        stored_count(&store, Some(TransactionKind::Purchase)).await,
        0
    );
    // Reads that need no upstream still work.
    assert_eq!(
        api.call("GET", "/v1/transactions", None, None).await.status,
        200
    );
    process.stop().await;
}

async fn advice_of_pending_payments_goes_on_while_the_circuit_is_open(backend: Backend) {
    let upstream = Upstream::start(SandboxConfig::default()).await;
    let database = TestDatabase::new(backend).await;
    let store = mpospay_gateway::store::connect(&database.url, 2)
        .await
        .unwrap();
    let key = create_key(&store, "pos-web", Role::Operator).await;
    let mut process = gateway(upstream.gateway_process(&database.url), 120)
        .env("GATEWAY_PAYMENTS_NOT_FOUND_CONFIRM_SECS", "0")
        .start()
        .await;
    let api = Api::new(&process.base_url(), &key);
    let mut inquiries = Vec::new();
    for bill in ["99000000001", "99000000002", "99000000003"] {
        let inquiry = api.inquire(bill).await;
        assert_eq!(inquiry.status, 200, "{:?}", inquiry.body);
        inquiries.push((bill, inquiry.body["id"].as_str().unwrap().to_string()));
    }
    // The upstream stops answering while the payments are sent: each times out (pending).
    upstream
        .sandbox
        .set_forced_fault(Some(ForcedFault::Blackhole));
    let mut payments = Vec::new();
    for (n, (bill, inquiry)) in inquiries.iter().enumerate() {
        let payment = api
            .call(
                "POST",
                &format!("/v1/bills/{bill}/payment"),
                Some(&format!("pay-{n}")),
                Some(json!({"product": "2042", "inquiryId": inquiry})),
            )
            .await;
        assert_eq!(payment.status, 202, "{:?}", payment.body);
        payments.push(payment.body["id"].as_str().unwrap().to_string());
    }
    assert_refused_at_once(&api.inquire("AF085713323054").await);
    // The upstream is back, the circuit stays open for two minutes; advice goes on and finds
    // the payments never arrived (the blackhole processed nothing).
    upstream.sandbox.set_forced_fault(None);
    let started = Instant::now();
    for id in &payments {
        loop {
            let payment = api
                .call("GET", &format!("/v1/transactions/{id}"), None, None)
                .await;
            if payment.body["final"] == true {
                assert_eq!(payment.body["status"], "failed", "{:?}", payment.body);
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "advice did not settle {id}: {:?}",
                payment.body
            );
            actix_rt::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        upstream
            .sandbox
            .count(mpospay_gateway::h2h::MessageType::Advice)
            >= payments.len()
    );
    assert_refused_at_once(&api.inquire("AF085713323054").await);
    assert_eq!(
        upstream.sandbox.balance(),
        SandboxConfig::default().initial_balance
    );
    process.stop().await;
}
