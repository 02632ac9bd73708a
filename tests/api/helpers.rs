//! `spawn_app()`: the real gateway on port 0, with the simulator as its upstream and a fresh
//! database per test, SQLite or Postgres. Typed helpers speak to it over HTTP.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use mpospay_gateway::clock::SystemClock;
use mpospay_gateway::config::{
    DepositSettings, HttpSettings, PaymentSettings, RateLimitSettings, Settings, UpstreamSettings,
    WebhookSettings,
};
use mpospay_gateway::domain::Transaction;
use mpospay_gateway::h2h::{BreakerSettings, MessageType};
use mpospay_gateway::keys::{self, Role};
use mpospay_gateway::sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use mpospay_gateway::startup::{Application, RunOptions};
use mpospay_gateway::store::{self, SharedStore, TransactionFilter};
use mpospay_testkit::{GatewayCommand, Partner};
use serde_json::{json, Value};

pub use mpospay_testkit::{Backend, TestDatabase};

/// Runs one async test body against both databases, as two test functions.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mpospay_testkit::both_backends!(#[actix_rt::test] $($name),+);
    };
}

/// Knobs a test may turn.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub reconciler: bool,
    pub upstream_timeout: Duration,
    pub late_delay: Duration,
    pub payments: PaymentSettings,
    /// Generous by default, so that only the rate-limit tests ever meet the limit.
    pub rate_limit: RateLimitSettings,
    /// Off (no encryption key) by default: the webhook tests turn them on.
    pub webhooks: WebhookSettings,
    /// The circuit breaker toward the upstream (the gateway's default unless a test says).
    pub breaker: BreakerSettings,
    /// Deposit monitoring: the defaults (off, first check after 300 s) unless a test turns it.
    pub deposit: DepositSettings,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            reconciler: true,
            upstream_timeout: Duration::from_millis(1000),
            late_delay: Duration::from_millis(2000),
            payments: PaymentSettings {
                advice_schedule_secs: vec![0],
                reconciler_interval_ms: 100,
                ..PaymentSettings::default()
            },
            rate_limit: RateLimitSettings {
                requests_per_second: 10_000,
                burst: 10_000,
                ..RateLimitSettings::default()
            },
            webhooks: WebhookSettings::default(),
            breaker: BreakerSettings::default(),
            deposit: DepositSettings::default(),
        }
    }
}

/// The simulator a test's gateways talk to (shared by a second instance or a restart).
#[derive(Clone)]
pub struct Upstream {
    pub sandbox: Sandbox,
    pub url: String,
    _handle: Arc<SandboxHandle>,
}

impl Upstream {
    pub async fn start(config: SandboxConfig) -> Self {
        let handle = Sandbox::new(config)
            .spawn(TcpListener::bind("127.0.0.1:0").unwrap())
            .await
            .expect("sandbox starts");
        Self {
            sandbox: handle.sandbox().clone(),
            url: handle.base_url(),
            _handle: Arc::new(handle),
        }
    }

    /// The partner account this simulator accepts.
    pub fn partner(&self) -> Partner {
        let config = self.sandbox.config();
        Partner {
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            password: config.password.clone(),
            key: config.key.clone(),
            account: config.account.clone(),
            institution_code: config.institution_code.clone(),
        }
    }

    /// The gateway binary on `database_url` with this simulator as its upstream, configured
    /// through its environment with the settings [`TestOptions::default`] gives the in-process
    /// gateway: start it with [`GatewayCommand::start`].
    pub fn gateway_process(&self, database_url: &str) -> GatewayCommand {
        GatewayCommand::new(
            env!("CARGO_BIN_EXE_mpospay-gateway"),
            database_url,
            &self.url,
            &self.partner(),
        )
        .env("GATEWAY_DATABASE_MAX_CONNECTIONS", "8")
        .env("GATEWAY_UPSTREAM_TIMEOUT_MS", "1000")
        .env("GATEWAY_PAYMENTS_ADVICE_SCHEDULE_SECS", "[0]")
        .env("GATEWAY_PAYMENTS_RECONCILER_INTERVAL_MS", "100")
        .env("GATEWAY_RATE_LIMIT_REQUESTS_PER_SECOND", "10000")
        .env("GATEWAY_RATE_LIMIT_BURST", "10000")
    }
}

