//! The fault suite, upstream side (issue 7): a minute of an upstream that is slow past the
//! timeout and then blackholed, garbage answers for one message type at a time, and hostile text
//! from a biller. Each test counts what the simulator received and applied against what the
//! database holds: nothing lost, nothing paid twice, nothing failed that may have been paid.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use mpospay_gateway::domain::{Transaction, TransactionStatus};
use mpospay_gateway::h2h::{BreakerSettings, MessageType};
use mpospay_gateway::sandbox::{Delivery, ForcedFault};

use crate::both_backends;
use crate::helpers::{spawn_app_with, Answer, Backend, TestApp, TestOptions};

both_backends!(
    a_minute_of_slow_then_blackholed_upstream_loses_and_doubles_nothing,
    garbage_payment_answers_are_resolved_by_advice,
    garbage_advice_answers_keep_payments_pending_until_advice_is_good_again,
    garbage_inquiry_answers_are_a_clear_error_and_leave_nothing_pending,
    formula_text_is_neutralised_in_the_csv_export,
);

/// Waits until every stored payment is final (succeeded or failed), or panics after `within`.
async fn wait_all_payments_final(app: &TestApp, within: Duration) -> Vec<Transaction> {
    let started = Instant::now();
    loop {
        let payments = app.stored_payments().await;
        let open: Vec<_> = payments
            .iter()
            .filter(|p| !p.status.is_final())
            .map(|p| (p.trx_id.clone(), p.status.as_str(), p.advice_attempts))
            .collect();
        if open.is_empty() {
            return payments;
        }
        assert!(
            started.elapsed() < within,
            "{} payments still not final after {within:?} (trxId, status, advice attempts): {open:?}",
            open.len()
        );
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The simulator's view of the payments: per trxId, the payment messages it received.
fn payment_messages(
    app: &TestApp,
) -> HashMap<String, Vec<mpospay_gateway::sandbox::ReceivedMessage>> {
    let mut by_trx_id: HashMap<String, Vec<_>> = HashMap::new();
    for message in app.sandbox.received() {
        if message.message_type == "payment" {
            by_trx_id
                .entry(message.trx_id.clone())
                .or_default()
                .push(message);
        }
    }
    by_trx_id
}

/// The money invariants, checked against the simulator after every payment is final:
/// - at most one payment message per trxId, and none for a trxId the database does not hold;
/// - a payment the simulator applied is `succeeded`, and a `succeeded` one was applied;
/// - a `failed` payment was never applied, and the upstream confirmed it (advice answered
///   `996`), unless its message was never sent;
/// - every advice carried a stored payment's own trxId and paymentCode;
/// - the deposit moved by exactly the succeeded payments' totals.
fn assert_nothing_lost_nothing_doubled(
    app: &TestApp,
    payments: &[Transaction],
    balance_before: i64,
) {
    let messages = payment_messages(app);
    let stored: HashMap<&str, &Transaction> =
        payments.iter().map(|p| (p.trx_id.as_str(), p)).collect();
    assert_eq!(stored.len(), payments.len(), "trxIds are unique");
    for (trx_id, sent) in &messages {
        assert_eq!(
            sent.len(),
            1,
            "payment {trx_id} reached the upstream {} times",
            sent.len()
        );
        assert!(
            stored.contains_key(trx_id.as_str()),
            "the upstream got payment {trx_id}, which the database does not hold"
        );
    }
    let received = app.sandbox.received();
    let mut charged = 0;
    for payment in payments {
        let applied = messages
            .get(&payment.trx_id)
            .is_some_and(|sent| sent[0].result_code == "000");
        match payment.status {
            TransactionStatus::Succeeded => {
                assert!(
                    applied,
                    "payment {} is succeeded but was never applied upstream",
                    payment.trx_id
                );
                charged += payment.total().expect("a succeeded payment has a total");
            }
            TransactionStatus::Failed => {
                assert!(
                    !applied,
                    "payment {} was applied upstream but is failed (error {:?})",
                    payment.trx_id, payment.error_code
                );
                if let Some(sent) = messages.get(&payment.trx_id) {
                    // It reached the upstream: only the upstream's word that it never arrived
                    // may fail it.
                    assert_eq!(
                        payment.error_code.as_deref(),
                        Some("payment_not_found"),
                        "payment {} (delivery {:?}) failed without the upstream confirming it never arrived",
                        payment.trx_id,
                        sent[0].delivery
                    );
                    assert!(
                        received.iter().any(|m| m.message_type == "advice"
                            && m.trx_id == payment.trx_id
                            && m.result_code == "996"),
                        "payment {} failed without an advice answered 996",
                        payment.trx_id
                    );
                }
            }
            other => panic!(
                "payment {} is {} after the wait",
                payment.trx_id,
                other.as_str()
            ),
        }
    }
    for advice in received.iter().filter(|m| m.message_type == "advice") {
        let payment = stored
            .get(advice.trx_id.as_str())
            .unwrap_or_else(|| panic!("advice for unknown trxId {}", advice.trx_id));
        assert_eq!(
            advice.payment_code, payment.payment_code,
            "advice for {} carried another paymentCode",
            advice.trx_id
        );
    }
    assert_eq!(
        balance_before - app.sandbox.balance(),
        charged,
        "the deposit moved by exactly the succeeded payments"
    );
}

/// What the fault window's clients saw.
#[derive(Default)]
struct Seen {
    payments: Vec<Answer>,
    inquiries: Vec<Answer>,
}

/// A client paying the inquired bills one after the other, each with its own Idempotency-Key.
async fn pay_until_done(
    app: &TestApp,
    bills: &RefCell<VecDeque<(String, String)>>,
    seen: &RefCell<Seen>,
    done: &Cell<bool>,
    pause: Duration,
) {
    while !done.get() {
        let Some((bill, inquiry_id)) = bills.borrow_mut().pop_front() else {
            break;
        };
        let key = uuid::Uuid::now_v7().to_string();
        let answer = app.pay(&bill, "1501", &inquiry_id, &key).await;
        seen.borrow_mut().payments.push(answer);
        actix_rt::time::sleep(pause).await;
    }
}

/// A client inquiring bills nobody inquired before.
async fn inquire_until_done(
    app: &TestApp,
    seen: &RefCell<Seen>,
    done: &Cell<bool>,
    pause: Duration,
) {
    let mut n = 0;
    while !done.get() {
        let answer = app
            .inquire(&format!("8888{:09}", 500_000 + n), "1501")
            .await;
        seen.borrow_mut().inquiries.push(answer);
        n += 1;
        actix_rt::time::sleep(pause).await;
    }
}

/// A minute of trouble, with clients paying and inquiring all along: the upstream first answers
/// every message later than the gateway waits (it processes them: payments are applied), then
/// swallows every message (nothing processed). Then it comes back, and the reconciler settles
/// everything with advice.
async fn a_minute_of_slow_then_blackholed_upstream_loses_and_doubles_nothing(backend: Backend) {
    const BILLS: u32 = 120;
    const PAUSE: Duration = Duration::from_millis(800);
    const SLOW_FOR: Duration = Duration::from_secs(25);
    const BLACKHOLED_FOR: Duration = Duration::from_secs(35);
    let mut options = TestOptions {
        upstream_timeout: Duration::from_millis(400),
        // The circuit breaker off, so that every request of the minute meets the fault itself
        // (breaker.rs tests the breaker).
        breaker: BreakerSettings {
            failures: 0,
            ..BreakerSettings::default()
        },
        ..TestOptions::default()
    };
    options.payments.advice_schedule_secs = vec![1];
    options.payments.not_found_confirm_secs = 3;
    let app = spawn_app_with(backend, options).await;
    let balance_before = app.sandbox.balance();

    // Payments need an inquired paymentCode: the bills are inquired before the trouble starts.
    let mut bills = VecDeque::new();
    for n in 0..BILLS {
        let bill = format!("8888{n:09}");
        let inquiry = app.inquire(&bill, "1501").await;
        assert_eq!(inquiry.status, 200, "{bill}: {:?}", inquiry.body);
        bills.push_back((bill, inquiry.id()));
    }
    let bills = RefCell::new(bills);
    let seen = RefCell::new(Seen::default());
    let done = Cell::new(false);

    app.sandbox
        .set_forced_fault(Some(ForcedFault::Delay(Duration::from_millis(1500))));
    let fault_started = Instant::now();
    let weather = async {
        actix_rt::time::sleep(SLOW_FOR).await;
        app.sandbox.set_forced_fault(Some(ForcedFault::Blackhole));
        actix_rt::time::sleep(BLACKHOLED_FOR).await;
        done.set(true);
    };
    tokio::join!(
        weather,
        pay_until_done(&app, &bills, &seen, &done, PAUSE),
        pay_until_done(&app, &bills, &seen, &done, PAUSE),
        inquire_until_done(&app, &seen, &done, PAUSE),
    );
    // Every client request above ran entirely inside the fault window.
    app.sandbox.set_forced_fault(None);
    let fault_lasted = fault_started.elapsed();

    let seen = seen.into_inner();
    assert!(
        !bills.borrow().is_empty(),
        "the payers ran out of bills before the fault ended"
    );
    assert!(
        seen.payments.len() >= 20,
        "only {} payments",
        seen.payments.len()
    );
    assert!(
        seen.inquiries.len() >= 20,
        "only {} inquiries",
        seen.inquiries.len()
    );
    for answer in &seen.inquiries {
        assert!(
            matches!(
                (answer.status, answer.error_code()),
                (504, "upstream_timeout") | (502, "upstream_unavailable")
            ),
            "an inquiry during the fault answered {}: {:?}",
            answer.status,
            answer.body
        );
    }
    let mut answered_ids = HashSet::new();
    for answer in &seen.payments {
        assert_eq!(
            answer.status, 202,
            "a payment during the fault answered {}: {:?}",
            answer.status, answer.body
        );
        assert_eq!(answer.body["status"], "pending");
        assert!(
            answered_ids.insert(answer.id()),
            "one id per payment request"
        );
    }

    let payments = wait_all_payments_final(&app, Duration::from_secs(45)).await;
    let stored_ids: HashSet<String> = payments.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(
        stored_ids, answered_ids,
        "the database holds exactly the payments the clients were given ids for"
    );
    assert_nothing_lost_nothing_doubled(&app, &payments, balance_before);
    for id in &answered_ids {
        let answer = app.transaction(id).await;
        assert_eq!(
            answer.body["final"], true,
            "what the client reads: {:?}",
            answer.body
        );
    }
    // Both kinds of trouble were met: payments applied but answered too late (settled
    // `succeeded` by advice), and payments swallowed unprocessed (`failed` once the upstream
    // confirmed it never got them).
    let succeeded = payments
        .iter()
        .filter(|p| p.status == TransactionStatus::Succeeded)
        .count();
    let failed = payments.len() - succeeded;
    assert!(
        succeeded >= 5 && failed >= 5,
        "succeeded {succeeded}, failed {failed}"
    );
    assert!(
        app.sandbox
            .received()
            .iter()
            .any(|m| m.delivery == Delivery::Held),
        "the blackhole swallowed messages"
    );
    eprintln!(
        "{backend:?}: fault {fault_lasted:?}; {} payments ({succeeded} succeeded, {failed} failed), {} inquiries",
        payments.len(),
        seen.inquiries.len()
    );
}

/// Short timeouts and an advice schedule that asks again every half second or so.
fn quick_options() -> TestOptions {
    let mut options = TestOptions {
        upstream_timeout: Duration::from_millis(1000),
        ..TestOptions::default()
    };
    options.payments.advice_schedule_secs = vec![0];
    options
}

async fn garbage_payment_answers_are_resolved_by_advice(backend: Backend) {
    let app = spawn_app_with(backend, quick_options()).await;
    let balance_before = app.sandbox.balance();
    app.sandbox
        .set_forced_fault(Some(ForcedFault::Garbage(MessageType::Payment)));
    let mut ids = Vec::new();
    for bill in ["AF085713323054", "AF085713323055", "8888000000007"] {
        let product = if bill.starts_with("8888") {
            "1501"
        } else {
            "2042"
        };
        // Inquiries answer normally: only payment answers are garbage.
        let payment = app.inquire_and_pay(bill, product).await;
        assert_eq!(payment.status, 202, "{bill}: {:?}", payment.body);
        assert_eq!(payment.body["status"], "pending");
        ids.push(payment.id());
    }
    for id in &ids {
        let settled = app
            .wait_for_status(id, "succeeded", Duration::from_secs(15))
            .await;
        assert!(settled.body["adviceAttempts"].as_i64().unwrap() >= 1);
    }
    let payments = wait_all_payments_final(&app, Duration::from_secs(5)).await;
    assert_eq!(payments.len(), 3);
    assert_eq!(app.upstream_count(MessageType::Payment), 3);
    assert!(app
        .sandbox
        .received()
        .iter()
        .filter(|m| m.message_type == "payment")
        .all(|m| m.delivery == Delivery::NotJson));
    assert_nothing_lost_nothing_doubled(&app, &payments, balance_before);
}

async fn garbage_advice_answers_keep_payments_pending_until_advice_is_good_again(backend: Backend) {
    let app = spawn_app_with(backend, quick_options()).await;
    let balance_before = app.sandbox.balance();
    app.sandbox
        .set_forced_fault(Some(ForcedFault::Garbage(MessageType::Advice)));
    // Applied upstream, the answer lost: only advice can tell.
    let mut ids = Vec::new();
    for bill in ["97001000701", "97001000702"] {
        let payment = app.inquire_and_pay(bill, "2042").await;
        assert_eq!(payment.status, 202, "{bill}: {:?}", payment.body);
        ids.push(payment.id());
    }
    // Advice keeps getting garbage: the payments stay pending, never failed.
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.upstream_count(MessageType::Advice) < 6 {
        assert!(
            Instant::now() < deadline,
            "the reconciler did not keep asking"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        let answer = app.transaction(id).await;
        assert_eq!(
            answer.body["status"], "pending",
            "garbage advice must not settle a payment: {:?}",
            answer.body
        );
        assert!(answer.body["adviceAttempts"].as_i64().unwrap() >= 1);
    }
    assert!(app
        .sandbox
        .received()
        .iter()
        .filter(|m| m.message_type == "advice")
        .all(|m| m.delivery == Delivery::NotJson));

    app.sandbox.set_forced_fault(None);
    for id in &ids {
        app.wait_for_status(id, "succeeded", Duration::from_secs(15))
            .await;
    }
    let payments = wait_all_payments_final(&app, Duration::from_secs(5)).await;
    assert_eq!(payments.len(), 2);
    assert_eq!(app.upstream_count(MessageType::Payment), 2);
    assert_nothing_lost_nothing_doubled(&app, &payments, balance_before);
}

async fn garbage_inquiry_answers_are_a_clear_error_and_leave_nothing_pending(backend: Backend) {
    let app = spawn_app_with(backend, quick_options()).await;
    let balance_before = app.sandbox.balance();
    app.sandbox
        .set_forced_fault(Some(ForcedFault::Garbage(MessageType::Inquiry)));
    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(inquiry.status, 502, "{:?}", inquiry.body);
    assert_eq!(inquiry.error_code(), "upstream_unavailable");
    assert!(!inquiry.body["error"]["message"]
        .as_str()
        .unwrap()
        .is_empty());
    // A purchase is not an inquiry: it goes through.
    let purchase = app
        .purchase("3100", "08132259999", "garbage-inquiry-buy")
        .await;
    assert_eq!(purchase.status, 200, "{:?}", purchase.body);

    // The failed inquiry cannot be paid, and nothing waits for advice.
    if let Some(id) = inquiry.body["error"]["transactionId"].as_str() {
        let payment = app
            .pay("AF085713323054", "2042", id, "garbage-inquiry-pay")
            .await;
        assert_eq!(payment.status, 422, "{:?}", payment.body);
        assert_eq!(payment.error_code(), "inquiry_not_payable");
    }
    for status in ["pending", "review"] {
        let open = app
            .get(
                &format!("/v1/transactions?status={status}"),
                &app.finance_key,
            )
            .await;
        assert_eq!(open.status, 200);
        assert_eq!(open.body["data"].as_array().unwrap().len(), 0, "{status}");
    }
    assert_eq!(app.upstream_count(MessageType::Payment), 0);
    assert_eq!(app.upstream_count(MessageType::Advice), 0);
    assert_eq!(app.sandbox.balance(), balance_before - 10_050);

    // Back to normal: the same bill inquires and pays.
    app.sandbox.set_forced_fault(None);
    let payment = app.inquire_and_pay("AF085713323054", "2042").await;
    assert_eq!(payment.status, 200, "{:?}", payment.body);
    assert_eq!(app.upstream_count(MessageType::Payment), 1);
}

/// Text that a spreadsheet would run — from a biller (customer names, result texts) or in a bill
/// number — reaches the CSV export neutralised, and the CSV still parses.
async fn formula_text_is_neutralised_in_the_csv_export(backend: Backend) {
    let app = spawn_app_with(backend, quick_options()).await;
    let mut hostile = Vec::new();
    for (bill, name) in mpospay_gateway::sandbox::FORMULA_NAMES {
        let payment = app.inquire_and_pay(bill, "2042").await;
        assert_eq!(payment.status, 200, "{bill}: {:?}", payment.body);
        assert_eq!(payment.body["customerName"], *name);
        hostile.push(name.to_string());
    }
    for (bill, text) in mpospay_gateway::sandbox::FORMULA_DECLINES {
        let inquiry = app.inquire(bill, "2042").await;
        assert_eq!(inquiry.status, 422, "{bill}: {:?}", inquiry.body);
        assert_eq!(inquiry.error_code(), "biller_declined");
        hostile.push(text.to_string());
    }
    // A bill number may start with `-` (letters, digits, `-`, `.`, `_`): the biller does not
    // know it, and the declined inquiry is exported all the same.
    let formula_bill = "-A1-A2";
    let inquiry = app.inquire(formula_bill, "2042").await;
    assert_eq!(inquiry.status, 422, "{:?}", inquiry.body);
    hostile.push(formula_bill.to_string());

    let export = app
        .get("/v1/transactions/export.csv", &app.finance_key)
        .await;
    assert_eq!(export.status, 200);
    let text = export.body.as_str().expect("CSV text").to_string();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("a header row").clone();
    let records: Vec<csv::StringRecord> = reader
        .records()
        .map(|r| r.expect("every CSV row parses"))
        .collect();
    assert_eq!(
        records.len(),
        4 * 2 + 2 + 1,
        "inquiries and payments, one row each"
    );
    for record in &records {
        assert_eq!(record.len(), headers.len(), "{record:?}");
        for (column, cell) in headers.iter().zip(record.iter()) {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "column {column} holds a live formula: {cell:?}"
            );
        }
    }
    let cells: Vec<&str> = records.iter().flat_map(|r| r.iter()).collect();
    for text in &hostile {
        let neutralised = format!("'{text}");
        assert!(
            cells.contains(&neutralised.as_str()),
            "{text:?} is not exported as {neutralised:?}"
        );
    }
}
