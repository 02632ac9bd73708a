//! What the gateway keeps of an upstream answer (issue 14, findings 4 and 5): the echo of our
//! signature is never stored or shown, and a hostile upstream's numbers past PROTOCOL.md's sizes
//! and texts of hundreds of kilobytes neither break the daily report nor bloat a page.
//!
//! The hostile upstream is a proxy in front of the simulator that rewrites its answers.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::Utc;
use mpospay_gateway::h2h::MessageType;
use mpospay_gateway::sandbox::SandboxConfig;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

use crate::both_backends;
use crate::helpers::{
    spawn_app, spawn_gateway, Backend, TestApp, TestDatabase, TestOptions, Upstream,
};

both_backends!(
    the_echoed_signature_is_neither_stored_nor_shown,
    migration_0007_scrubs_signatures_stored_before,
    amounts_past_the_protocol_sizes_are_not_an_answer,
    huge_texts_are_cut_and_pages_stay_small,
    inquiries_do_not_count_in_the_report_sums,
);

/// How the proxy rewrites one answer (the parsed JSON body, and the message type sent).
type Rewrite = Arc<dyn Fn(&str, &mut Value) + Send + Sync>;

/// A proxy in front of the simulator that rewrites answers with the current rewrite.
struct HostileUpstream {
    rewrite: Arc<Mutex<Option<Rewrite>>>,
    server: actix_web::dev::ServerHandle,
}

impl HostileUpstream {
    fn set(&self, rewrite: impl Fn(&str, &mut Value) + Send + Sync + 'static) {
        *self.rewrite.lock().unwrap() = Some(Arc::new(rewrite));
    }
}

/// A gateway whose upstream is a rewriting proxy in front of a fresh simulator.
async fn spawn_behind_proxy(backend: Backend) -> (TestApp, HostileUpstream) {
    let mut upstream = Upstream::start(SandboxConfig::default()).await;
    let rewrite: Arc<Mutex<Option<Rewrite>>> = Arc::default();
    let target = format!("{}/finsbu/h2h", upstream.url);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new({
        let rewrite = rewrite.clone();
        move || {
            let rewrite = rewrite.clone();
            let target = target.clone();
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let rewrite = rewrite.clone();
                let target = target.clone();
                async move {
                    let mut forward = awc::Client::new().post(&target);
                    for name in ["authorization", "user-agent", "origin", "content-type"] {
                        if let Some(value) = request.headers().get(name) {
                            forward = forward.insert_header((name, value.clone()));
                        }
                    }
                    let mut answer = forward.send_body(body.clone()).await.unwrap();
                    let bytes = answer.body().limit(1 << 20).await.unwrap();
                    let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let message_type = sent["type"].as_str().unwrap_or("").to_string();
                    let mut value: Value = serde_json::from_slice(&bytes).unwrap();
                    let current = rewrite.lock().unwrap().clone();
                    if let Some(rewrite) = current {
                        rewrite(&message_type, &mut value);
                    }
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(value.to_string())
                }
            }))
        }
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    upstream.url = format!("http://127.0.0.1:{port}");
    let database = Arc::new(TestDatabase::new(backend).await);
    let app = spawn_gateway(upstream, database, TestOptions::default()).await;
    (
        app,
        HostileUpstream {
            rewrite,
            server: handle,
        },
    )
}

async fn the_echoed_signature_is_neither_stored_nor_shown(backend: Backend) {
    let (app, proxy) = spawn_behind_proxy(backend).await;
    // Record every signature the upstream echoes, as the proxy passes it on.
    let echoed: Arc<Mutex<Vec<String>>> = Arc::default();
    proxy.set({
        let echoed = echoed.clone();
        move |_, answer| {
            if let Some(signature) = answer["signature"].as_str() {
                echoed.lock().unwrap().push(signature.to_string());
            }
        }
    });
    let payment = app.inquire_and_pay("AF085713323054", "2042").await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);
    let echoed = echoed.lock().unwrap().clone();
    assert_eq!(echoed.len(), 2, "the inquiry's and the payment's answers");
    assert!(echoed.iter().all(|s| s.len() == 32));

    let payment_view = app.transaction(&payment.id()).await;
    let inquiry_view = app
        .transaction(payment.body["inquiryId"].as_str().unwrap())
        .await;
    let finance_view = app
        .get(
            &format!("/v1/transactions/{}", payment.id()),
            &app.finance_key,
        )
        .await;
    for view in [&payment_view, &inquiry_view, &finance_view] {
        assert_eq!(view.status, 200);
        let exchanges = view.body["exchanges"].as_array().unwrap();
        assert_eq!(exchanges[0]["response"]["resultCode"], "000");
        assert!(
            exchanges[0]["response"].get("signature").is_none(),
            "{:?}",
            exchanges[0]["response"]
        );
        let text = view.body.to_string();
        for signature in &echoed {
            assert!(!text.contains(signature.as_str()), "{text}");
        }
    }
    // Nor in the database.
    let id = uuid::Uuid::parse_str(&payment.id()).unwrap();
    for exchange in app.store.list_exchanges(id).await.unwrap() {
        let stored = exchange.response.unwrap();
        for signature in &echoed {
            assert!(!stored.contains(signature.as_str()), "{stored}");
        }
    }
    proxy.server.stop(false).await;
}