pub struct TestApp {
    pub address: String,
    pub sandbox: Sandbox,
    pub upstream: Upstream,
    pub store: SharedStore,
    pub database: Arc<TestDatabase>,
    pub operator_key: String,
    pub other_operator_key: String,
    pub finance_key: String,
    pub admin_key: String,
    pub http: awc::Client,
    pub server: actix_web::dev::ServerHandle,
}

/// The API keys a test's gateway knows.
pub struct TestKeys {
    pub operator: String,
    pub other_operator: String,
    pub finance: String,
    pub admin: String,
}

impl TestKeys {
    /// Stores one key per role (two operators, of different clients).
    pub async fn create(store: &SharedStore) -> Self {
        Self {
            operator: create_key(store, "pos-web", Role::Operator).await,
            other_operator: create_key(store, "kiosk", Role::Operator).await,
            finance: create_key(store, "finance-team", Role::Finance).await,
            admin: create_key(store, "ops", Role::Admin).await,
        }
    }
}

/// The answer to one HTTP call.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .expect("a transaction id")
            .to_string()
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, TestOptions::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: TestOptions) -> TestApp {
    let upstream = Upstream::start(SandboxConfig {
        late_delay: options.late_delay,
        ..SandboxConfig::default()
    })
    .await;
    let database = Arc::new(TestDatabase::new(backend).await);
    spawn_gateway(upstream, database, options).await
}

/// A gateway on an existing simulator and database (a second instance, or a restart), with a
/// new key per role.
pub async fn spawn_gateway(
    upstream: Upstream,
    database: Arc<TestDatabase>,
    options: TestOptions,
) -> TestApp {
    spawn_gateway_with_keys(upstream, database, options, None).await
}

/// Like [`spawn_gateway`]; with `keys`, on a database that already holds them (a gateway
/// cannot store new ones in a read-only file).
pub async fn spawn_gateway_with_keys(
    upstream: Upstream,
    database: Arc<TestDatabase>,
    options: TestOptions,
    keys: Option<TestKeys>,
) -> TestApp {
    let settings = gateway_settings(&upstream.url, &database.url, &options);
    let store = store::connect(&settings.database_url, 8)
        .await
        .expect("database opens and migrates");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build_with(
        settings.clone(),
        RunOptions {
            workers: Some(2),
            reconciler: options.reconciler,
            clock: Arc::new(SystemClock),
        },
        store.clone(),
        listener,
    )
    .expect("application builds");
    let port = app.port();
    let server = app.handle();
    actix_rt::spawn(app.run_until_stopped());
    let keys = match keys {
        Some(keys) => keys,
        None => TestKeys::create(&store).await,
    };
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        sandbox: upstream.sandbox.clone(),
        upstream,
        store,
        database,
        operator_key: keys.operator,
        other_operator_key: keys.other_operator,
        finance_key: keys.finance,
        admin_key: keys.admin,
        http: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        server,
    }
}

pub fn gateway_settings(upstream_url: &str, database_url: &str, options: &TestOptions) -> Settings {
    let config = SandboxConfig::default();
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.to_string(),
        database_max_connections: 8,
        log_format: "pretty".into(),
        upstream: Some(UpstreamSettings {
            timeout: options.upstream_timeout,
            breaker: options.breaker,
            ..config.upstream_settings(upstream_url.to_string())
        }),
        zone: chrono_tz::Asia::Jakarta,
        payments: options.payments.clone(),
        rate_limit: options.rate_limit.clone(),
        webhooks: options.webhooks.clone(),
        deposit: options.deposit,
        http: HttpSettings::default(),
    }
}

