//! The webhook delivery engine against real receivers on 127.0.0.1: every delivery is verified
//! with the Standard Webhooks specification's own Rust implementation (the `standardwebhooks`
//! crate's `Webhook::verify`), not with the gateway's code; failures of every kind are retried
//! on schedule; `https://` receivers are verified against the CA the client trusts.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Utc;
use mpospay_gateway::clock::SystemClock;
use mpospay_gateway::domain::TransactionStatus;
use mpospay_gateway::webhooks::{
    attempt_delivery, client_config, live_secrets, sign, AttemptOutcome, ClaimedDelivery,
    DeliveryStatus, DeliveryUpdate, EndpointSecret, Event, RetrySchedule, Rotation, WebhookSender,
};
use serde_json::json;
use standardwebhooks::Webhook;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_millis(800);

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    content_type: String,
    body: Vec<u8>,
    verified: bool,
}

/// A receiver that verifies with `secret` and answers `statuses` in turn (the last repeats);
/// an unverifiable request gets 400 whatever the list says.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct ReceiverState {
    secret: String,
    statuses: Arc<Vec<u16>>,
    delay: Duration,
    received: Arc<Mutex<Vec<Received>>>,
}

/// The receiver's verification, with the specification's library: its `verify` takes an
/// `http` 1 header map.
fn verify(secret: &str, headers: &actix_web::http::header::HeaderMap, body: &[u8]) -> bool {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    Webhook::new(secret)
        .expect("a valid secret")
        .verify(body, &map)
        .is_ok()
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let verified = verify(&state.secret, request.headers(), &body);
    let count = {
        let mut received = state.received.lock().unwrap();
        received.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
            content_type: header("content-type"),
            body: body.to_vec(),
            verified,
        });
        received.len()
    };
    if !state.delay.is_zero() {
        actix_rt::time::sleep(state.delay).await;
    }
    if !verified {
        return HttpResponse::BadRequest().body("signature invalid");
    }
    let status = state.statuses[(count - 1).min(state.statuses.len() - 1)];
    let mut answer = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if status == 302 {
        answer.insert_header(("location", "/elsewhere"));
    }
    answer.body("a receiver's answer, ignored")
}

async fn elsewhere(state: web::Data<ReceiverState>) -> HttpResponse {
    state.received.lock().unwrap().push(Received {
        id: "followed a redirect".into(),
        timestamp: 0,
        content_type: String::new(),
        body: Vec::new(),
        verified: false,
    });
    HttpResponse::Ok().finish()
}

async fn spawn_receiver(secret: &EndpointSecret, statuses: &[u16], delay: Duration) -> Receiver {
    let received = Arc::new(Mutex::new(Vec::new()));
    let state = ReceiverState {
        secret: secret.expose().to_string(),
        statuses: Arc::new(statuses.to_vec()),
        delay,
        received: received.clone(),
    };
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route("/hook", web::post().to(receive))
            .route("/elsewhere", web::to(elsewhere))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_rt::spawn(server);
    Receiver {
        url: format!("http://127.0.0.1:{port}/hook"),
        received,
    }
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn sender() -> WebhookSender {
    WebhookSender::new(client_config(None).unwrap(), TIMEOUT)
}

fn transaction_event() -> Event {
    let transaction = json!({
        "id": "0193a8f0-0000-7000-8000-000000000001", "type": "payment", "status": "succeeded",
        "final": true, "product": "2042", "billNumber": "AF085713323054", "amount": 304000,
        "updatedAt": "2026-12-01T07:30:25.123456Z"
    });
    Event::for_transaction(TransactionStatus::Succeeded, transaction, Utc::now()).unwrap()
}

fn claimed(
    event: &Event,
    url: &str,
    secrets: Vec<EndpointSecret>,
    attempts: u32,
) -> ClaimedDelivery {
    ClaimedDelivery {
        event_id: event.id.clone(),
        body: event.to_json(),
        url: url.to_string(),
        secrets,
        attempts,
    }
}

async fn attempt(delivery: &ClaimedDelivery) -> DeliveryUpdate {
    attempt_delivery(&sender(), &RetrySchedule::default(), delivery, &SystemClock).await
}

#[actix_web::test]
async fn every_delivery_verifies_and_keeps_its_webhook_id_across_retries() {
    let secret = EndpointSecret::generate();
    let receiver = spawn_receiver(&secret, &[500, 204], Duration::ZERO).await;
    let event = transaction_event();
    let mut delivery = claimed(&event, &receiver.url, vec![secret.clone()], 0);

    let first = attempt(&delivery).await;
    assert_eq!(first.status, DeliveryStatus::Pending);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.last_status_code, Some(500));
    assert_eq!(
        first.last_error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    assert!(first.next_attempt_at.unwrap() > Utc::now());

    delivery.attempts = first.attempts;
    let second = attempt(&delivery).await;
    assert_eq!(second.status, DeliveryStatus::Delivered);
    assert_eq!(second.attempts, 2);
    assert_eq!(second.last_status_code, Some(204));
    assert_eq!(second.last_error, None);

    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let now = Utc::now().timestamp();
    for request in &received {
        assert!(request.verified, "{request:?}");
        assert_eq!(request.id, event.id.as_str());
        assert_eq!(request.content_type, "application/json");
        assert!((now - request.timestamp).abs() <= 5, "{request:?}");
        assert_eq!(request.body, event.to_json());
    }
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["type"], "transaction.succeeded");
    assert_eq!(body["id"], event.id.as_str());
    assert_eq!(body["data"]["transaction"]["billNumber"], "AF085713323054");
}