/// Rows stored before the fix, with the echoed signature, in a database migrated to 0006: the
/// gateway's migration 0007 scrubs them (a JSON answer loses the field; a cut-off one is cut).
async fn migration_0007_scrubs_signatures_stored_before(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let url = database.url.clone();
    let json_answer = r#"{"resultCode":"000","nominal":"304000","signature":"b3847e3a099979c1d96e3d186e0e05fa","info1":"Kode Bayar : AF085713323054"}"#;
    let cut_answer = r#"{"resultCode":"000","nominal":"304000","signature":"b3847e3a09997"#;
    let html_answer = "<html>502 Bad Gateway</html>";
    let rows = [
        ("01930000-0000-7000-8000-000000000001", Some(json_answer)),
        ("01930000-0000-7000-8000-000000000002", Some(cut_answer)),
        ("01930000-0000-7000-8000-000000000003", Some(html_answer)),
        ("01930000-0000-7000-8000-000000000004", None),
    ];
    let insert = "INSERT INTO exchanges (id, transaction_id, message_type, trx_id, request, \
                  response, http_status, outcome, result_code, latency_ms, request_id, created_at) \
                  VALUES ($1, NULL, 'inquiry', '00000001', '{}', $2, 200, 'answered', '000', 5, \
                  NULL, $3)";
    let now = Utc::now();
    match backend {
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
            migrator_until_0006("migrations/postgres")
                .await
                .run(&mut db)
                .await
                .unwrap();
            for (id, response) in rows {
                sqlx::query(insert)
                    .bind(uuid::Uuid::parse_str(id).unwrap())
                    .bind(response)
                    .bind(now)
                    .execute(&mut db)
                    .await
                    .unwrap();
            }
        }
        Backend::Sqlite => {
            // The gateway makes the file's directory when it opens it; made here, before it.
            let file = database.sqlite_file().unwrap();
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
                .unwrap()
                .create_if_missing(true);
            let mut db = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            migrator_until_0006("migrations/sqlite")
                .await
                .run(&mut db)
                .await
                .unwrap();
            for (id, response) in rows {
                sqlx::query(insert)
                    .bind(id)
                    .bind(response)
                    .bind(now)
                    .execute(&mut db)
                    .await
                    .unwrap();
            }
        }
    }
    // The gateway's own start-up applies 0007.
    mpospay_gateway::store::connect(&url, 1).await.unwrap();
    let mut stored = Vec::new();
    for (id, _) in rows {
        let id = uuid::Uuid::parse_str(id).unwrap();
        stored.push(stored_response(backend, &url, id).await);
    }
    let first: Value = serde_json::from_str(stored[0].as_deref().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"resultCode": "000", "nominal": "304000", "info1": "Kode Bayar : AF085713323054"})
    );
    assert_eq!(
        stored[1].as_deref(),
        Some(r#"{"resultCode":"000","nominal":"304000","#)
    );
    assert_eq!(stored[2].as_deref(), Some(html_answer));
    assert_eq!(stored[3], None);
}

/// A migrator with this database's migrations up to 0006 (the state before this fix).
async fn migrator_until_0006(dir: &str) -> sqlx::migrate::Migrator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut migrator = sqlx::migrate::Migrator::new(path).await.unwrap();
    let kept: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= 6)
        .cloned()
        .collect();
    migrator.migrations = kept.into();
    migrator
}

async fn stored_response(backend: Backend, url: &str, id: uuid::Uuid) -> Option<String> {
    let sql = "SELECT response FROM exchanges WHERE id = $1";
    match backend {
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(sql)
                .bind(id)
                .fetch_one(&mut db)
                .await
                .unwrap()
                .get(0)
        }
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query(sql)
                .bind(id.to_string())
                .fetch_one(&mut db)
                .await
                .unwrap()
                .get(0)
        }
    }
}

