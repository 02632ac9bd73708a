//! The finance page in a real browser: a real gateway (SQLite, the built-in simulator as its
//! upstream) with a few dozen transactions, then `tests/e2e/finance.mjs` drives Debian's
//! Chromium through it with playwright-core: sign in, search, detail, daily report, CSV download,
//! load more, the deposit reconciliation of a day with a top-up (its break in the table and on
//! the chart), sign out. With UPDATE_SCREENSHOT=1 it also refreshes `docs/finance-page.png` and
//! `docs/finance-reconciliation.png`.
//!
//! Needs `node`, `/usr/bin/chromium` and `tests/e2e/node_modules`: `scripts/install-browser-deps`
//! installs them. Without them this test fails and says so; it never skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mpospay_gateway::config::{RawSettings, Settings};
use mpospay_gateway::keys::{self, Role};
use mpospay_gateway::sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use mpospay_gateway::startup::{Application, RunOptions};
use mpospay_gateway::store::{self, SharedStore};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The deposit top-up the reconciliation view must show as a break.
const TOP_UP: i64 = 1_000_000;

/// A gateway on port 0 with its own simulator and SQLite file, and two API keys.
struct Gateway {
    address: String,
    finance_key: String,
    operator_key: String,
    http: awc::Client,
    server: actix_web::dev::ServerHandle,
    _sandbox: SandboxHandle,
    _dir: tempfile::TempDir,
}

async fn spawn_gateway() -> Gateway {
    let config = SandboxConfig::default();
    let sandbox = Sandbox::new(config.clone())
        .spawn(TcpListener::bind("127.0.0.1:0").unwrap())
        .await
        .expect("the simulator starts");

    let dir = tempfile::tempdir().expect("a temp dir");
    let database_url = format!("sqlite://{}/gw.db", dir.path().display());
    let settings = settings(&sandbox.base_url(), &database_url, &config);
    let store = store::connect(&database_url, 4)
        .await
        .expect("the database opens and migrates");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build_with(
        settings,
        RunOptions {
            workers: Some(2),
            ..RunOptions::default()
        },
        store.clone(),
        listener,
    )
    .expect("the application builds");
    let port = app.port();
    let server = app.handle();
    actix_rt::spawn(app.run_until_stopped());

    Gateway {
        address: format!("http://127.0.0.1:{port}"),
        finance_key: create_key(&store, "finance-team", Role::Finance).await,
        operator_key: create_key(&store, "pos-web", Role::Operator).await,
        http: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        server,
        _sandbox: sandbox,
        _dir: dir,
    }
}

/// The defaults of every setting, with the simulator as the upstream (as `serve --sandbox`).
fn settings(upstream_url: &str, database_url: &str, sandbox: &SandboxConfig) -> Settings {
    let mut settings = RawSettings {
        listen: "127.0.0.1:0".into(),
        database_url: Some(database_url.into()),
        database_max_connections: 4,
        ..RawSettings::default()
    }
    .validate()
    .expect("default settings are valid");
    settings.upstream = Some(sandbox.upstream_settings(upstream_url.to_string()));
    settings.zone = chrono_tz::Asia::Jakarta;
    settings
}

async fn create_key(store: &SharedStore, client: &str, role: Role) -> String {
    let new = keys::generate(client, role, Utc::now());
    store.insert_api_key(&new.record).await.expect("key stored");
    new.plain
}

impl Gateway {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        idempotency_key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.address))
            .insert_header(("Authorization", format!("Bearer {key}")));
        if let Some(idempotency_key) = idempotency_key {
            request = request.insert_header(("Idempotency-Key", idempotency_key));
        }
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .unwrap_or_else(|e| panic!("{path}: the gateway answers: {e}"));
        let bytes = response.body().limit(8 << 20).await.expect("a body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (response.status().as_u16(), body)
    }

    /// Inquires and pays `bill_number`; returns the payment's HTTP status and body.
    async fn inquire_and_pay(&self, bill_number: &str, product: &str) -> (u16, Value) {
        let (status, inquiry) = self
            .call(
                "POST",
                &format!("/v1/bills/{bill_number}/inquiry"),
                &self.operator_key,
                None,
                Some(json!({"product": product})),
            )
            .await;
        assert_eq!(status, 200, "inquiry of {bill_number}: {inquiry}");
        let inquiry_id = inquiry["id"].as_str().expect("an inquiry id");
        self.call(
            "POST",
            &format!("/v1/bills/{bill_number}/payment"),
            &self.operator_key,
            Some(&uuid::Uuid::now_v7().to_string()),
            Some(json!({"product": product, "inquiryId": inquiry_id})),
        )
        .await
    }

    async fn purchase(&self, product: &str, customer_number: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/v1/purchases",
            &self.operator_key,
            Some(&uuid::Uuid::now_v7().to_string()),
            Some(json!({"product": product, "customerNumber": customer_number})),
        )
        .await
    }
}