#[actix_web::test]
async fn the_receiver_rejects_a_tampered_body() {
    let secret = EndpointSecret::generate();
    let receiver = spawn_receiver(&secret, &[200], Duration::ZERO).await;
    let event = transaction_event();
    let body = event.to_json();
    let signed = sign(event.id.as_str(), Utc::now().timestamp(), &body, &[secret]).unwrap();
    let tampered = String::from_utf8(body)
        .unwrap()
        .replace("304000", "3040000")
        .into_bytes();
    let outcome = sender().send(&receiver.url, &tampered, &signed).await;
    assert_eq!(
        outcome,
        AttemptOutcome::Retry {
            status: Some(400),
            error: "HTTP 400 Bad Request".into()
        }
    );
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert!(!received[0].verified);
}

#[actix_web::test]
async fn during_a_rotation_receivers_with_the_old_or_the_new_secret_both_verify() {
    let old = EndpointSecret::generate();
    let now = Utc::now();
    let rotation = Rotation::start(now, Duration::from_secs(86_400));
    let with_old = spawn_receiver(&old, &[200], Duration::ZERO).await;
    let with_new = spawn_receiver(&rotation.secret, &[200], Duration::ZERO).await;
    let event = transaction_event();
    let previous = Some((old.clone(), rotation.previous_until));

    let secrets = live_secrets(rotation.secret.clone(), previous.clone(), now);
    assert_eq!(secrets.len(), 2);
    for receiver in [&with_old, &with_new] {
        let update = attempt(&claimed(&event, &receiver.url, secrets.clone(), 0)).await;
        assert_eq!(update.status, DeliveryStatus::Delivered, "{update:?}");
        assert!(receiver.received()[0].verified);
    }

    // After the overlap only the new secret signs: the old receiver no longer verifies.
    let secrets = live_secrets(rotation.secret.clone(), previous, rotation.previous_until);
    let update = attempt(&claimed(&event, &with_old.url, secrets.clone(), 0)).await;
    assert_eq!(update.status, DeliveryStatus::Pending);
    assert_eq!(update.last_status_code, Some(400));
    let update = attempt(&claimed(&event, &with_new.url, secrets, 0)).await;
    assert_eq!(update.status, DeliveryStatus::Delivered);
}

fn unused_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn retried(update: &DeliveryUpdate) -> (Option<u16>, String) {
    assert_eq!(update.status, DeliveryStatus::Pending, "{update:?}");
    assert_eq!(update.attempts, 1);
    assert!(update.next_attempt_at.is_some());
    (update.last_status_code, update.last_error.clone().unwrap())
}

#[actix_web::test]
async fn a_receiver_that_is_down_is_retried() {
    let event = transaction_event();
    let url = format!("http://127.0.0.1:{}/hook", unused_port());
    let update = attempt(&claimed(&event, &url, vec![EndpointSecret::generate()], 0)).await;
    assert_eq!(retried(&update), (None, "connection refused".into()));
}

#[actix_web::test]
async fn a_receiver_slower_than_the_timeout_is_retried_without_waiting_for_it() {
    let secret = EndpointSecret::generate();
    let receiver = spawn_receiver(&secret, &[200], Duration::from_secs(5)).await;
    let started = std::time::Instant::now();
    let update = attempt(&claimed(
        &transaction_event(),
        &receiver.url,
        vec![secret],
        0,
    ))
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        retried(&update),
        (None, "timeout: no answer within 800 ms".into())
    );
}

#[actix_web::test]
async fn a_redirect_is_not_followed_and_is_retried() {
    let secret = EndpointSecret::generate();
    let receiver = spawn_receiver(&secret, &[302], Duration::ZERO).await;
    let update = attempt(&claimed(
        &transaction_event(),
        &receiver.url,
        vec![secret],
        0,
    ))
    .await;
    assert_eq!(retried(&update), (Some(302), "HTTP 302 Found".into()));
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(received[0].verified);
}