async fn amounts_past_the_protocol_sizes_are_not_an_answer(backend: Backend) {
    let (app, proxy) = spawn_behind_proxy(backend).await;
    // A 15-digit nominal on inquiries: not an answer, so a clear 502 and nothing payable.
    proxy.set(|message_type, answer| {
        if message_type == "inquiry" {
            answer["nominal"] = json!("304000000000000");
        }
    });
    for _ in 0..3 {
        let inquiry = app.inquire("AF085713323054", "2042").await;
        assert_eq!(inquiry.status, 502, "{:?}", inquiry.body);
        assert_eq!(inquiry.error_code(), "upstream_unavailable");
    }
    // A 9-digit admin fee on the payment: the outcome is unknown, so it is pending and advice
    // (answered normally) resolves it.
    proxy.set(|_, _| {});
    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(inquiry.status, 200, "{:?}", inquiry.body);
    proxy.set(|message_type, answer| {
        if message_type == "payment" {
            answer["admin"] = json!("123456789");
        }
    });
    let payment = app
        .pay(
            "AF085713323054",
            "2042",
            &inquiry.id(),
            "pay-oversized-admin",
        )
        .await;
    assert_eq!(payment.status, 202, "{:?}", payment.body);
    assert_eq!(payment.body["status"], "pending");
    let settled = app
        .wait_for_status(&payment.id(), "succeeded", Duration::from_secs(15))
        .await;
    assert_eq!(settled.body["adminFee"], 1550);
    assert_eq!(app.upstream_count(MessageType::Payment), 1, "paid once");
    assert!(app.upstream_count(MessageType::Advice) >= 1);

    // The day's report sums what moved, and answers.
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    let report = app
        .get(&format!("/v1/reports/daily?date={today}"), &app.finance_key)
        .await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!(report.body["totals"]["total"], 305550);
    proxy.server.stop(false).await;
}

async fn huge_texts_are_cut_and_pages_stay_small(backend: Backend) {
    let (app, proxy) = spawn_behind_proxy(backend).await;
    // Four texts of 55,000 characters: about 220 KB, inside the client's limit on an answer.
    let huge = "Z".repeat(55_000);
    proxy.set(move |_, answer| {
        for field in ["info1", "info2", "info3", "resultDesc"] {
            answer[field] = json!(huge.clone());
        }
    });
    for _ in 0..5 {
        // A verbose but real success stays a success.
        assert_eq!(
            app.inquire_and_pay("AF085713323054", "2042").await.status,
            200
        );
    }
    let page = app
        .send(
            "GET",
            "/v1/transactions?limit=10",
            Some(&app.finance_key),
            None,
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    let rows = page.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        for field in ["info1", "info2", "info3"] {
            assert_eq!(
                row[field].as_str().unwrap().chars().count(),
                4000,
                "{field}"
            );
        }
        assert_eq!(row["result"]["description"].as_str().unwrap().len(), 4000);
    }
    let size = page.body.to_string().len();
    // Each row holds four cut texts and the receipt parsed from info1: about 20 KB.
    assert!(size < 10 * 25_000, "a page of 10 is {size} bytes");
    // The detail's exchanges are cut the same way.
    let detail = app.transaction(rows[0]["id"].as_str().unwrap()).await;
    let exchange = &detail.body["exchanges"][0]["response"];
    assert_eq!(exchange["info1"].as_str().unwrap().len(), 4000);
    proxy.server.stop(false).await;
}

async fn inquiries_do_not_count_in_the_report_sums(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        assert_eq!(app.inquire("AF085713323054", "2042").await.status, 200);
    }
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive();
    let from = mpospay_gateway::http::search::day_start(today, chrono_tz::Asia::Jakarta);
    let rows = app
        .store
        .report_rows(from, from + chrono::Duration::days(1))
        .await
        .unwrap();
    let inquiries: Vec<_> = rows
        .iter()
        .filter(|row| row.kind == mpospay_gateway::domain::TransactionKind::Inquiry)
        .collect();
    assert_eq!(inquiries.iter().map(|r| r.count).sum::<i64>(), 3);
    assert!(
        inquiries.iter().all(|r| r.amount == 0 && r.admin_fee == 0),
        "{inquiries:?}"
    );
    let report = app
        .get(&format!("/v1/reports/daily?date={today}"), &app.finance_key)
        .await;
    assert_eq!(report.status, 200);
    assert_eq!(report.body["inquiries"], 3);
}
