//! API.md, "Abuse and slow clients", against the gateway binary: floods of made-up or wrong
//! keys are limited per address and never lock a real key out; revocation is prompt; slow
//! request heads and bodies are cut off on any request of a connection; `/healthz`, `/readyz` and
//! `/metrics` write nothing.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use mpospay_gateway::keys::Role;
use mpospay_gateway::sandbox::SandboxConfig;
use mpospay_gateway::store::{self, SharedStore};
use mpospay_testkit::GatewayProcess;
use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both_backends;
use crate::helpers::{
    create_key, spawn_app, spawn_app_with, Backend, TestDatabase, TestOptions, Upstream,
};

both_backends!(
    a_flood_of_made_up_keys_gets_429_and_a_real_key_keeps_working,
    a_real_key_id_with_wrong_secrets_does_not_lock_the_key_out,
    revocation_takes_effect_at_once_here_and_within_seconds_elsewhere,
    health_readiness_and_metrics_write_nothing,
);

/// The default `rate_limit.failed_auth_per_minute`.
const FAILED_AUTH_PER_MINUTE: usize = 60;

/// A gateway process on a fresh database, with its keys.
struct Gateway {
    process: GatewayProcess,
    store: SharedStore,
    database: TestDatabase,
    operator: String,
    admin: String,
    http: awc::Client,
    _upstream: Upstream,
}

/// The gateway binary with a small per-key budget (5/s, burst 30): low enough that spending it
/// on someone else's behalf would show.
async fn start(backend: Backend, env: &[(&str, &str)]) -> Gateway {
    let upstream = Upstream::start(SandboxConfig::default()).await;
    let database = TestDatabase::new(backend).await;
    let store = store::connect(&database.url, 2)
        .await
        .expect("the database takes the migrations");
    let operator = create_key(&store, "pos-web", Role::Operator).await;
    let admin = create_key(&store, "ops", Role::Admin).await;
    let mut command = upstream
        .gateway_process(&database.url)
        .env("GATEWAY_RATE_LIMIT_REQUESTS_PER_SECOND", "5")
        .env("GATEWAY_RATE_LIMIT_BURST", "30");
    for (name, value) in env {
        command = command.env(name, value);
    }
    Gateway {
        process: command.start().await,
        store,
        database,
        operator,
        admin,
        http: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        _upstream: upstream,
    }
}

/// A key of the right shape that nobody was given.
fn made_up_key() -> String {
    let mut rng = rand::rng();
    format!(
        "mpg_{}_{}",
        Alphanumeric.sample_string(&mut rng, 12),
        Alphanumeric.sample_string(&mut rng, 40)
    )
}

/// `key`'s public id with another secret.
fn wrong_secret(key: &str) -> String {
    format!(
        "{}_{}",
        &key[..16],
        Alphanumeric.sample_string(&mut rand::rng(), 40)
    )
}

impl Gateway {
    /// `GET path` with `key`: the status and `Retry-After`.
    async fn get(&self, path: &str, key: &str) -> (u16, Option<String>) {
        let response = self
            .http
            .get(format!("{}{path}", self.process.base_url()))
            .insert_header(("Authorization", format!("Bearer {key}")))
            .send()
            .await
            .expect("the gateway answers");
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        (response.status().as_u16(), retry_after)
    }