#[actix_web::test]
async fn a_receiver_that_resets_the_connection_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    actix_rt::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            // Read part of the request, then close with the rest unread: the kernel answers
            // with a reset.
            let mut buffer = [0u8; 16];
            let _ = stream.read(&mut buffer).await;
            actix_rt::time::sleep(Duration::from_millis(50)).await;
            drop(stream);
        }
    });
    let url = format!("http://127.0.0.1:{port}/hook");
    let update = attempt(&claimed(
        &transaction_event(),
        &url,
        vec![EndpointSecret::generate()],
        0,
    ))
    .await;
    let (status, error) = retried(&update);
    assert_eq!(status, None);
    // The kernel's reset may come while sending or while reading the answer.
    assert!(error.starts_with("connection reset while"), "{error}");
}

#[actix_web::test]
async fn the_schedule_ends_in_failed() {
    let secret = EndpointSecret::generate();
    let receiver = spawn_receiver(&secret, &[503], Duration::ZERO).await;
    let schedule = RetrySchedule::from_secs(&[0, 0]);
    let event = transaction_event();
    let mut delivery = claimed(&event, &receiver.url, vec![secret], 0);
    let mut statuses = Vec::new();
    loop {
        let update = attempt_delivery(&sender(), &schedule, &delivery, &SystemClock).await;
        statuses.push(update.status);
        delivery.attempts = update.attempts;
        if update.status != DeliveryStatus::Pending {
            assert_eq!(update.last_status_code, Some(503));
            break;
        }
    }
    assert_eq!(
        statuses,
        vec![
            DeliveryStatus::Pending,
            DeliveryStatus::Pending,
            DeliveryStatus::Failed
        ]
    );
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(received
        .iter()
        .all(|r| r.id == event.id.as_str() && r.verified));
}

/// A test CA and a certificate it issued for 127.0.0.1.
struct TestPki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mpospay webhooks test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
        )
        .unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

/// An https receiver: TLS with the test certificate, then a minimal HTTP/1.1 exchange that
/// verifies the delivery with the specification's library and answers 200 (or 400).
async fn spawn_tls_receiver(pki: &TestPki, secret: &EndpointSecret) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let secret = secret.expose().to_string();
    actix_rt::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                continue; // the client refused our certificate
            };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            let (head, body) = loop {
                let read = tls.read(&mut buffer).await.unwrap();
                assert!(read > 0, "the client closed early");
                request.extend_from_slice(&buffer[..read]);
                let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&request[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break (head, request[end + 4..end + 4 + length].to_vec());
                }
            };
            let mut headers = actix_web::http::header::HeaderMap::new();
            for line in head.lines().skip(1) {
                let (name, value) = line.split_once(':').unwrap();
                headers.append(
                    name.trim().to_ascii_lowercase().parse().unwrap(),
                    value.trim().parse().unwrap(),
                );
            }
            let verified = verify(&secret, &headers, &body);
            let header = |name: &str| {
                headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            log.lock().unwrap().push(Received {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
                content_type: header("content-type"),
                body,
                verified,
            });
            let status = if verified {
                "200 OK"
            } else {
                "400 Bad Request"
            };
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            tls.write_all(answer.as_bytes()).await.unwrap();
            let _ = tls.shutdown().await;
        }
    });
    Receiver {
        url: format!("https://127.0.0.1:{port}/hook"),
        received,
    }
}

fn write_ca(dir: &Path, pem: &str) -> std::path::PathBuf {
    let path = dir.join("ca.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

#[actix_web::test]
async fn an_https_receiver_is_reached_when_its_ca_is_trusted() {
    let pki = test_pki();
    let secret = EndpointSecret::generate();
    let receiver = spawn_tls_receiver(&pki, &secret).await;
    let dir = tempfile::tempdir().unwrap();
    let tls = client_config(Some(&write_ca(dir.path(), &pki.ca_pem))).unwrap();
    let event = transaction_event();
    let delivery = claimed(&event, &receiver.url, vec![secret], 0);
    let update = attempt_delivery(
        &WebhookSender::new(tls, TIMEOUT),
        &RetrySchedule::default(),
        &delivery,
        &SystemClock,
    )
    .await;
    assert_eq!(update.status, DeliveryStatus::Delivered, "{update:?}");
    assert_eq!(update.last_status_code, Some(200));
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].verified);
    assert_eq!(received[0].id, event.id.as_str());
    assert_eq!(received[0].body, event.to_json());
}

#[actix_web::test]
async fn an_https_receiver_whose_certificate_does_not_verify_is_a_tls_failure_and_retried() {
    let pki = test_pki();
    let secret = EndpointSecret::generate();
    let receiver = spawn_tls_receiver(&pki, &secret).await;
    // The system's roots only: the test CA is unknown.
    let update = attempt(&claimed(
        &transaction_event(),
        &receiver.url,
        vec![secret],
        0,
    ))
    .await;
    let (status, error) = retried(&update);
    assert_eq!(status, None);
    assert!(error.starts_with("TLS failure"), "{error}");
    assert!(receiver.received().is_empty(), "nothing was sent");
}

