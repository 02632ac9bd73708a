//! `GET /v1/reports/reconciliation`: the deposit chained by the upstream's balances, on both
//! databases, against the simulator's real deposit (API.md, "Deposit: reconciliation and
//! monitoring").

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::{join, join_all};
use mpospay_gateway::config::DepositSettings;
use mpospay_gateway::h2h::{Draft, MessageType, UpstreamClient};
use mpospay_gateway::sandbox::SandboxConfig;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestOptions};

both_backends!(
    fifty_concurrent_payments_and_purchases_chain_exactly_in_upstream_order,
    a_top_up_during_a_burst_is_exactly_one_break_of_its_amount,
    a_payment_sent_around_the_gateway_is_exactly_one_break_of_minus_its_total,
    a_lost_answer_keeps_the_day_unbalanced_until_advice_settles_it,
    the_report_is_for_finance_and_admin_and_names_a_bad_date,
    the_deposit_monitor_reads_the_balance_shows_it_and_keeps_whether_it_is_low,
);

/// Today's business day in Jakarta (the tests' zone).
fn today() -> String {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Jakarta)
        .date_naive()
        .to_string()
}

/// The report of today, read with the finance key.
async fn reconciliation(app: &TestApp) -> Value {
    let answer = app
        .get(
            &format!("/v1/reports/reconciliation?date={}", today()),
            &app.finance_key,
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

/// `openingBalance − succeededTotal + unexplainedTotal = closingBalance`, and the breaks sum up.
fn assert_identity(report: &Value) {
    assert_eq!(
        int(&report["openingBalance"]) - int(&report["succeededTotal"])
            + int(&report["unexplainedTotal"]),
        int(&report["closingBalance"]),
        "{report:#}"
    );
}

fn breaks(report: &Value) -> Vec<i64> {
    report["unexplained"]
        .as_array()
        .expect("unexplained")
        .iter()
        .map(|b| int(&b["amount"]))
        .collect()
}

/// A bill of the simulator's generic test biller (150,000 + 2,500 admin).
fn test_bill(n: usize) -> String {
    format!("99000{n:06}")
}

/// Inquires `count` test bills, then pays them all at once; every payment succeeds.
async fn pay_burst(app: &TestApp, from: usize, count: usize) -> Vec<String> {
    let inquiries = join_all(
        (from..from + count).map(|n| async move { app.inquire(&test_bill(n), "2042").await }),
    )
    .await;
    let payments = join_all(inquiries.iter().enumerate().map(|(i, inquiry)| async move {
        assert_eq!(inquiry.status, 200, "{:?}", inquiry.body);
        let n = from + i;
        app.pay(&test_bill(n), "2042", &inquiry.id(), &format!("pay-{n}"))
            .await
    }))
    .await;
    payments
        .iter()
        .map(|payment| {
            assert_eq!(payment.status, 200, "{:?}", payment.body);
            assert_eq!(payment.body["status"], "succeeded");
            payment.id()
        })
        .collect()
}

async fn fifty_concurrent_payments_and_purchases_chain_exactly_in_upstream_order(backend: Backend) {
    let app = &spawn_app(backend).await;
    let opening = app.sandbox.balance();
    let inquiries =
        join_all((0..25).map(|n| async move { app.inquire(&test_bill(n), "2042").await })).await;
    let payments = join_all(inquiries.iter().enumerate().map(|(n, inquiry)| async move {
        app.pay(&test_bill(n), "2042", &inquiry.id(), &format!("pay-{n}"))
            .await
    }));
    let purchases = join_all((0..25).map(|n| async move {
        app.purchase("3100", &format!("0813225{n:04}"), &format!("buy-{n}"))
            .await
    }));
    let (payments, purchases) = join(payments, purchases).await;
    for answer in payments.iter().chain(&purchases) {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["status"], "succeeded", "{:?}", answer.body);
    }

    let report = reconciliation(app).await;
    assert_eq!(report["unexplained"], json!([]), "{report:#}");
    assert_eq!(report["balanced"], true, "{report:#}");
    assert_eq!(report["succeededCount"], 50);
    assert_eq!(report["pendingCount"], 0);
    assert_eq!(int(&report["openingBalance"]), opening);
    assert_eq!(int(&report["closingBalance"]), app.sandbox.balance());
    assert_eq!(report["timeZone"], "Asia/Jakarta");
    assert_eq!(report["date"], today());
    assert_identity(&report);

    // The points are the transactions in the order the simulator applied them.
    let trx_ids: HashMap<String, String> = app
        .store
        .search_transactions(&Default::default(), None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.id.to_string(), t.trx_id))
        .collect();
    let points: Vec<String> = report["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| trx_ids[p["transactionId"].as_str().expect("a transaction")].clone())
        .collect();
    let applied: Vec<String> = app
        .sandbox
        .received()
        .into_iter()
        .filter(|m| m.message_type == "payment" || m.message_type == "purchase")
        .map(|m| m.trx_id)
        .collect();
    assert_eq!(points, applied, "points in upstream order");

    // Nothing of the per-payment drift check is written any more: no table, no event.
    assert!(
        count(app, "SELECT COUNT(*) FROM warnings").await.is_err(),
        "the warnings table is gone"
    );
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM events WHERE type LIKE 'deposit.%'"
        )
        .await
        .unwrap(),
        0,
        "no deposit event"
    );
}