/// Fails (never skips) with the command that installs what is missing.
fn require_browser_tools(root: &Path) {
    let install = "run scripts/install-browser-deps (CI does)";
    let node = Command::new("node").arg("--version").output();
    assert!(
        matches!(&node, Ok(output) if output.status.success()),
        "the browser test needs `node` on PATH: {install}"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "the browser test needs Debian's Chromium at {CHROMIUM}: {install}"
    );
    assert!(
        root.join("tests/e2e/node_modules/playwright-core").is_dir(),
        "the browser test needs tests/e2e/node_modules (playwright-core): {install}"
    );
}

#[actix_rt::test]
async fn finance_staff_search_inspect_report_and_export_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    require_browser_tools(&root);
    let gateway = spawn_gateway().await;

    // More than one page (50) of history: BPJS bills paid through the day, with a top-up of the
    // deposit outside the gateway halfway (the reconciliation's known break)…
    for i in 0..25 {
        if i == 12 {
            gateway
                ._sandbox
                .sandbox()
                .adjust_deposit(TOP_UP)
                .expect("the top-up");
        }
        let (status, body) = gateway
            .inquire_and_pay(&format!("888800000{:04}", 1000 + i), "1501")
            .await;
        assert_eq!(status, 200, "BPJS payment {i}: {body}");
    }
    // …electricity, water and telephone bills, a biller's decline, a lost answer (pending)…
    for (bill_number, product) in [
        ("532110000011", "1001"),
        ("0100234567", "1201"),
        ("0215550123", "1301"),
    ] {
        let (status, body) = gateway.inquire_and_pay(bill_number, product).await;
        assert_eq!(status, 200, "payment of {bill_number}: {body}");
    }
    let (status, declined) = gateway.inquire_and_pay("98051000001", "1301").await;
    assert_eq!(status, 422, "a biller's decline: {declined}");
    let (status, pending) = gateway.inquire_and_pay("97006000001", "1001").await;
    assert_eq!(status, 202, "a lost answer: {pending}");
    // …a prepaid purchase, and last the vendor's example bill: 304000 + 1550.
    let (status, purchase) = gateway.purchase("3100", "08132259999").await;
    assert_eq!(status, 200, "purchase: {purchase}");
    let (status, payment) = gateway.inquire_and_pay("AF085713323054", "2042").await;
    assert_eq!(status, 200, "payment: {payment}");
    assert_eq!(payment["total"], 305550, "{payment}");
    assert_eq!(payment["status"], "succeeded", "{payment}");

    // The API the page uses answers the finance key.
    let (status, page) = gateway
        .call(
            "GET",
            "/v1/transactions?limit=1",
            &gateway.finance_key,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "GET /v1/transactions for finance: {page}");

    let created_at: DateTime<Utc> = payment["createdAt"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("createdAt");
    let report_date = created_at
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .format("%Y-%m-%d")
        .to_string();
    let artifacts = root.join("target/e2e");
    std::fs::create_dir_all(&artifacts).expect("target/e2e");
    // The README's screenshot is refreshed on request (UPDATE_SCREENSHOT=1), so that a test run
    // leaves the work tree as it found it.
    let (screenshot, reconciliation_screenshot) = match std::env::var_os("UPDATE_SCREENSHOT") {
        Some(_) => (
            root.join("docs/finance-page.png"),
            root.join("docs/finance-reconciliation.png"),
        ),
        None => (
            artifacts.join("finance-page.png"),
            artifacts.join("finance-reconciliation.png"),
        ),
    };

    let mut command = Command::new("node");
    command
        .arg(root.join("tests/e2e/finance.mjs"))
        .current_dir(root.join("tests/e2e"))
        .env("GATEWAY_URL", &gateway.address)
        .env("FINANCE_KEY", &gateway.finance_key)
        .env("OPERATOR_KEY", &gateway.operator_key)
        .env("PAYMENT_ID", payment["id"].as_str().unwrap())
        .env("PAYMENT_TRX_ID", payment["trxId"].as_str().unwrap())
        .env("PURCHASE_TRX_ID", purchase["trxId"].as_str().unwrap())
        .env("REPORT_DATE", &report_date)
        .env("TRANSACTION_COUNT", "63")
        .env("TOP_UP", TOP_UP.to_string())
        .env("CHROMIUM", CHROMIUM)
        .env("SCREENSHOT", &screenshot)
        .env("RECONCILIATION_SCREENSHOT", &reconciliation_screenshot)
        .env("ARTIFACTS", &artifacts);
    // The gateway's workers run on their own threads; the reconciler on this one: keep it free.
    let output = actix_rt::task::spawn_blocking(move || command.output())
        .await
        .expect("the node process is awaited")
        .expect("node starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "tests/e2e/finance.mjs failed ({}); screenshots in {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status,
        artifacts.display()
    );

    gateway.server.stop(true).await;
}