/// Captures what the gateway's code logs on this thread.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn no_log_line_error_text_or_debug_output_holds_a_secret() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (secret, old) = (EndpointSecret::generate(), EndpointSecret::generate());
    let receiver = spawn_receiver(&secret, &[500], Duration::ZERO).await;
    let secrets = vec![secret.clone(), old.clone()];
    let refused = format!("http://127.0.0.1:{}/hook", unused_port());
    let mut shown = String::new();
    for url in [receiver.url.as_str(), refused.as_str()] {
        let delivery = claimed(&transaction_event(), url, secrets.clone(), 0);
        let update = attempt(&delivery).await;
        assert_eq!(update.status, DeliveryStatus::Pending);
        shown.push_str(&format!("{update:?} {delivery:?}"));
    }
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("webhook attempt failed"), "{logged}");
    for secret in [&secret, &old] {
        let encoded = secret.expose().strip_prefix("whsec_").unwrap();
        assert!(!shown.contains(encoded), "{shown}");
        assert!(!logged.contains(encoded), "{logged}");
    }
}

/// The Python receiver of docs/webhooks.md, run as written, when `python3` (or
/// `$WEBHOOKS_TEST_PYTHON`) can import the specification's `standardwebhooks` package.
fn docs_receiver_python() -> Option<String> {
    let python = std::env::var("WEBHOOKS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = std::process::Command::new(&python)
        .args(["-c", "import standardwebhooks"])
        .output()
        .is_ok_and(|output| output.status.success());
    importable.then_some(python)
}

fn docs_python_example() -> String {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/webhooks.md")).unwrap();
    let start = docs.find("```python\n").expect("a python example") + "```python\n".len();
    let length = docs[start..].find("\n```").unwrap();
    docs[start..start + length].to_string()
}

fn event_at(status: TransactionStatus, transaction_id: &str, updated_at: &str) -> Event {
    let transaction =
        json!({"id": transaction_id, "status": status.as_str(), "updatedAt": updated_at});
    Event::for_transaction(status, transaction, Utc::now()).unwrap()
}

#[actix_web::test]
async fn the_python_receiver_of_the_docs_verifies_deduplicates_and_orders() {
    let Some(python) = docs_receiver_python() else {
        eprintln!("skipped: python3 cannot import standardwebhooks (pip install standardwebhooks)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("receiver.py");
    std::fs::write(&script, docs_python_example()).unwrap();
    let secret = EndpointSecret::generate();
    let port = unused_port();
    let child = std::process::Command::new(python)
        .arg(&script)
        .env("MPOSPAY_WEBHOOK_SECRET", secret.expose())
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiver did not start"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("http://127.0.0.1:{port}/webhooks");
    let pending = event_at(TransactionStatus::Pending, "t1", "2026-12-01T07:30:25.1Z");
    let succeeded = event_at(
        TransactionStatus::Succeeded,
        "t1",
        "2026-12-01T07:31:00.123456Z",
    );
    let late = event_at(TransactionStatus::Pending, "t1", "2026-12-01T07:30:59Z");
    let secrets = vec![secret.clone()];
    for event in [&pending, &succeeded, &pending, &late] {
        let update = attempt(&claimed(event, &url, secrets.clone(), 0)).await;
        assert_eq!(update.status, DeliveryStatus::Delivered, "{update:?}");
        assert_eq!(update.last_status_code, Some(204));
    }
    // A rotation's two signatures verify with the one secret the receiver holds.
    let rotated = event_at(TransactionStatus::Failed, "t2", "2026-12-01T08:00:00Z");
    let two = vec![EndpointSecret::generate(), secret.clone()];
    let update = attempt(&claimed(&rotated, &url, two, 0)).await;
    assert_eq!(update.status, DeliveryStatus::Delivered, "{update:?}");
    // Tampered, or signed with another secret: 400.
    let body = late.to_json();
    let signed = sign(late.id.as_str(), Utc::now().timestamp(), &body, &secrets).unwrap();
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let outcome = sender().send(&url, &tampered, &signed).await;
    assert!(
        matches!(
            outcome,
            AttemptOutcome::Retry {
                status: Some(400),
                ..
            }
        ),
        "{outcome:?}"
    );
    let stranger = attempt(&claimed(&late, &url, vec![EndpointSecret::generate()], 0)).await;
    assert_eq!(stranger.last_status_code, Some(400));

    let mut child = child;
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        lines,
        vec![
            format!("applied {} t1 pending", pending.id),
            format!("applied {} t1 succeeded", succeeded.id),
            format!("duplicate {}", pending.id),
            format!("older {} pending", late.id),
            format!("applied {} t2 failed", rotated.id),
        ]
    );
}