/// One count, straight from the test's database.
async fn count(app: &TestApp, sql: &'static str) -> Result<i64, sqlx::Error> {
    let url = &app.database.url;
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await?;
        sqlx::query_scalar(sql).fetch_one(&pool).await
    } else {
        let pool = sqlx::SqlitePool::connect(url).await?;
        sqlx::query_scalar(sql).fetch_one(&pool).await
    }
}

async fn a_top_up_during_a_burst_is_exactly_one_break_of_its_amount(backend: Backend) {
    let app = spawn_app(backend).await;
    let deposit = format!("{}/sandbox/deposit", app.upstream.url);
    let top_up = async {
        // Once a third of the burst is applied.
        let started = Instant::now();
        while app.upstream_count(MessageType::Payment) < 10 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the burst is slow"
            );
            actix_rt::time::sleep(Duration::from_millis(2)).await;
        }
        let mut response = app
            .http
            .post(&deposit)
            .send_json(&json!({"amount": 1_000_000}))
            .await
            .expect("the simulator answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(body["balance"].is_i64(), "{body}");
    };
    let (paid, ()) = join(pay_burst(&app, 0, 30), top_up).await;
    // One more afterwards: the chain goes on past the top-up whenever it landed.
    let last = pay_burst(&app, 30, 1).await;

    let report = reconciliation(&app).await;
    assert_eq!(breaks(&report), vec![1_000_000], "{report:#}");
    let top_up = &report["unexplained"][0];
    assert_eq!(
        int(&top_up["toBalance"]) - int(&top_up["fromBalance"]),
        1_000_000
    );
    let ours: Vec<&String> = paid.iter().chain(&last).collect();
    for side in ["after", "before"] {
        let id = top_up[side].as_str().expect("a transaction on either side");
        assert!(ours.iter().any(|ours| *ours == id), "{side}: {id}");
    }
    assert_eq!(report["balanced"], false);
    assert_eq!(report["succeededCount"], 31);
    assert_eq!(int(&report["closingBalance"]), app.sandbox.balance());
    assert_identity(&report);
}

