//! Events and webhooks end to end (API.md, "Notifications"): a receiver on 127.0.0.1 verifies
//! every delivery with the Standard Webhooks specification's own Rust implementation (the
//! `standardwebhooks` crate's `Webhook::verify`), never with the gateway's code.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Utc;
use mpospay_gateway::config::WebhookSettings;
use mpospay_gateway::store::{self, SharedStore};
use mpospay_gateway::webhooks::{ensure_key_file, Event, RetrySchedule};
use mpospay_testkit::free_port;
use serde_json::{json, Value};
use standardwebhooks::Webhook;

use crate::both_backends;
use crate::helpers::{
    create_key, spawn_app, spawn_app_with, Backend, TestApp, TestDatabase, TestOptions, Upstream,
};
use mpospay_gateway::keys::Role;
use mpospay_gateway::sandbox::SandboxConfig;

// ---------------------------------------------------------------------------------------------
// The receiver

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Hit {
    fn id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether the specification's library accepts it with `secret`.
    fn verifies_with(&self, secret: &str) -> bool {
        Webhook::new(secret)
            .expect("a whsec_ secret")
            .verify(&self.body, &self.headers)
            .is_ok()
    }
}

#[derive(Clone, Default)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Statuses to answer, in turn; 204 once they are used up.
    statuses: Arc<Mutex<VecDeque<u16>>>,
    /// How long to take over each answer, in turn; none once they are used up.
    delays: Arc<Mutex<VecDeque<Duration>>>,
    delay: Duration,
    /// Requests being answered, per (path, webhook-id), and how often one arrived while another
    /// of the same was still being answered.
    in_flight: Arc<Mutex<HashMap<(String, String), usize>>>,
    overlaps: Arc<Mutex<usize>>,
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let mut headers = http::HeaderMap::new();
    for (name, value) in request.headers() {
        headers.append(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let hit = Hit {
        path: request.path().to_string(),
        headers,
        body: body.to_vec(),
    };
    let key = (hit.path.clone(), hit.id().to_string());
    {
        let mut in_flight = state.in_flight.lock().unwrap();
        let count = in_flight.entry(key.clone()).or_default();
        if *count > 0 {
            *state.overlaps.lock().unwrap() += 1;
        }
        *count += 1;
    }
    state.hits.lock().unwrap().push(hit);
    let delay = state
        .delays
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(state.delay);
    if !delay.is_zero() {
        actix_rt::time::sleep(delay).await;
    }
    *state.in_flight.lock().unwrap().get_mut(&key).unwrap() -= 1;
    let status = state.statuses.lock().unwrap().pop_front().unwrap_or(204);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

struct Receiver {
    base: String,
    state: ReceiverState,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// A receiver on `port` (0: any free one).
    fn start_on(port: u16, state: ReceiverState) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            state,
            server: handle,
        }
    }

    fn start() -> Self {
        Self::start_on(0, ReceiverState::default())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    async fn wait_for_hits(&self, count: usize, within: Duration) -> Vec<Hit> {
        let started = Instant::now();
        loop {
            let hits = self.hits();
            if hits.len() >= count {
                return hits;
            }
            assert!(
                started.elapsed() < within,
                "the receiver got {} of {count} deliveries within {within:?}",
                hits.len()
            );
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway with webhooks on

/// Webhooks on, with a short retry schedule: a key file in `dir`.
fn webhook_settings(dir: &Path) -> WebhookSettings {
    WebhookSettings {
        retry_schedule: RetrySchedule::from_secs(&[1, 1, 1, 1, 1, 1]),
        timeout: Duration::from_secs(2),
        encryption_key_file: Some(ensure_key_file(dir).unwrap()),
        rotation_overlap: Duration::from_secs(3600),
        ca_file: None,
        concurrency: 8,
    }
}

async fn spawn_with_webhooks(backend: Backend) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = TestOptions {
        webhooks: webhook_settings(dir.path()),
        ..TestOptions::default()
    };
    (spawn_app_with(backend, options).await, dir)
}

/// Creates an endpoint; its id and secret.
async fn create_endpoint(app: &TestApp, body: Value) -> (String, String) {
    let created = app
        .post("/v1/webhook-endpoints", &app.admin_key, None, body)
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (created.id(), secret)
}

/// The events of the operator's (or another key's) feed, polled until `count` are there.
async fn wait_for_feed(app: &TestApp, key: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let feed = app.get("/v1/events?limit=500", key).await;
        assert_eq!(feed.status, 200, "{:?}", feed.body);
        let events = feed.body["data"].as_array().unwrap().clone();
        if events.len() >= count {
            return events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the feed shows {} of {count} events",
            events.len()
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn deliveries(app: &TestApp, endpoint: &str) -> Vec<Value> {
    let log = app
        .get(
            &format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
            &app.admin_key,
        )
        .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    log.body["data"].as_array().unwrap().clone()
}

async fn wait_for_delivery_status(app: &TestApp, endpoint: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let log = deliveries(app, endpoint).await;
        if let Some(found) = log.iter().find(|d| d["status"] == status) {
            return found.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no {status} delivery: {log:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

both_backends!(
    a_lost_answer_is_announced_pending_then_succeeded_verified_and_in_the_feed,
    a_receiver_down_then_failing_is_retried_on_schedule_with_one_webhook_id,
    during_a_rotation_the_old_and_the_new_secret_both_verify,
    a_deleted_endpoint_gets_nothing_more,
    endpoint_routes_are_admin_only_and_the_secret_is_never_shown_again_or_stored_in_clear,
    without_an_encryption_key_the_endpoint_routes_say_why,
    a_gateway_killed_mid_delivery_delivers_after_its_restart,
);

async fn a_lost_answer_is_announced_pending_then_succeeded_verified_and_in_the_feed(
    backend: Backend,
) {
    let (app, _dir) = spawn_with_webhooks(backend).await;
    let receiver = Receiver::start();
    let (_, secret) = create_endpoint(
        &app,
        json!({"url": receiver.url("/hook"), "client": "pos-web"}),
    )
    .await;

    // 97001…: the simulator applies the payment and drops the connection before answering.
    let payment = app.inquire_and_pay("97001000001", "2042").await;
    assert_eq!(payment.status, 202, "{:?}", payment.body);
    let id = payment.id();

    let hits = receiver.wait_for_hits(2, Duration::from_secs(15)).await;
    let events: Vec<Value> = hits.iter().map(Hit::event).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["transaction.pending", "transaction.succeeded"]);
    for (hit, event) in hits.iter().zip(&events) {
        assert!(hit.verifies_with(&secret), "verified with the library");
        assert_eq!(hit.id(), event["id"], "webhook-id is the event id");
        assert_eq!(event["data"]["transaction"]["id"], id.as_str());
        assert!(event["data"]["transaction"].get("exchanges").is_none());
        let mut tampered = hit.clone();
        tampered.body = String::from_utf8(hit.body.clone())
            .unwrap()
            .replace("\"amount\":", "\"amount\":1")
            .into_bytes();
        assert_ne!(tampered.body, hit.body);
        assert!(
            !tampered.verifies_with(&secret),
            "a tampered body is rejected"
        );
    }
    assert_eq!(events[1]["data"]["transaction"]["status"], "succeeded");
    // The transaction in the event is the one the API shows.
    let shown = app.transaction(&id).await.body;
    assert_eq!(
        events[1]["data"]["transaction"]["updatedAt"],
        shown["updatedAt"]
    );

    // The feed: the same events, in order; another client sees none of them.
    let feed = wait_for_feed(&app, &app.operator_key, 2).await;
    assert_eq!(feed, events, "the feed shows exactly the bodies sent");
    let finance = wait_for_feed(&app, &app.finance_key, 2).await;
    assert_eq!(finance, events);
    let other = app.get("/v1/events", &app.other_operator_key).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.body["data"], json!([]));
    assert!(other.body["nextCursor"].is_string(), "{:?}", other.body);
    // The cursor of the last page gives only newer events, also once the page is empty.
    let after = app
        .get(
            &format!("/v1/events?after={}", events[1]["id"].as_str().unwrap()),
            &app.operator_key,
        )
        .await;
    assert_eq!(after.body["data"], json!([]));
    assert_eq!(after.body["nextCursor"], events[1]["id"]);
    let bad = app.get("/v1/events?after=nope", &app.operator_key).await;
    assert_eq!((bad.status, bad.error_code()), (400, "invalid_request"));
    assert_eq!(bad.body["error"]["field"], "after");
}

async fn a_receiver_down_then_failing_is_retried_on_schedule_with_one_webhook_id(backend: Backend) {
    let (app, _dir) = spawn_with_webhooks(backend).await;
    let port = free_port();
    let (endpoint, secret) = create_endpoint(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["transaction.succeeded"]}),
    )
    .await;
    let payment = app.inquire_and_pay("AF085713323054", "2042").await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);

    // Down: the first attempt is refused, and waits for the next one on the schedule.
    let started = Instant::now();
    loop {
        let log = deliveries(&app, &endpoint).await;
        if log
            .first()
            .is_some_and(|d| d["attempts"].as_i64() >= Some(1))
        {
            assert_eq!(log.len(), 1);
            assert_eq!(log[0]["status"], "pending");
            assert_eq!(log[0]["type"], "transaction.succeeded");
            assert!(log[0]["lastError"].is_string(), "{log:?}");
            assert!(log[0]["nextAttemptAt"].is_string(), "{log:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log:?}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    // The queue gauges come from the background probe: shown within one probe interval.
    let metrics = metrics_showing(&app, "gateway_webhook_queue_depth 1\n").await;
    assert!(
        !metrics.contains("gateway_webhook_oldest_pending_age_seconds 0\n"),
        "{metrics}"
    );
    assert!(metrics.contains("gateway_webhook_deliveries_total{outcome=\"retrying\"}"));
    // Up, answering 500 once, then 204.
    let state = ReceiverState::default();
    state.statuses.lock().unwrap().push_back(500);
    let receiver = Receiver::start_on(port, state);
    let delivered = wait_for_delivery_status(&app, &endpoint, "delivered").await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2, "one 500, then delivered");
    assert!(
        delivered["attempts"].as_i64().unwrap() >= 3,
        "{delivered:?}"
    );
    assert_eq!(delivered["lastStatusCode"], 204);
    let id = hits[0].id().to_string();
    assert!(hits
        .iter()
        .all(|hit| hit.id() == id && hit.verifies_with(&secret)));
    assert_eq!(delivered["eventId"], id.as_str());
    let metrics = metrics_showing(&app, "gateway_webhook_queue_depth 0\n").await;
    assert!(metrics.contains("gateway_webhook_deliveries_total{outcome=\"delivered\"}"));

    // A manual retry sends it again, with the same webhook-id.
    let retried = app
        .post(
            &format!(
                "/v1/webhook-deliveries/{}/retry",
                delivered["id"].as_str().unwrap()
            ),
            &app.admin_key,
            None,
            json!({}),
        )
        .await;
    assert_eq!(retried.status, 202, "{:?}", retried.body);
    assert_eq!(retried.body["status"], "pending");
    let hits = receiver.wait_for_hits(3, Duration::from_secs(10)).await;
    assert_eq!(hits[2].id(), id);
    assert!(hits[2].verifies_with(&secret));
    receiver.server.stop(false).await;
}

async fn during_a_rotation_the_old_and_the_new_secret_both_verify(backend: Backend) {
    let (app, _dir) = spawn_with_webhooks(backend).await;
    let receiver = Receiver::start();
    let (endpoint, old) = create_endpoint(&app, json!({"url": receiver.url("/hook")})).await;
    let rotated = app
        .post(
            &format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"),
            &app.admin_key,
            None,
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(rotated.body["previousSecretExpiresAt"].is_string());

    let purchase = app.purchase("3100", "08132259999", "rotate-1").await;
    assert_eq!(purchase.status, 200, "{:?}", purchase.body);
    let hits = receiver.wait_for_hits(1, Duration::from_secs(10)).await;
    let signatures = hits[0].headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(
        hits[0].verifies_with(&old),
        "a receiver with only the old secret"
    );
    assert!(
        hits[0].verifies_with(&new),
        "a receiver with only the new secret"
    );
    let unknown = app
        .post(
            &format!(
                "/v1/webhook-endpoints/{}/rotate-secret",
                uuid::Uuid::now_v7()
            ),
            &app.admin_key,
            None,
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
}

async fn a_deleted_endpoint_gets_nothing_more(backend: Backend) {
    let (app, _dir) = spawn_with_webhooks(backend).await;
    let receiver = Receiver::start();
    let (kept, _) = create_endpoint(&app, json!({"url": receiver.url("/kept")})).await;
    let (gone, _) = create_endpoint(&app, json!({"url": receiver.url("/gone")})).await;
    let deleted = app
        .send(
            "DELETE",
            &format!("/v1/webhook-endpoints/{gone}"),
            Some(&app.admin_key),
            None,
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let again = app
        .send(
            "DELETE",
            &format!("/v1/webhook-endpoints/{gone}"),
            Some(&app.admin_key),
            None,
            None,
        )
        .await;
    assert_eq!(again.status, 404);
    let listed = app.get("/v1/webhook-endpoints", &app.admin_key).await;
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [kept.as_str()]);

    for n in 0..3 {
        let purchase = app
            .purchase("3100", &format!("0813225999{n}"), &format!("deleted-{n}"))
            .await;
        assert_eq!(purchase.status, 200, "{:?}", purchase.body);
    }
    receiver.wait_for_hits(3, Duration::from_secs(10)).await;
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3);
    assert!(
        hits.iter().all(|hit| hit.path == "/kept"),
        "nothing sent to the deleted one"
    );
}

async fn endpoint_routes_are_admin_only_and_the_secret_is_never_shown_again_or_stored_in_clear(
    backend: Backend,
) {
    let (app, _dir) = spawn_with_webhooks(backend).await;
    let (endpoint, secret) = create_endpoint(
        &app,
        json!({"url": "https://hooks.example/mpospay", "client": "pos-web",
               "events": ["transaction.succeeded", "transaction.failed"]}),
    )
    .await;
    let some_id = uuid::Uuid::now_v7();
    let routes = [
        ("POST", "/v1/webhook-endpoints".to_string()),
        ("GET", "/v1/webhook-endpoints".to_string()),
        ("DELETE", format!("/v1/webhook-endpoints/{endpoint}")),
        (
            "POST",
            format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"),
        ),
        (
            "GET",
            format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
        ),
        ("POST", format!("/v1/webhook-deliveries/{some_id}/retry")),
    ];
    for key in [&app.operator_key, &app.finance_key] {
        for (method, path) in &routes {
            let body = json!({"url": "https://hooks.example/x"}).to_string();
            let answer = app
                .send(method, path, Some(key), None, Some(body.as_bytes()))
                .await;
            assert_eq!(
                (answer.status, answer.error_code()),
                (403, "forbidden"),
                "{method} {path}"
            );
        }
    }
    // Bad input names its field.
    for (body, field) in [
        (json!({"url": "ftp://hooks.example/x"}), "url"),
        (json!({"url": "https://user:pw@hooks.example/x"}), "url"),
        (
            json!({"url": format!("https://hooks.example/{}", "a".repeat(2048))}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example/x", "events": ["transaction.sent"]}),
            "events",
        ),
    ] {
        let answer = app
            .post("/v1/webhook-endpoints", &app.admin_key, None, body)
            .await;
        assert_eq!((answer.status, answer.error_code()), (422, "invalid_field"));
        assert_eq!(answer.body["error"]["field"], field, "{:?}", answer.body);
    }

    let listed = app.get("/v1/webhook-endpoints", &app.admin_key).await;
    assert_eq!(listed.status, 200);
    let text = listed.body.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("secret"),
        "{text}"
    );
    assert_eq!(listed.body["data"][0]["client"], "pos-web");
    assert_eq!(
        listed.body["data"][0]["events"],
        json!(["transaction.succeeded", "transaction.failed"])
    );
    let encoded = secret.trim_start_matches("whsec_");
    for stored in stored_endpoint_text(&app).await {
        assert!(!stored.contains(encoded), "the secret is stored in clear");
    }
}

/// Everything the database holds about endpoints, as text (the SQLite files' bytes).
async fn stored_endpoint_text(app: &TestApp) -> Vec<String> {
    match app.database.sqlite_file() {
        Some(file) => {
            let mut texts = Vec::new();
            for suffix in ["", "-wal"] {
                let path = format!("{}{suffix}", file.display());
                if let Ok(bytes) = std::fs::read(&path) {
                    texts.push(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
            assert!(!texts.is_empty());
            texts
        }
        None => {
            let pool = sqlx::PgPool::connect(&app.database.url).await.unwrap();
            let rows: Vec<String> = sqlx::query_scalar(
                "SELECT concat_ws('|', url, client, events, secret_encrypted, \
                 previous_secret_encrypted) FROM webhook_endpoints",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            assert!(!rows.is_empty());
            assert!(rows.iter().all(|row| row.contains("|v1:")), "{rows:?}");
            rows
        }
    }
}

async fn without_an_encryption_key_the_endpoint_routes_say_why(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app
        .post(
            "/v1/webhook-endpoints",
            &app.admin_key,
            None,
            json!({"url": "https://hooks.example/x"}),
        )
        .await;
    assert_eq!(
        (answer.status, answer.error_code()),
        (503, "webhooks_unavailable")
    );
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("GATEWAY_WEBHOOKS_ENCRYPTION_KEY_FILE"),
        "{message}"
    );
    let listed = app.get("/v1/webhook-endpoints", &app.admin_key).await;
    assert_eq!(listed.error_code(), "webhooks_unavailable");
    // The feed does not need the key.
    let feed = app.get("/v1/events", &app.admin_key).await;
    assert_eq!(feed.status, 200, "{:?}", feed.body);
}

/// The gateway binary with webhooks on (key file in `dir`, short schedule, 2 s timeout).
fn webhook_gateway(
    upstream: &Upstream,
    database_url: &str,
    dir: &Path,
) -> mpospay_testkit::GatewayCommand {
    upstream
        .gateway_process(database_url)
        .env(
            "GATEWAY_WEBHOOKS_ENCRYPTION_KEY_FILE",
            ensure_key_file(dir).unwrap(),
        )
        .env("GATEWAY_WEBHOOKS_RETRY_SCHEDULE_SECS", "[1, 1, 1, 1, 1, 1]")
        .env("GATEWAY_WEBHOOKS_TIMEOUT_MS", "2000")
}

/// A minimal client for a gateway process.
async fn call(
    base: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let request = client
        .request(
            awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{base}{path}"),
        )
        .insert_header(("Authorization", format!("Bearer {key}")));
    let mut response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .expect("the gateway answers");
    let bytes = response.body().await.unwrap();
    (
        response.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn a_gateway_killed_mid_delivery_delivers_after_its_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(SandboxConfig::default()).await;
    let database = TestDatabase::new(backend).await;
    let store: SharedStore = store::connect(&database.url, 2).await.unwrap();
    let admin = create_key(&store, "ops", Role::Admin).await;
    let mut gateway = webhook_gateway(&upstream, &database.url, dir.path())
        .start()
        .await;
    // The first request hangs (past the gateway's timeout); the next are answered at once.
    let state = ReceiverState::default();
    state
        .delays
        .lock()
        .unwrap()
        .push_back(Duration::from_secs(60));
    let receiver = Receiver::start_on(0, state);
    let (status, created) = call(
        &gateway.base_url(),
        "POST",
        "/v1/webhook-endpoints",
        &admin,
        Some(json!({"url": receiver.url("/hook")})),
    )
    .await;
    assert_eq!(status, 201, "{created:?}");
    let secret = created["secret"].as_str().unwrap().to_string();
    let endpoint = created["id"].as_str().unwrap().to_string();

    // An event committed by another process: this gateway finds it by polling.
    let event = Event::deposit_low(900_000, 1_000_000, Utc::now());
    store.insert_event(&event).await.unwrap();
    receiver.wait_for_hits(1, Duration::from_secs(10)).await;
    gateway.kill();

    gateway.restart().await;
    let hits = receiver.wait_for_hits(2, Duration::from_secs(20)).await;
    assert!(hits.iter().all(|hit| hit.id() == event.id.as_str()));
    assert!(hits.iter().all(|hit| hit.verifies_with(&secret)));
    let started = Instant::now();
    loop {
        let (status, log) = call(
            &gateway.base_url(),
            "GET",
            &format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
            &admin,
            None,
        )
        .await;
        assert_eq!(status, 200);
        if log["data"][0]["status"] == "delivered" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log:?}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let log = gateway.log();
    assert!(
        !log.contains(secret.trim_start_matches("whsec_")),
        "the secret is in the log"
    );
    gateway.stop().await;
    database.finish().await;
}

#[actix_rt::test]
async fn two_gateways_on_one_postgres_deliver_each_event_once_per_endpoint() {
    const EVENTS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(SandboxConfig::default()).await;
    let database = TestDatabase::new(Backend::Postgres).await;
    let store: SharedStore = store::connect(&database.url, 4).await.unwrap();
    let admin = create_key(&store, "ops", Role::Admin).await;
    let mut first = webhook_gateway(&upstream, &database.url, dir.path())
        .start()
        .await;
    let mut second = webhook_gateway(&upstream, &database.url, dir.path())
        .start()
        .await;
    let state = ReceiverState {
        delay: Duration::from_millis(30),
        ..ReceiverState::default()
    };
    let receiver = Receiver::start_on(0, state);
    for path in ["/a", "/b"] {
        let (status, created) = call(
            &first.base_url(),
            "POST",
            "/v1/webhook-endpoints",
            &admin,
            Some(json!({"url": receiver.url(path)})),
        )
        .await;
        assert_eq!(status, 201, "{created:?}");
    }
    let mut ids = Vec::new();
    for n in 0..EVENTS {
        let event = Event::deposit_low(n as i64, 1_000_000, Utc::now());
        store.insert_event(&event).await.unwrap();
        ids.push(event.id.to_string());
    }
    receiver
        .wait_for_hits(2 * EVENTS, Duration::from_secs(60))
        .await;
    // Time for a duplicate to show up, if there were one.
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    let hits = receiver.hits();
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for hit in &hits {
        *counts
            .entry((hit.path.clone(), hit.id().to_string()))
            .or_default() += 1;
    }
    for path in ["/a", "/b"] {
        for id in &ids {
            assert_eq!(
                counts.get(&(path.to_string(), id.clone())),
                Some(&1),
                "{path} {id}"
            );
        }
    }
    assert_eq!(hits.len(), 2 * EVENTS);
    assert_eq!(*receiver.state.overlaps.lock().unwrap(), 0);
    first.stop().await;
    second.stop().await;
    database.finish().await;
}

/// `/metrics` once it shows `line` (the probe behind the gauges runs every
/// `PROBE_INTERVAL`); fails with the last scrape after a few intervals.
async fn metrics_showing(app: &TestApp, line: &str) -> String {
    let probes = mpospay_gateway::http::probes::PROBE_INTERVAL
        + mpospay_gateway::http::probes::PROBE_TIMEOUT;
    let deadline = Instant::now() + probes * 2;
    loop {
        let scrape = app.send("GET", "/metrics", None, None, None).await;
        let text = scrape.body.as_str().unwrap_or_default().to_string();
        if text.contains(line) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {line:?} in: {text}");
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}