    /// `requests` calls with keys from `key`, 8 at a time, interleaved with a call with the
    /// real operator key every 10: the flood's statuses (with whether each 429 had a
    /// Retry-After) and the real key's.
    async fn flood(
        &self,
        requests: usize,
        key: impl Fn() -> String,
    ) -> (Vec<(u16, bool)>, Vec<u16>) {
        let path = "/v1/transactions?limit=1";
        let flood = futures_util::stream::iter((0..requests).map(|_| key()))
            .map(|key| async move {
                let (status, retry_after) = self.get(path, &key).await;
                (
                    status,
                    retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)),
                )
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>();
        let real = async {
            let mut statuses = Vec::new();
            for _ in 0..requests / 10 {
                statuses.push(self.get(path, &self.operator).await.0);
                actix_rt::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        };
        futures_util::future::join(flood, real).await
    }
}

fn count(statuses: &[(u16, bool)], status: u16) -> usize {
    statuses.iter().filter(|(s, _)| *s == status).count()
}

async fn a_flood_of_made_up_keys_gets_429_and_a_real_key_keeps_working(backend: Backend) {
    let gateway = start(backend, &[]).await;
    let began = Instant::now();
    let (flood, real) = gateway.flood(300, made_up_key).await;
    // The budget refills at one a second.
    let allowed = FAILED_AUTH_PER_MINUTE + began.elapsed().as_secs() as usize + 1;
    let refused = count(&flood, 401);
    let limited = count(&flood, 429);
    assert_eq!(
        refused + limited,
        flood.len(),
        "only 401 and 429: {flood:?}"
    );
    assert!(
        (FAILED_AUTH_PER_MINUTE..=allowed).contains(&refused),
        "{refused} made-up keys were answered 401 (looked at), {limited} 429"
    );
    assert!(
        flood.iter().all(|(s, retry)| *s != 429 || *retry),
        "each 429 says when to retry"
    );
    assert!(real.iter().all(|s| *s == 200), "the real key: {real:?}");
    assert_eq!(real.len(), 30);
    gateway.database.finish().await;
}

async fn a_real_key_id_with_wrong_secrets_does_not_lock_the_key_out(backend: Backend) {
    let gateway = start(backend, &[]).await;
    let operator = gateway.operator.clone();
    // Far more than the key's burst of 30.
    let (flood, real) = gateway.flood(200, || wrong_secret(&operator)).await;
    assert_eq!(count(&flood, 200), 0, "a wrong secret never works");
    assert!(
        count(&flood, 429) >= 200 - FAILED_AUTH_PER_MINUTE - 10,
        "{flood:?}"
    );
    assert!(real.iter().all(|s| *s == 200), "the real key: {real:?}");
    // And right after the flood.
    assert_eq!(
        gateway.get("/v1/transactions?limit=1", &operator).await.0,
        200
    );
    gateway.database.finish().await;
}

async fn revocation_takes_effect_at_once_here_and_within_seconds_elsewhere(backend: Backend) {
    let gateway = start(backend, &[]).await;
    let path = "/v1/transactions?limit=1";
    let second = create_key(&gateway.store, "pos-web", Role::Operator).await;
    assert_eq!(gateway.get(path, &gateway.operator).await.0, 200);
    assert_eq!(gateway.get(path, &second).await.0, 200);

    // Revoked through this gateway's API: refused on the very next request.
    let lookup = mpospay_gateway::keys::lookup_of(&gateway.operator).unwrap();
    let id = gateway
        .store
        .find_api_key(lookup)
        .await
        .unwrap()
        .unwrap()
        .id;
    let revoked = gateway
        .http
        .delete(format!("{}/v1/api-keys/{id}", gateway.process.base_url()))
        .insert_header(("Authorization", format!("Bearer {}", gateway.admin)))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    assert_eq!(gateway.get(path, &gateway.operator).await.0, 401);

    // Revoked by another process (`keys revoke`): refused within the key cache's few seconds.
    let lookup = mpospay_gateway::keys::lookup_of(&second).unwrap();
    let record = gateway.store.find_api_key(lookup).await.unwrap().unwrap();
    assert!(gateway
        .store
        .revoke_api_key(record.id, Utc::now())
        .await
        .unwrap());
    let revoked_at = Instant::now();
    loop {
        let (status, _) = gateway.get(path, &second).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(7),
            "a key revoked elsewhere still works after {:?}",
            revoked_at.elapsed()
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    gateway.database.finish().await;
}

/// What the database has done, as far as the probe calls could change it: on SQLite, the
/// database file and its WAL (size and modification time); on Postgres, the committed
/// transactions of the gateway's database.
async fn database_activity(gateway: &Gateway) -> String {
    match gateway.database.sqlite_file() {
        Some(file) => {
            let mut seen = String::new();
            for suffix in ["", "-wal"] {
                let path = format!("{}{suffix}", file.display());
                if let Ok(meta) = std::fs::metadata(&path) {
                    seen += &format!("{suffix}:{}:{:?} ", meta.len(), meta.modified().unwrap());
                }
            }
            seen
        }
        None => {
            let commits: i64 = sqlx::query_scalar(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            )
            .fetch_one(&postgres_pool(&gateway.database.url).await)
            .await
            .unwrap();
            commits.to_string()
        }
    }
}

async fn postgres_pool(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap()
}

async fn health_readiness_and_metrics_write_nothing(backend: Backend) {
    // No reconciler ticks in the way of the count.
    let gateway = start(
        backend,
        &[("GATEWAY_PAYMENTS_RECONCILER_INTERVAL_MS", "600000")],
    )
    .await;
    let base = gateway.process.base_url();
    let calls = 50;
    match backend {
        Backend::Sqlite => {
            // Each call, then a look at the files: the background probe may write once or
            // twice meanwhile, a call may not.
            let mut changes = 0;
            let mut last = database_activity(&gateway).await;
            for i in 0..calls * 3 {
                let path = ["/healthz", "/readyz", "/metrics"][i % 3];
                let answer = gateway
                    .http
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status().as_u16(), 200, "{path}");
                actix_rt::time::sleep(Duration::from_millis(5)).await;
                let now = database_activity(&gateway).await;
                if now != last {
                    changes += 1;
                    last = now;
                }
            }
            assert!(
                changes <= 2,
                "the database files changed {changes} times over {} calls",
                calls * 3
            );
        }
        Backend::Postgres => {
            // Statistics reach pg_stat_database within a second or so of a transaction.
            actix_rt::time::sleep(Duration::from_millis(2500)).await;
            let before: i64 = database_activity(&gateway).await.parse().unwrap();
            let began = Instant::now();
            for i in 0..calls * 3 {
                let path = ["/healthz", "/readyz", "/metrics"][i % 3];
                let answer = gateway
                    .http
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status().as_u16(), 200, "{path}");
            }
            let took = began.elapsed();
            actix_rt::time::sleep(Duration::from_millis(2500)).await;
            let after: i64 = database_activity(&gateway).await.parse().unwrap();
            // The background probe: a few transactions every 2 s; our own look: one each.
            let background = 6 * (took + Duration::from_secs(5)).as_secs() as i64 + 4;
            assert!(
                after - before <= background,
                "{} transactions over {} calls in {took:?}",
                after - before,
                calls * 3
            );
        }
    }
    gateway.database.finish().await;
}