async fn a_payment_sent_around_the_gateway_is_exactly_one_break_of_minus_its_total(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    pay_burst(&app, 0, 5).await;

    // A partner's own program pays a bill with the same account, straight to the host.
    let upstream = SandboxConfig::default().upstream_settings(app.upstream.url.clone());
    let client = UpstreamClient::new(
        &upstream.url,
        &upstream.origin,
        upstream.credentials.clone(),
        upstream.timeout,
        1,
    );
    let send = |message_type, trx_id: &str, payment_code: Option<String>| {
        let request = upstream.credentials.build_request(
            Draft {
                message_type,
                product: "2042".into(),
                bill_number: "AF085713323054".into(),
                trx_id: trx_id.into(),
                payment_code,
            },
            Utc::now(),
        );
        client.send(request)
    };
    let inquiry = send(MessageType::Inquiry, "90000001", None).await;
    let inquiry = inquiry.outcome.response().expect("an answer").clone();
    assert_eq!(inquiry.result_code, "000");
    let before = app.sandbox.balance();
    let payment = send(
        MessageType::Payment,
        "90000002",
        Some(inquiry.payment_code.clone()),
    )
    .await;
    assert_eq!(
        payment.outcome.response().expect("an answer").result_code,
        "000"
    );
    let outside = before - app.sandbox.balance();
    assert_eq!(outside, 305_550, "the vendor's example bill");

    pay_burst(&app, 5, 5).await;
    let report = reconciliation(&app).await;
    assert_eq!(breaks(&report), vec![-outside], "{report:#}");
    assert_eq!(report["balanced"], false);
    assert_eq!(report["succeededCount"], 10);
    assert_identity(&report);
}

async fn a_lost_answer_keeps_the_day_unbalanced_until_advice_settles_it(backend: Backend) {
    let app = spawn_app_with(
        backend,
        TestOptions {
            reconciler: false,
            ..TestOptions::default()
        },
    )
    .await;
    pay_burst(&app, 0, 3).await;
    // Applied by the simulator, its answer lost: pending.
    let inquiry = app.inquire("97001000001", "2042").await;
    let lost = app
        .pay("97001000001", "2042", &inquiry.id(), "lost-1")
        .await;
    assert_eq!(lost.status, 202, "{:?}", lost.body);
    assert_eq!(lost.body["status"], "pending");
    pay_burst(&app, 3, 3).await;

    let report = reconciliation(&app).await;
    assert_eq!(report["balanced"], false, "{report:#}");
    assert_eq!(report["pendingCount"], 1);
    assert_eq!(report["succeededCount"], 6);
    assert_eq!(
        breaks(&report),
        vec![-152_500],
        "the pending payment's debit"
    );
    assert_identity(&report);

    let advised = app.advise(&lost.id()).await;
    assert_eq!(advised.body["status"], "succeeded", "{:?}", advised.body);
    let report = reconciliation(&app).await;
    assert_eq!(report["unexplained"], json!([]), "{report:#}");
    assert_eq!(report["pendingCount"], 0);
    assert_eq!(report["balanced"], true);
    assert_eq!(report["succeededCount"], 7);
    assert_eq!(int(&report["closingBalance"]), app.sandbox.balance());
    assert_identity(&report);
}

