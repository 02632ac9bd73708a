//! API.md's "Upstream result → HTTP" table, row by row, through the simulator's magic numbers.

use std::time::Duration;

use mpospay_gateway::h2h::MessageType;
use mpospay_gateway::sandbox::{result_desc, ForcedFault};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, TestApp};

both_backends!(
    inquiry_result_codes_map_to_the_documented_http_errors,
    payment_result_codes_map_to_the_documented_http_errors,
    purchase_result_codes_map_to_the_documented_http_errors,
    transport_failures_on_inquiry_and_balance,
);

/// Inquires `bill` (product 2042) and checks status, error code and the passed-through upstream
/// code; the transaction id must be in the body, and the transaction recorded as failed.
async fn expect_inquiry_error(app: &TestApp, bill: &str, status: u16, code: &str, upstream: &str) {
    let answer = app.inquire(bill, "2042").await;
    assert_eq!(answer.status, status, "{bill}: {:?}", answer.body);
    assert_eq!(answer.error_code(), code, "{bill}");
    assert_eq!(answer.body["error"]["upstream"]["code"], upstream, "{bill}");
    let id = answer.body["error"]["transactionId"]
        .as_str()
        .expect("transactionId");
    let recorded = app.transaction(id).await;
    assert_eq!(recorded.body["status"], "failed");
    assert_eq!(recorded.body["result"]["code"], upstream);
}

async fn inquiry_result_codes_map_to_the_documented_http_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    for (bill, status, code, upstream) in [
        ("99102000001", 503, "upstream_maintenance", "102"),
        ("99998000001", 503, "upstream_maintenance", "998"),
        ("99103000001", 422, "cutoff_time", "103"),
        ("99105000001", 422, "cutoff_time", "105"),
        ("99104000001", 422, "invalid_product", "104"),
        ("99995000001", 422, "invalid_product", "995"),
        ("99991000001", 502, "upstream_rejected", "991"),
        ("99992000001", 502, "upstream_rejected", "992"),
        ("99993000001", 502, "upstream_rejected", "993"),
        ("99994000001", 502, "upstream_rejected", "994"),
        ("99996000001", 502, "upstream_rejected", "996"),
        ("99106000001", 502, "upstream_rejected", "106"),
        ("99107000001", 502, "upstream_rejected", "107"),
        ("99301000001", 502, "upstream_rejected", "301"),
        ("99997000001", 502, "upstream_rejected", "997"),
        ("99108000001", 502, "upstream_error", "108"),
        ("99109000001", 502, "upstream_error", "109"),
        ("99198000001", 502, "upstream_error", "198"),
        ("99047000001", 422, "biller_declined", "047"),
    ] {
        expect_inquiry_error(&app, bill, status, code, upstream).await;
    }
    let maintenance = app.inquire("99102000001", "2042").await;
    assert_eq!(maintenance.header("retry-after"), Some("180"));
    // A biller's own code and text pass through unchanged.
    let biller = app.inquire("99047000001", "2042").await;
    let text = result_desc("047", Some(MessageType::Inquiry));
    assert_eq!(
        biller.body["error"]["upstream"]["description"],
        text.as_str()
    );
    assert_eq!(biller.body["error"]["message"], text.as_str());
}

async fn payment_result_codes_map_to_the_documented_http_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    for (bill, status, code, upstream) in [
        ("98996000001", 409, "inquiry_expired", "996"),
        ("98051000001", 422, "biller_declined", "051"),
        ("98102000001", 503, "upstream_maintenance", "102"),
        ("98103000001", 422, "cutoff_time", "103"),
        ("98994000001", 502, "upstream_rejected", "994"),
    ] {
        let answer = app.inquire_and_pay(bill, "2042").await;
        assert_eq!(answer.status, status, "{bill}: {:?}", answer.body);
        assert_eq!(answer.error_code(), code, "{bill}");
        assert_eq!(answer.body["error"]["upstream"]["code"], upstream);
        let id = answer.body["error"]["transactionId"]
            .as_str()
            .expect("transactionId");
        let recorded = app.transaction(id).await;
        assert_eq!(recorded.body["type"], "payment");
        assert_eq!(recorded.body["status"], "failed");
        assert_eq!(recorded.body["final"], true);
    }
    // A declined payment leaves the inquiry payable again (nothing was applied).
    let inquiry = app.inquire("98051000002", "2042").await;
    let first = app
        .pay("98051000002", "2042", &inquiry.id(), "decline-1")
        .await;
    assert_eq!(first.status, 422);
    let again = app
        .pay("98051000002", "2042", &inquiry.id(), "decline-2")
        .await;
    assert_eq!(again.status, 422, "{:?}", again.body);
    assert_eq!(again.error_code(), "biller_declined");
}

