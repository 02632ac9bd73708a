//! The happy paths: inquiry → payment → lookup, purchase, balance, advice.

use mpospay_gateway::h2h::MessageType;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_app, Backend};

both_backends!(
    inquiry_then_payment_of_the_vendor_bill,
    purchase_of_phone_credit,
    balance_is_the_simulators,
    advice_on_a_paid_payment_reuses_its_trx_id_and_payment_code,
    request_ids_are_echoed_and_recorded,
);

async fn inquiry_then_payment_of_the_vendor_bill(backend: Backend) {
    let app = spawn_app(backend).await;
    let balance_before = app.sandbox.balance();

    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(inquiry.status, 200, "{:?}", inquiry.body);
    let body = &inquiry.body;
    assert_eq!(body["type"], "inquiry");
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["final"], true);
    assert_eq!(body["amount"], 304000);
    assert_eq!(body["adminFee"], 1550);
    assert_eq!(body["total"], 305550);
    assert_eq!(body["customerName"], "Eduard Budiharto");
    assert_eq!(
        body["receipt"][0],
        json!({"label": "Kode Bayar", "value": "AF085713323054"})
    );
    assert_eq!(
        body["result"],
        json!({"code": "000", "description": "SUKSES"})
    );
    assert_eq!(body["paymentCode"].as_str().unwrap().len(), 32);
    assert!(body["expiresAt"].is_string());
    assert_eq!(body["trxId"].as_str().unwrap().len(), 8);

    let payment = app
        .pay("AF085713323054", "2042", &inquiry.id(), "pay-vendor-bill-1")
        .await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);
    let paid = &payment.body;
    assert_eq!(paid["type"], "payment");
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["total"], 305550);
    assert_eq!(paid["inquiryId"], inquiry.id().as_str());
    assert_eq!(paid["paymentCode"], body["paymentCode"]);
    assert_ne!(paid["trxId"], body["trxId"], "a payment takes a new trxId");
    assert_eq!(paid["balanceAfter"], balance_before - 305550);
    assert_eq!(app.sandbox.balance(), balance_before - 305550);

    let lookup = app.transaction(&payment.id()).await;
    assert_eq!(lookup.status, 200);
    assert_eq!(lookup.body["status"], "succeeded");
    assert_eq!(lookup.body["amount"], 304000);
    let exchanges = lookup.body["exchanges"].as_array().unwrap();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0]["type"], "payment");
    assert_eq!(exchanges[0]["outcome"], "answered");
    assert!(
        exchanges[0]["request"].get("sign").is_none(),
        "the signature is not stored"
    );
    assert_eq!(exchanges[0]["response"]["resultCode"], "000");
    assert_eq!(app.upstream_count(MessageType::Payment), 1);
}

async fn purchase_of_phone_credit(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.sandbox.balance();
    let purchase = app.purchase("3100", "08132259999", "buy-credit-1").await;
    assert_eq!(purchase.status, 200, "{:?}", purchase.body);
    assert_eq!(purchase.body["type"], "purchase");
    assert_eq!(purchase.body["status"], "succeeded");
    assert_eq!(purchase.body["billNumber"], "08132259999");
    let total = purchase.body["total"].as_i64().unwrap();
    assert!(total > 0);
    assert_eq!(app.sandbox.balance(), before - total);
    assert_eq!(app.upstream_count(MessageType::Purchase), 1);
}

async fn balance_is_the_simulators(backend: Backend) {
    let app = spawn_app(backend).await;
    app.inquire_and_pay("AF085713323054", "2042").await;
    let balance = app.get("/v1/balance", &app.operator_key).await;
    assert_eq!(balance.status, 200, "{:?}", balance.body);
    assert_eq!(balance.body["balance"], app.sandbox.balance());
    assert!(balance.body["checkedAt"].is_string());
    let finance = app.get("/v1/balance", &app.finance_key).await;
    assert_eq!(finance.status, 200);
}

async fn advice_on_a_paid_payment_reuses_its_trx_id_and_payment_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let payment = app.inquire_and_pay("AF085713323054", "2042").await;
    assert_eq!(payment.status, 200);
    let advice = app.advise(&payment.id()).await;
    assert_eq!(advice.status, 200, "{:?}", advice.body);
    assert_eq!(advice.body["status"], "succeeded");
    let received = app.sandbox.received();
    let payment_message = received
        .iter()
        .find(|m| m.message_type == "payment")
        .unwrap();
    let advice_message = received
        .iter()
        .find(|m| m.message_type == "advice")
        .unwrap();
    assert_eq!(advice_message.trx_id, payment_message.trx_id);
    assert_eq!(advice_message.payment_code, payment_message.payment_code);
    assert_eq!(
        advice_message.trx_id,
        payment.body["trxId"].as_str().unwrap()
    );
    assert_eq!(
        app.upstream_count(MessageType::Payment),
        1,
        "advice never re-sends a payment"
    );
}

async fn request_ids_are_echoed_and_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut request = app
        .http
        .post(app.url("/v1/bills/AF085713323054/inquiry"))
        .insert_header(("Authorization", format!("Bearer {}", app.operator_key)))
        .insert_header(("X-Request-Id", "trace-abc-123"));
    request = request.insert_header(("Content-Type", "application/json"));
    let response = request.send_body(r#"{"product":"2042"}"#).await.unwrap();
    assert_eq!(
        response.headers().get("x-request-id").unwrap(),
        "trace-abc-123"
    );
    let mut response = response;
    let body: serde_json::Value = response.json().await.unwrap();
    let lookup = app.transaction(body["id"].as_str().unwrap()).await;
    assert_eq!(lookup.body["exchanges"][0]["requestId"], "trace-abc-123");
    let made = app.get("/healthz", &app.operator_key).await;
    assert!(made.header("x-request-id").is_some_and(|id| !id.is_empty()));
}