async fn the_report_is_for_finance_and_admin_and_names_a_bad_date(backend: Backend) {
    let app = spawn_app(backend).await;
    let path = format!("/v1/reports/reconciliation?date={}", today());
    assert_eq!(app.get(&path, &app.admin_key).await.status, 200);
    let operator = app.get(&path, &app.operator_key).await;
    assert_eq!(operator.status, 403, "{:?}", operator.body);
    for bad in ["2026-13-01", "yesterday", "-262143-01-01"] {
        let answer = app
            .get(
                &format!("/v1/reports/reconciliation?date={bad}"),
                &app.finance_key,
            )
            .await;
        assert_eq!(answer.status, 422, "{bad}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["field"], "date", "{bad}");
    }
    assert_eq!(app.upstream_total(), 0, "nothing sent upstream");

    // A reading of the balance is a point of the day's chain.
    let balance = app.get("/v1/balance", &app.finance_key).await;
    assert_eq!(balance.status, 200);
    let report = reconciliation(&app).await;
    assert_eq!(
        report["points"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert_eq!(report["points"][0]["transactionId"], Value::Null);
    assert_eq!(report["openingBalance"], balance.body["balance"]);
    assert_eq!(report["balanced"], true);
}

/// The gauge's value in `/metrics`, if it is there.
async fn deposit_gauge(app: &TestApp) -> Option<i64> {
    let metrics = app.send("GET", "/metrics", None, None, None).await;
    let text = metrics.body.as_str().unwrap_or("").to_string();
    text.lines()
        .find_map(|line| line.strip_prefix("gateway_deposit_balance_rupiah "))
        .and_then(|value| value.trim().parse().ok())
}

/// Polls until the gauge shows `balance` (or panics after 10 s).
async fn wait_for_gauge(app: &TestApp, balance: i64) {
    let started = Instant::now();
    while deposit_gauge(app).await != Some(balance) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the gauge shows {:?}, not {balance}",
            deposit_gauge(app).await
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_deposit_monitor_reads_the_balance_shows_it_and_keeps_whether_it_is_low(
    backend: Backend,
) {
    let app = spawn_app_with(
        backend,
        TestOptions {
            deposit: DepositSettings {
                low_balance: 49_000_000,
                check_interval_secs: 1,
            },
            ..TestOptions::default()
        },
    )
    .await;
    let opening = app.sandbox.balance();
    assert_eq!(deposit_gauge(&app).await, None, "nothing seen yet");
    // Nothing reported the balance: the monitor asks (a balance inquiry) and shows it.
    wait_for_gauge(&app, opening).await;
    assert!(app.upstream_count(MessageType::BalanceInquiry) >= 1);
    let state = app.store.deposit_monitor().await.unwrap();
    assert!(!state.low, "above the threshold");

    // A charge outside the gateway takes the deposit below the threshold.
    let deposit = format!("{}/sandbox/deposit", app.upstream.url);
    let mut charged = app
        .http
        .post(&deposit)
        .send_json(&json!({"amount": -1_500_000}))
        .await
        .unwrap();
    assert_eq!(charged.status(), 200, "{:?}", charged.body().await);
    wait_for_gauge(&app, opening - 1_500_000).await;
    assert!(
        app.store.deposit_monitor().await.unwrap().low,
        "low, remembered"
    );
    // Announced once per fall: further checks below the threshold add no event.
    actix_rt::time::sleep(std::time::Duration::from_millis(2500)).await;
    let lows = deposit_low_events(&app).await;
    assert_eq!(lows.len(), 1, "{lows:#?}");
    assert_eq!(lows[0]["data"]["balance"], opening - 1_500_000);
    assert_eq!(lows[0]["data"]["threshold"], 49_000_000);

    // The monitor's readings are points of the day's chain, and show the charge as a break.
    let report = reconciliation(&app).await;
    assert_eq!(breaks(&report), vec![-1_500_000], "{report:#}");

    // Back above: no longer low (the next fall will be decided again).
    app.sandbox.adjust_deposit(2_000_000).unwrap();
    wait_for_gauge(&app, opening + 500_000).await;
    assert!(!app.store.deposit_monitor().await.unwrap().low);

    // A second fall is a second event.
    app.sandbox.adjust_deposit(-3_000_000).unwrap();
    wait_for_gauge(&app, opening - 2_500_000).await;
    actix_rt::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(deposit_low_events(&app).await.len(), 2);
}

/// The `deposit.low` events of the feed, oldest first (finance sees them; an operator never).
async fn deposit_low_events(app: &TestApp) -> Vec<Value> {
    let operator = app
        .get("/v1/events?type=deposit.low", &app.operator_key)
        .await;
    assert_eq!(operator.status, 200, "{:?}", operator.body);
    assert_eq!(
        operator.body["data"],
        json!([]),
        "deposit events are not an operator's"
    );
    let feed = app
        .get("/v1/events?type=deposit.low", &app.finance_key)
        .await;
    assert_eq!(feed.status, 200, "{:?}", feed.body);
    feed.body["data"].as_array().cloned().unwrap_or_default()
}