/// The `http.client_timeout_ms` of the slow-client tests.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(1500);

async fn slow_client_gateway() -> Gateway {
    start(
        Backend::Sqlite,
        &[(
            "GATEWAY_HTTP_CLIENT_TIMEOUT_MS",
            &CLIENT_TIMEOUT.as_millis().to_string(),
        )],
    )
    .await
}

/// Reads one answer (head and `Content-Length` body) from a keep-alive connection.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .expect("the connection stays open");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// Sends `bytes` one every 500 ms, and watches the connection meanwhile: how long after the
/// first byte the gateway closed it or answered 408, or `Err` with what it did instead.
async fn trickle(stream: &mut TcpStream, bytes: &[u8]) -> Result<Duration, String> {
    let began = Instant::now();
    let mut buf = [0u8; 4096];
    for byte in bytes {
        if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
            return Ok(began.elapsed());
        }
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0) | Err(_)) => return Ok(began.elapsed()),
            Ok(Ok(n)) => {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if text.starts_with("HTTP/1.1 408") {
                    return Ok(began.elapsed());
                }
                return Err(format!("answered after {:?}: {text}", began.elapsed()));
            }
        }
    }
    Err(format!(
        "still open after {:?}: all was sent",
        began.elapsed()
    ))
}

#[actix_rt::test]
async fn a_slow_second_request_head_is_cut_off_but_an_idle_connection_is_not() {
    let gateway = slow_client_gateway().await;
    let mut stream = TcpStream::connect(gateway.process.addr()).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    stream.write_all(request).await.unwrap();
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Idle between requests for longer than the timeout: keep-alive, not slowness.
    actix_rt::time::sleep(CLIENT_TIMEOUT + Duration::from_millis(500)).await;
    stream.write_all(request).await.unwrap();
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));

    // The third head, a byte every 500 ms: it would take 30 s.
    let slow = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20)
    );
    let cut_after = trickle(&mut stream, slow.as_bytes()).await.unwrap();
    assert!(
        cut_after <= CLIENT_TIMEOUT + Duration::from_millis(1500),
        "cut off only after {cut_after:?}"
    );
    gateway.database.finish().await;
}