pub async fn create_key(store: &SharedStore, client: &str, role: Role) -> String {
    let new = keys::generate(client, role, Utc::now());
    store.insert_api_key(&new.record).await.expect("key stored");
    new.plain
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request with a Bearer key, optional Idempotency-Key and a raw body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        idempotency_key: Option<&str>,
        body: Option<&[u8]>,
    ) -> Answer {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path));
        if let Some(key) = key {
            request = request.insert_header(("Authorization", format!("Bearer {key}")));
        }
        if let Some(idempotency_key) = idempotency_key {
            request = request.insert_header(("Idempotency-Key", idempotency_key));
        }
        let mut response = match body {
            Some(body) => {
                request
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body.to_vec())
                    .await
            }
            None => request.send().await,
        }
        .expect("the gateway answers");
        let bytes = response
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .expect("a body");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
        }
    }

    pub async fn post(
        &self,
        path: &str,
        key: &str,
        idempotency_key: Option<&str>,
        body: Value,
    ) -> Answer {
        let body = body.to_string();
        self.send(
            "POST",
            path,
            Some(key),
            idempotency_key,
            Some(body.as_bytes()),
        )
        .await
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.send("GET", path, Some(key), None, None).await
    }

    pub async fn inquire(&self, bill_number: &str, product: &str) -> Answer {
        self.post(
            &format!("/v1/bills/{bill_number}/inquiry"),
            &self.operator_key,
            None,
            json!({"product": product}),
        )
        .await
    }

    pub async fn pay(
        &self,
        bill_number: &str,
        product: &str,
        inquiry_id: &str,
        key: &str,
    ) -> Answer {
        self.post(
            &format!("/v1/bills/{bill_number}/payment"),
            &self.operator_key,
            Some(key),
            json!({"product": product, "inquiryId": inquiry_id}),
        )
        .await
    }

    /// Inquires and pays in one go; returns the payment answer.
    pub async fn inquire_and_pay(&self, bill_number: &str, product: &str) -> Answer {
        let inquiry = self.inquire(bill_number, product).await;
        assert_eq!(
            inquiry.status, 200,
            "inquiry of {bill_number}: {:?}",
            inquiry.body
        );
        self.pay(
            bill_number,
            product,
            &inquiry.id(),
            &uuid::Uuid::now_v7().to_string(),
        )
        .await
    }

    pub async fn purchase(&self, product: &str, customer_number: &str, key: &str) -> Answer {
        self.post(
            "/v1/purchases",
            &self.operator_key,
            Some(key),
            json!({"product": product, "customerNumber": customer_number}),
        )
        .await
    }

    pub async fn transaction(&self, id: &str) -> Answer {
        self.get(&format!("/v1/transactions/{id}"), &self.operator_key)
            .await
    }

    pub async fn advise(&self, id: &str) -> Answer {
        self.post(
            &format!("/v1/transactions/{id}/advice"),
            &self.operator_key,
            None,
            json!({}),
        )
        .await
    }

    /// Polls a transaction until its status is `status` (or panics after `within`).
    pub async fn wait_for_status(&self, id: &str, status: &str, within: Duration) -> Answer {
        let started = Instant::now();
        loop {
            let answer = self.transaction(id).await;
            if answer.body["status"] == status {
                return answer;
            }
            if started.elapsed() > within {
                panic!(
                    "transaction {id} did not become {status}: {:?}",
                    answer.body
                );
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn upstream_count(&self, message_type: MessageType) -> usize {
        self.sandbox.count(message_type)
    }

    pub fn upstream_total(&self) -> usize {
        self.sandbox.received().len()
    }

    /// Polls `GET /readyz` until it answers 200 (or panics after `within`).
    pub async fn wait_ready(&self, within: Duration) {
        let started = Instant::now();
        loop {
            let ready = self.send("GET", "/readyz", None, None, None).await;
            if ready.status == 200 {
                return;
            }
            assert!(
                started.elapsed() < within,
                "not ready within {within:?}: {:?}",
                ready.body
            );
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every payment transaction the database holds.
    pub async fn stored_payments(&self) -> Vec<Transaction> {
        stored_payments(&self.store).await
    }
}

/// Every payment transaction `store` holds.
pub async fn stored_payments(store: &SharedStore) -> Vec<Transaction> {
    store
        .search_transactions(
            &TransactionFilter {
                kind: Some(mpospay_gateway::domain::TransactionKind::Payment),
                ..Default::default()
            },
            None,
            100_000,
        )
        .await
        .expect("the store answers")
}