async fn purchase_result_codes_map_to_the_documented_http_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    for (number, status, code) in [
        ("99995000001", 422, "invalid_product"),
        ("99102000001", 503, "upstream_maintenance"),
        ("99047000001", 422, "biller_declined"),
        ("99996000001", 502, "upstream_rejected"),
    ] {
        let answer = app.purchase("3100", number, &format!("buy-{number}")).await;
        assert_eq!(answer.status, status, "{number}: {:?}", answer.body);
        assert_eq!(answer.error_code(), code);
        assert!(answer.body["error"]["transactionId"].is_string());
    }
}

async fn transport_failures_on_inquiry_and_balance(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sandbox
        .set_forced_fault(Some(ForcedFault::Garbage(MessageType::Inquiry)));
    let garbage = app.inquire("AF085713323054", "2042").await;
    assert_eq!(garbage.status, 502, "{:?}", garbage.body);
    assert_eq!(garbage.error_code(), "upstream_unavailable");
    assert!(garbage.body["error"]["transactionId"].is_string());

    app.sandbox
        .set_forced_fault(Some(ForcedFault::Delay(Duration::from_millis(1500))));
    let slow = app.inquire("AF085713323054", "2042").await;
    assert_eq!(slow.status, 504, "{:?}", slow.body);
    assert_eq!(slow.error_code(), "upstream_timeout");
    let slow_balance = app.get("/v1/balance", &app.operator_key).await;
    assert_eq!(slow_balance.status, 504);

    app.sandbox
        .set_forced_fault(Some(ForcedFault::Maintenance("109".into())));
    let failing_balance = app.get("/v1/balance", &app.operator_key).await;
    assert_eq!(failing_balance.status, 502);
    assert_eq!(failing_balance.error_code(), "upstream_error");
    app.sandbox
        .set_forced_fault(Some(ForcedFault::Maintenance("998".into())));
    let balance = app.get("/v1/balance", &app.operator_key).await;
    assert_eq!(balance.status, 503);
    assert_eq!(balance.header("retry-after"), Some("180"));
    app.sandbox.set_forced_fault(None);

    // Nobody listening: refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let options = crate::helpers::TestOptions {
        reconciler: false,
        ..Default::default()
    };
    let mut settings =
        crate::helpers::gateway_settings(&app.upstream.url, &app.database.url, &options);
    settings.upstream.as_mut().unwrap().url = format!("http://127.0.0.1:{closed_port}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_app = mpospay_gateway::startup::Application::build_with(
        settings,
        mpospay_gateway::startup::RunOptions {
            reconciler: false,
            workers: Some(1),
            ..Default::default()
        },
        app.store.clone(),
        listener,
    )
    .unwrap();
    let port = refused_app.port();
    actix_rt::spawn(refused_app.run_until_stopped());
    let mut response = app
        .http
        .post(format!(
            "http://127.0.0.1:{port}/v1/bills/AF085713323054/inquiry"
        ))
        .insert_header(("Authorization", format!("Bearer {}", app.operator_key)))
        .send_json(&json!({"product": "2042"}))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_unavailable");
}

both_backends!(a_declined_payment_keeps_the_amount_it_tried_to_pay);

async fn a_declined_payment_keeps_the_amount_it_tried_to_pay(backend: Backend) {
    let app = spawn_app(backend).await;
    let declined = app.inquire_and_pay("98051000009", "2042").await;
    assert_eq!(declined.status, 422);
    let id = declined.body["error"]["transactionId"].as_str().unwrap();
    let payment = app.transaction(id).await;
    assert_eq!(payment.body["status"], "failed");
    assert_eq!(payment.body["amount"], 150000);
    assert_eq!(payment.body["adminFee"], 2500);
    assert_eq!(payment.body["result"]["code"], "051");
}