#[actix_rt::test]
async fn a_slow_request_body_is_cut_off() {
    let gateway = slow_client_gateway().await;
    let mut stream = TcpStream::connect(gateway.process.addr()).await.unwrap();
    let head = format!(
        "POST /v1/bills/AF085713323054/inquiry HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n",
        gateway.operator
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let body = format!(
        "{{\"product\": \"2042\", \"pad\": \"{}\"}}",
        "a".repeat(970)
    );
    let cut_after = trickle(&mut stream, body.as_bytes()).await.unwrap();
    assert!(
        cut_after <= CLIENT_TIMEOUT + Duration::from_millis(1500),
        "cut off only after {cut_after:?}"
    );
    gateway.database.finish().await;
}

#[actix_rt::test]
async fn result_codes_neither_the_vendors_nor_configured_are_counted_as_other() {
    let mut options = TestOptions::default();
    options.payments.unknown_outcome_codes = vec!["877".into()];
    let app = spawn_app_with(Backend::Sqlite, options).await;
    // The simulator answers a `99ccc…` inquiry with result code ccc; none of these is the
    // vendor's (PROTOCOL.md's table) or configured.
    let mut rng = rand::rng();
    let codes: Vec<String> = (0..40)
        .map(|_| rng.random_range(400..870).to_string())
        .collect();
    for (i, code) in codes.iter().enumerate() {
        let answer = app.inquire(&format!("99{code}{i:06}"), "2042").await;
        assert!(answer.status >= 400, "{code}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["upstream"]["code"], code.as_str());
    }
    assert!(app.inquire("99877000001", "2042").await.status >= 400);
    let metrics = app.send("GET", "/metrics", None, None, None).await;
    let Value::String(text) = metrics.body else {
        panic!("{:?}", metrics.body)
    };
    for code in &codes {
        assert!(
            !text.contains(&format!("result_code=\"{code}\"")),
            "{code} became a label"
        );
    }
    assert!(text.contains(r#"result_code="other""#), "{text}");
    assert!(
        text.contains(r#"result_code="877""#),
        "a configured code keeps its label"
    );
}

#[actix_rt::test]
async fn api_answers_are_not_cached_or_sniffed_and_pages_may_not_be_framed() {
    let app = spawn_app(Backend::Sqlite).await;
    for (path, key) in [
        ("/v1/transactions?limit=1", Some(app.finance_key.as_str())),
        (
            "/v1/transactions/export.csv",
            Some(app.finance_key.as_str()),
        ),
        ("/v1/balance", None),
        ("/v1/no/such/route", None),
    ] {
        let answer = app.send("GET", path, key, None, None).await;
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    for path in ["/docs/", "/openapi.json", "/ui/"] {
        let answer = app.send("GET", path, None, None, None).await;
        assert_eq!(answer.status, 200, "{path}");
        let policy = answer.header("content-security-policy").unwrap_or_default();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy:?}"
        );
        assert!(policy.contains("script-src 'self'"), "{path}: {policy:?}");
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}

/// `GET /v1/transactions` with a made-up key, as forwarded for `client` (if any).
async fn failed_as(gateway: &Gateway, client: Option<&str>) -> u16 {
    let mut request = gateway
        .http
        .get(format!(
            "{}/v1/transactions?limit=1",
            gateway.process.base_url()
        ))
        .insert_header(("Authorization", format!("Bearer {}", made_up_key())));
    if let Some(client) = client {
        // What the client wrote first, then what the proxy appended.
        request = request.insert_header(("X-Forwarded-For", format!("198.51.100.99, {client}")));
    }
    request
        .send()
        .await
        .expect("the gateway answers")
        .status()
        .as_u16()
}

#[actix_rt::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let limit = [("GATEWAY_RATE_LIMIT_FAILED_AUTH_PER_MINUTE", "5")];
    // Behind a trusted proxy (the test, on 127.0.0.1): each forwarded client has its own limit.
    let mut env = limit.to_vec();
    env.push(("GATEWAY_RATE_LIMIT_TRUSTED_PROXIES", "127.0.0.1"));
    let behind_proxy = start(Backend::Sqlite, &env).await;
    for _ in 0..5 {
        assert_eq!(failed_as(&behind_proxy, Some("203.0.113.1")).await, 401);
    }
    assert_eq!(failed_as(&behind_proxy, Some("203.0.113.1")).await, 429);
    assert_eq!(failed_as(&behind_proxy, Some("203.0.113.2")).await, 401);
    // The client's own first entry is not believed: the proxy's entry decides.
    assert_eq!(failed_as(&behind_proxy, Some("203.0.113.1")).await, 429);
    assert_eq!(
        failed_as(&behind_proxy, None).await,
        401,
        "the proxy's own budget"
    );
    behind_proxy.database.finish().await;

    // Without trusted proxies the header is ignored: a new address per request does not help.
    let direct = start(Backend::Sqlite, &limit).await;
    let mut statuses = Vec::new();
    for i in 0..7 {
        statuses.push(failed_as(&direct, Some(&format!("203.0.113.{i}"))).await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    direct.database.finish().await;
}

/// Sends `GET /healthz` on `stream`: whether it was answered 200 (`false`: closed unanswered).
async fn healthz_on(stream: &mut TcpStream) -> bool {
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        _ => false,
    }
}

#[actix_rt::test]
async fn one_address_may_hold_only_so_many_connections() {
    let gateway = start(
        Backend::Sqlite,
        &[("GATEWAY_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "3")],
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(gateway.process.addr()).await.unwrap();
        assert!(healthz_on(&mut stream).await);
        open.push(stream);
    }
    let mut fourth = TcpStream::connect(gateway.process.addr()).await.unwrap();
    assert!(
        !healthz_on(&mut fourth).await,
        "a fourth connection is closed"
    );
    // Closing one frees its place.
    drop(open.pop());
    let began = Instant::now();
    loop {
        let mut again = TcpStream::connect(gateway.process.addr()).await.unwrap();
        if healthz_on(&mut again).await {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "the place was not freed"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    for stream in &mut open {
        assert!(healthz_on(stream).await, "the others still work");
    }
    gateway.database.finish().await;
}
