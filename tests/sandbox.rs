//! Black-box tests of the upstream simulator through the real `UpstreamClient`.

use std::time::{Duration, Instant};

use chrono::{Days, Utc};
use mpospay_gateway::h2h::{
    business_date, Credentials, Draft, MessageType, Outcome, Request, Response, SigningFields,
    UnknownReason, UpstreamClient, USER_AGENT,
};
use mpospay_gateway::sandbox::{
    spawn_on_loopback, Delivery, ForcedFault, SandboxConfig, SandboxHandle, DEPOSIT_PATH,
};

const VENDOR_INFO1: &str = "Kode Bayar  : AF085713323054|Kode Reff   : 900017|ID Transaksi: TKP154821699|Nama        : Eduard Budiharto|Desk.Order  : Pembelian dari Tokopedia|Jml Tagihan : Rp.     304.000|";
const START: i64 = 50_000_000;

async fn sandbox_with(config: SandboxConfig) -> SandboxHandle {
    spawn_on_loopback(config).await.expect("sandbox starts")
}

async fn sandbox() -> SandboxHandle {
    sandbox_with(SandboxConfig::default()).await
}

fn client_for(
    sandbox: &SandboxHandle,
    credentials: Credentials,
    timeout: Duration,
) -> UpstreamClient {
    UpstreamClient::new(
        &sandbox.base_url(),
        "partner.example",
        credentials,
        timeout,
        8,
    )
}

fn client(sandbox: &SandboxHandle) -> UpstreamClient {
    client_for(
        sandbox,
        SandboxConfig::default().credentials(),
        Duration::from_secs(5),
    )
}

fn draft(
    message_type: MessageType,
    product: &str,
    bill_number: &str,
    trx_id: &str,
    payment_code: Option<&str>,
) -> Draft {
    Draft {
        message_type,
        product: product.into(),
        bill_number: bill_number.into(),
        trx_id: trx_id.into(),
        payment_code: payment_code.map(Into::into),
    }
}

/// Builds, signs (now) and sends one message.
async fn send(client: &UpstreamClient, draft: Draft) -> Outcome {
    let request = client.credentials().build_request(draft, Utc::now());
    client.send(request).await.outcome
}

fn answered(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Answered(response) => *response,
        other => panic!("expected an answer, got {other:?}"),
    }
}

async fn inquire(client: &UpstreamClient, product: &str, bill: &str, trx_id: &str) -> Response {
    let response = answered(
        send(
            client,
            draft(MessageType::Inquiry, product, bill, trx_id, None),
        )
        .await,
    );
    assert_eq!(response.result_code, "000", "{response:?}");
    response
}

async fn pay(
    client: &UpstreamClient,
    product: &str,
    bill: &str,
    trx_id: &str,
    payment_code: &str,
) -> Outcome {
    send(
        client,
        draft(
            MessageType::Payment,
            product,
            bill,
            trx_id,
            Some(payment_code),
        ),
    )
    .await
}

async fn advise(
    client: &UpstreamClient,
    product: &str,
    bill: &str,
    trx_id: &str,
    payment_code: &str,
) -> Response {
    answered(
        send(
            client,
            draft(
                MessageType::Advice,
                product,
                bill,
                trx_id,
                Some(payment_code),
            ),
        )
        .await,
    )
}

#[actix_rt::test]
async fn every_message_type_is_answered_like_the_vendor_examples() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);

    let request = client.credentials().build_request(
        draft(
            MessageType::Inquiry,
            "2042",
            "AF085713323054",
            "00000001",
            None,
        ),
        Utc::now(),
    );
    let sign = request.sign.clone();
    let exchange = client.send(request).await;
    assert_eq!(exchange.http_status, Some(200));
    let inquiry = answered(exchange.outcome);
    assert_eq!(inquiry.result_code, "000");
    assert_eq!(inquiry.result_desc, "SUKSES");
    assert_eq!(inquiry.service, "responseInquiry");
    assert_eq!(inquiry.nominal_amount(), Some(304_000));
    assert_eq!(inquiry.admin_fee(), Some(1_550));
    assert_eq!(inquiry.info1, VENDOR_INFO1);
    assert_eq!(inquiry.signature, sign);
    assert_eq!(inquiry.saldo, "");
    assert_eq!(inquiry.institution_code, "180309000002");
    assert_eq!(inquiry.payment_code.len(), 32);
    let code = inquiry.payment_code;

    let payment = answered(pay(&client, "2042", "AF085713323054", "00000002", &code).await);
    assert_eq!(payment.result_code, "000");
    assert_eq!(payment.service, "responsePayment");
    assert_eq!(payment.payment_code, code);
    assert_eq!(payment.balance(), Some(START - 305_550));
    // The vendor's payment answer carries the inquiry's trxId (PROTOCOL.md, "Errata").
    assert_eq!(payment.trx_id, "00000001");

    let purchase = answered(
        send(
            &client,
            draft(
                MessageType::Purchase,
                "3100",
                "08132259999",
                "00000004",
                None,
            ),
        )
        .await,
    );
    assert_eq!(purchase.result_code, "000");
    assert_eq!(purchase.service, "responsePayment");
    assert_eq!(
        (purchase.nominal_amount(), purchase.admin_fee()),
        (Some(10_050), Some(0))
    );
    assert_eq!(purchase.payment_code.len(), 32);
    assert_eq!(purchase.balance(), Some(START - 305_550 - 10_050));

    let advice = advise(&client, "2042", "AF085713323054", "00000002", &code).await;
    assert_eq!(advice.message_type, "advice");
    assert_eq!(advice.service, "responsePayment");
    assert_eq!(advice.result_code, "000");
    assert_eq!(
        advice.balance(),
        Some(START - 305_550),
        "the original outcome"
    );
    assert_eq!(advice.info1, VENDOR_INFO1);

    let balance = answered(
        send(
            &client,
            draft(
                MessageType::BalanceInquiry,
                "CBS",
                "0000000018",
                "00000006",
                None,
            ),
        )
        .await,
    );
    assert_eq!(
        (balance.result_code.as_str(), balance.result_desc.as_str()),
        ("00", "success")
    );
    assert_eq!(balance.service, "responseBalanceInquiry");
    assert_eq!(balance.balance(), Some(START - 305_550 - 10_050));
    assert_eq!(
        balance.info1,
        format!(
            "Customer Name : SANDBOX MITRA|Product Code : WADIAH|Balance : {}|",
            START - 305_550 - 10_050
        )
    );
    assert_eq!(sandbox.balance(), START - 305_550 - 10_050);
    sandbox.stop().await;
}

#[actix_rt::test]
async fn the_answer_is_json_strings_in_the_vendor_field_order() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let request = client.credentials().build_request(
        draft(
            MessageType::Inquiry,
            "1001",
            "532110000011",
            "00000001",
            None,
        ),
        Utc::now(),
    );
    let raw = client.send(request).await.raw_response.unwrap();
    let keys: Vec<&str> = raw
        .trim_start_matches('{')
        .split(",\"")
        .map(|pair| pair.trim_matches('"').split('"').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "service",
            "accountType",
            "account",
            "institutionCode",
            "product",
            "billNumber",
            "resultCode",
            "resultDesc",
            "nominal",
            "admin",
            "trxId",
            "retrieval",
            "paymentCode",
            "info1",
            "info2",
            "info3",
            "jmlLembar",
            "saldo",
            "signature"
        ]
    );
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&raw).unwrap();
    assert!(object.values().all(serde_json::Value::is_string));
}

#[actix_rt::test]
async fn a_signature_made_with_other_secrets_or_another_date_gets_994() {
    let sandbox = sandbox().await;
    let config = SandboxConfig::default();
    let mut other_password = config.credentials();
    other_password.password = "00000000000000000000000000000000".to_string().into();
    let stranger = client_for(&sandbox, other_password, Duration::from_secs(5));
    let response = answered(
        send(
            &stranger,
            draft(
                MessageType::Inquiry,
                "2042",
                "AF085713323054",
                "00000001",
                None,
            ),
        )
        .await,
    );
    assert_eq!(response.result_code, "994");
    assert_eq!(response.result_desc, "Signature is not match");

    // The same message signed for yesterday, today and tomorrow (in the sandbox's zone).
    let client = client(&sandbox);
    let today = business_date(Utc::now(), config.zone);
    let signed_for = |date| {
        let mut request: Request = client.credentials().build_request(
            draft(
                MessageType::Inquiry,
                "2042",
                "AF085713323054",
                "00000002",
                None,
            ),
            Utc::now(),
        );
        request.sign = SigningFields {
            message_type: "inquiry",
            account: &config.account,
            institution_code: &config.institution_code,
            product: "2042",
            bill_number: "AF085713323054",
            trx_id: "00000002",
        }
        .sign(&config.password, date, &config.key);
        request
    };
    for (date, expected) in [
        (today.checked_sub_days(Days::new(1)).unwrap(), "994"),
        (today.checked_add_days(Days::new(1)).unwrap(), "994"),
        (today, "000"),
    ] {
        let response = answered(client.send(signed_for(date)).await.outcome);
        assert_eq!(response.result_code, expected, "signed for {date}");
    }
    assert_eq!(sandbox.count(MessageType::Inquiry), 4);
}

/// Posts `body` to the sandbox with the given headers, bypassing the client's own headers.
async fn raw_post(
    sandbox: &SandboxHandle,
    method: awc::http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> u16 {
    let client = awc::Client::builder().no_default_headers().finish();
    let mut request = client.request(method, format!("{}{path}", sandbox.base_url()));
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    request
        .send_body(body.to_string())
        .await
        .expect("an HTTP answer")
        .status()
        .as_u16()
}

#[actix_rt::test]
async fn http_level_checks_answer_http_errors() {
    let sandbox = sandbox().await;
    let body = r#"{"type":"inquiry"}"#;
    // base64("sandbox-client:sandbox-secret")
    let good_auth = "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ=";
    let headers =
        |ua: &'static str, auth: &'static str, content_type: &'static str, origin: &'static str| {
            let mut all = vec![
                ("User-Agent", ua),
                ("Authorization", auth),
                ("Content-Type", content_type),
            ];
            if !origin.is_empty() {
                all.push(("Origin", origin));
            }
            all
        };
    let post = awc::http::Method::POST;
    let ok = headers(USER_AGENT, good_auth, "application/json", "partner.example");
    let cases = [
        (
            "wrong User-Agent",
            headers(
                "finsbugirompospay-b2b",
                good_auth,
                "application/json",
                "partner.example",
            ),
            403,
        ),
        (
            "wrong Basic credential",
            headers(
                USER_AGENT,
                "Basic c2FuZGJveC1jbGllbnQ6d3Jvbmc=",
                "application/json",
                "partner.example",
            ),
            401,
        ),
        (
            "wrong Content-Type",
            headers(USER_AGENT, good_auth, "text/plain", "partner.example"),
            415,
        ),
        (
            "no Origin",
            headers(USER_AGENT, good_auth, "application/json", ""),
            403,
        ),
        (
            "charset parameter",
            headers(
                USER_AGENT,
                good_auth,
                "application/json; charset=utf-8",
                "partner.example",
            ),
            200,
        ),
    ];
    for (what, headers, status) in cases {
        assert_eq!(
            raw_post(&sandbox, post.clone(), "/finsbu/h2h", &headers, body).await,
            status,
            "{what}"
        );
    }
    assert_eq!(
        raw_post(&sandbox, post.clone(), "/finsbu/h2h", &ok, "type=inquiry").await,
        400
    );
    assert_eq!(
        raw_post(&sandbox, post.clone(), "/finsbu/inquiry", &ok, body).await,
        404
    );
    assert_eq!(
        raw_post(&sandbox, awc::http::Method::PUT, "/finsbu/h2h", &ok, body).await,
        405
    );
    // Only the two bodies that passed authentication and parsing were logged.
    assert_eq!(sandbox.received().len(), 1);
    assert_eq!(sandbox.received()[0].result_code, "106");
}

#[actix_rt::test]
async fn malformed_fields_get_their_result_codes() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let short_trx = answered(
        send(
            &client,
            draft(
                MessageType::Inquiry,
                "2042",
                "AF085713323054",
                "0000001",
                None,
            ),
        )
        .await,
    );
    assert_eq!(short_trx.result_code, "107");
    assert_eq!(short_trx.result_desc, "Panjang trxId tidak valid");

    let mut letters = SandboxConfig::default().credentials();
    letters.account = "00000000AB".into();
    let response = answered(
        send(
            &client_for(&sandbox, letters, Duration::from_secs(5)),
            draft(
                MessageType::Inquiry,
                "2042",
                "AF085713323054",
                "00000001",
                None,
            ),
        )
        .await,
    );
    assert_eq!(response.result_code, "997");
    assert_eq!(response.account, "00000000AB", "request fields are echoed");

    let mut stranger = SandboxConfig::default().credentials();
    stranger.account = "0000000019".into();
    let response = answered(
        send(
            &client_for(&sandbox, stranger, Duration::from_secs(5)),
            draft(
                MessageType::Inquiry,
                "2042",
                "AF085713323054",
                "00000001",
                None,
            ),
        )
        .await,
    );
    assert_eq!(response.result_code, "301");

    let no_code = answered(
        send(
            &client,
            draft(
                MessageType::Payment,
                "2042",
                "AF085713323054",
                "00000002",
                None,
            ),
        )
        .await,
    );
    assert_eq!(no_code.result_code, "106");
    let unknown_product = answered(
        send(
            &client,
            draft(MessageType::Inquiry, "9999", "123", "00000003", None),
        )
        .await,
    );
    assert_eq!(unknown_product.result_code, "104");
    let inactive = answered(
        send(
            &client,
            draft(MessageType::Inquiry, "2099", "123", "00000004", None),
        )
        .await,
    );
    assert_eq!(inactive.result_code, "995");
    let not_found = answered(
        send(
            &client,
            draft(
                MessageType::Inquiry,
                "2042",
                "AF000000000001",
                "00000005",
                None,
            ),
        )
        .await,
    );
    assert_eq!(
        (
            not_found.result_code.as_str(),
            not_found.result_desc.as_str()
        ),
        ("014", "Nomor tagihan tidak ditemukan")
    );
    assert_eq!(sandbox.balance(), START);
}

#[actix_rt::test]
async fn a_payment_code_pays_once_and_advice_needs_its_own_trx_id() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let code = inquire(&client, "1201", "0100234567", "00000001")
        .await
        .payment_code;
    let first = answered(pay(&client, "1201", "0100234567", "00000002", &code).await);
    assert_eq!(first.result_code, "000");
    let second = answered(pay(&client, "1201", "0100234567", "00000003", &code).await);
    assert_eq!(second.result_code, "995");
    assert_eq!(
        second.result_desc,
        "paymentCode ini sudah di-payment. Lakukan cek status (reqPayment)"
    );
    assert_eq!(sandbox.balance(), START - 89_500, "charged once");

    let wrong_trx = advise(&client, "1201", "0100234567", "00000003", &code).await;
    assert_eq!(wrong_trx.result_code, "996");
    let unknown = answered(pay(&client, "1201", "0100234567", "00000004", &"a".repeat(32)).await);
    assert_eq!(unknown.result_code, "996");
    let right = advise(&client, "1201", "0100234567", "00000002", &code).await;
    assert_eq!(right.result_code, "000");
    assert_eq!(right.balance(), Some(START - 89_500));
}

#[actix_rt::test]
async fn transport_faults_leave_the_client_without_an_answer() {
    let sandbox = sandbox_with(SandboxConfig {
        late_delay: Duration::from_millis(1500),
        ..SandboxConfig::default()
    })
    .await;
    let client = client(&sandbox);
    let impatient = client_for(
        &sandbox,
        SandboxConfig::default().credentials(),
        Duration::from_millis(500),
    );
    let mut expected_balance = START;
    for (i, (bill, impatient_client, check)) in [
        (
            // Cut mid-body: awc takes the early EOF for the end, so the half JSON is invalid.
            "970080000001",
            false,
            (|reason: &UnknownReason| matches!(reason, UnknownReason::InvalidBody(_)))
                as fn(&UnknownReason) -> bool,
        ),
        ("970020000001", true, |reason| {
            *reason == UnknownReason::Timeout
        }),
        ("970030000001", false, |reason| {
            *reason == UnknownReason::HttpStatus(500)
        }),
        ("970040000001", false, |reason| {
            matches!(reason, UnknownReason::InvalidBody(_))
        }),
    ]
    .into_iter()
    .enumerate()
    {
        let inquiry_trx = format!("{:08}", 10 * i + 1);
        let payment_trx = format!("{:08}", 10 * i + 2);
        let inquiry = inquire(&client, "1301", bill, &inquiry_trx).await;
        assert!(inquiry.info1.contains("Pelanggan Uji"));
        let payer = if impatient_client {
            &impatient
        } else {
            &client
        };
        let started = Instant::now();
        match pay(payer, "1301", bill, &payment_trx, &inquiry.payment_code).await {
            Outcome::Unknown(reason) => assert!(check(&reason), "{bill}: {reason:?}"),
            other => panic!("{bill}: expected an unknown outcome, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{bill}");
        expected_balance -= 152_500;
        assert_eq!(sandbox.balance(), expected_balance, "{bill} was applied");
        let advice = advise(&client, "1301", bill, &payment_trx, &inquiry.payment_code).await;
        assert_eq!(advice.result_code, "000", "{bill}");
        assert_eq!(advice.balance(), Some(expected_balance));
    }
    let deliveries: Vec<Delivery> = sandbox
        .received()
        .into_iter()
        .filter(|m| m.message_type == "payment")
        .map(|m| m.delivery)
        .collect();
    assert_eq!(
        deliveries,
        [
            Delivery::Truncated,
            Delivery::Delayed,
            Delivery::ServerError,
            Delivery::NotJson
        ]
    );
    sandbox.stop().await;
}

#[actix_rt::test]
async fn lost_unapplied_unresolvable_and_already_paid_faults() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);

    let never = inquire(&client, "1001", "97005", "00000001").await;
    assert!(!matches!(
        pay(&client, "1001", "97005", "00000002", &never.payment_code).await,
        Outcome::Answered(_)
    ));
    assert_eq!(sandbox.balance(), START, "97005 is not applied");
    let advice = advise(&client, "1001", "97005", "00000002", &never.payment_code).await;
    assert_eq!(advice.result_code, "996");

    let stuck = inquire(&client, "1001", "97006", "00000003").await;
    assert!(!matches!(
        pay(&client, "1001", "97006", "00000004", &stuck.payment_code).await,
        Outcome::Answered(_)
    ));
    assert_eq!(sandbox.balance(), START - 152_500);
    for _ in 0..2 {
        let advice = advise(&client, "1001", "97006", "00000004", &stuck.payment_code).await;
        assert_eq!(advice.result_code, "102");
    }

    let doubled = inquire(&client, "1001", "97007", "00000005").await;
    let payment = answered(pay(&client, "1001", "97007", "00000006", &doubled.payment_code).await);
    assert_eq!(payment.result_code, "995");
    assert_eq!(sandbox.balance(), START - 2 * 152_500, "97007 is applied");
    let advice = advise(&client, "1001", "97007", "00000006", &doubled.payment_code).await;
    assert_eq!(advice.result_code, "000");
}

#[actix_rt::test]
async fn declines_are_answers_and_apply_nothing() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    for (message_type, product, bill, code, desc) in [
        (
            MessageType::Inquiry,
            "2042",
            "99102",
            "102",
            "Mohon maaf, System dalam maintenance. Mohon coba kembali 3 menit kedepan",
        ),
        (
            MessageType::Inquiry,
            "1001",
            "99993000001",
            "993",
            "Service (Produk) belum memiliki routing host",
        ),
        (
            MessageType::Purchase,
            "3100",
            "99998000001",
            "998",
            "Mohon maaf, service B2B sedang maintenance",
        ),
        (
            MessageType::Purchase,
            "3100",
            "99034000001",
            "034",
            "Tagihan sudah lunas",
        ),
        (
            MessageType::Inquiry,
            "1301",
            "99123",
            "123",
            "Biller error 123",
        ),
    ] {
        let response = answered(
            send(
                &client,
                draft(message_type, product, bill, "00000001", None),
            )
            .await,
        );
        assert_eq!(
            (response.result_code.as_str(), response.result_desc.as_str()),
            (code, desc),
            "{bill}"
        );
    }
    for (bill, code) in [("98051", "051"), ("98996", "996"), ("98108", "108")] {
        let inquiry = inquire(&client, "1201", bill, "00000002").await;
        assert_eq!(inquiry.nominal_amount(), Some(150_000));
        assert_eq!(inquiry.admin_fee(), Some(2_500));
        let payment = answered(pay(&client, "1201", bill, "00000003", &inquiry.payment_code).await);
        assert_eq!(payment.result_code, code, "{bill}");
    }
    assert_eq!(sandbox.balance(), START);
}

#[actix_rt::test]
async fn forced_faults_can_be_switched_at_run_time() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let impatient = client_for(
        &sandbox,
        SandboxConfig::default().credentials(),
        Duration::from_millis(300),
    );
    let balance = || {
        draft(
            MessageType::BalanceInquiry,
            "CBS",
            "0000000018",
            "00000001",
            None,
        )
    };

    sandbox.set_forced_fault(Some(ForcedFault::Maintenance("102".into())));
    assert_eq!(answered(send(&client, balance()).await).result_code, "102");

    sandbox.set_forced_fault(Some(ForcedFault::Garbage(MessageType::BalanceInquiry)));
    assert!(matches!(
        send(&client, balance()).await,
        Outcome::Unknown(UnknownReason::InvalidBody(_))
    ));
    let inquiry = inquire(&client, "2042", "AF085713323054", "00000002").await;
    assert_eq!(
        inquiry.nominal_amount(),
        Some(304_000),
        "other types are untouched"
    );

    sandbox.set_forced_fault(Some(ForcedFault::Delay(Duration::from_millis(600))));
    assert!(matches!(
        send(&impatient, balance()).await,
        Outcome::Unknown(UnknownReason::Timeout)
    ));

    sandbox.set_forced_fault(Some(ForcedFault::Blackhole));
    assert!(matches!(
        send(&impatient, balance()).await,
        Outcome::Unknown(UnknownReason::Timeout)
    ));
    assert_eq!(sandbox.received().last().unwrap().delivery, Delivery::Held);

    sandbox.set_forced_fault(None);
    assert_eq!(answered(send(&client, balance()).await).result_code, "00");
    let started = Instant::now();
    sandbox.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "held answers do not block stop"
    );
}

#[actix_rt::test]
async fn received_and_count_reflect_what_arrived() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let code = inquire(&client, "1501", "8888123456781", "00000001")
        .await
        .payment_code;
    answered(pay(&client, "1501", "8888123456781", "00000002", &code).await);
    answered(
        send(
            &client,
            draft(
                MessageType::Inquiry,
                "1501",
                "8888123456781",
                "0000003",
                None,
            ),
        )
        .await,
    );
    assert_eq!(sandbox.count(MessageType::Inquiry), 2);
    assert_eq!(sandbox.count(MessageType::Payment), 1);
    assert_eq!(sandbox.count(MessageType::Advice), 0);
    let received = sandbox.received();
    let summary: Vec<_> = received
        .iter()
        .map(|m| {
            (
                m.message_type.as_str(),
                m.trx_id.as_str(),
                m.product.as_str(),
                m.bill_number.as_str(),
                m.payment_code.as_deref(),
                m.result_code.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("inquiry", "00000001", "1501", "8888123456781", None, "000"),
            (
                "payment",
                "00000002",
                "1501",
                "8888123456781",
                Some(code.as_str()),
                "000"
            ),
            ("inquiry", "0000003", "1501", "8888123456781", None, "107"),
        ]
    );
    assert!(received.iter().all(|m| m.delivery == Delivery::Answered));
}

#[actix_rt::test]
async fn the_same_seed_issues_the_same_payment_codes() {
    let codes = |seed| async move {
        let sandbox = sandbox_with(SandboxConfig {
            seed,
            ..SandboxConfig::default()
        })
        .await;
        let client = client(&sandbox);
        let mut codes = Vec::new();
        for trx in ["00000001", "00000002", "00000003"] {
            codes.push(
                inquire(&client, "2042", "AF085713323054", trx)
                    .await
                    .payment_code,
            );
        }
        sandbox.stop().await;
        codes
    };
    let first = codes(7).await;
    assert_eq!(first, codes(7).await);
    assert_ne!(first, codes(8).await);
    assert_ne!(first[0], first[1]);
}

/// Sends a signed request with the exact headers the client uses, through a bare awc client.
async fn raw_send(
    sandbox: &SandboxHandle,
    request: &Request,
) -> Result<u16, awc::error::SendRequestError> {
    let config = SandboxConfig::default();
    awc::Client::builder()
        .no_default_headers()
        .finish()
        .post(format!("{}/finsbu/h2h", sandbox.base_url()))
        .insert_header(("User-Agent", USER_AGENT))
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("Origin", "partner.example"))
        .basic_auth(&config.client_id, &config.client_secret)
        .send_body(serde_json::to_vec(request).unwrap())
        .await
        .map(|response| response.status().as_u16())
}

#[actix_rt::test]
async fn a_lost_answer_drops_the_connection_before_any_byte() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let credentials = SandboxConfig::default().credentials();
    for (bill, applied) in [("97001", true), ("97005", false), ("97006", true)] {
        let code = inquire(&client, "1001", bill, "00000001")
            .await
            .payment_code;
        let before = sandbox.balance();
        let request = credentials.build_request(
            draft(MessageType::Payment, "1001", bill, "00000002", Some(&code)),
            Utc::now(),
        );
        // The request was written; no response head ever came back.
        match raw_send(&sandbox, &request).await {
            Err(awc::error::SendRequestError::Connect(awc::error::ConnectError::Disconnected)) => {}
            other => panic!("{bill}: expected a dropped connection, got {other:?}"),
        }
        assert_eq!(sandbox.balance() < before, applied, "{bill}");
        assert_eq!(sandbox.received().last().unwrap().delivery, Delivery::Lost);
    }
}

/// A dropped connection after the request was written must be an unknown outcome. awc reports
/// it as `SendRequestError::Connect(ConnectError::Disconnected)` (awc h1proto.rs), which
/// `UpstreamClient::send` currently maps to `Outcome::NotSent`: un-ignore once it maps it to
/// `Outcome::Unknown(UnknownReason::Connection(_))`.
#[actix_rt::test]
async fn the_client_reports_a_lost_answer_as_unknown() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    for bill in ["97001", "97005", "97006"] {
        let code = inquire(&client, "1001", bill, "00000001")
            .await
            .payment_code;
        let outcome = pay(&client, "1001", bill, "00000002", &code).await;
        assert!(
            matches!(outcome, Outcome::Unknown(UnknownReason::Connection(_))),
            "{bill}: {outcome:?}"
        );
    }
}

/// The control route's status and JSON body (`body` None: a GET).
async fn deposit_route(sandbox: &SandboxHandle, body: Option<&str>) -> (u16, serde_json::Value) {
    let client = awc::Client::default();
    let url = format!("{}{}", sandbox.base_url(), DEPOSIT_PATH);
    let mut response = match body {
        Some(body) => client
            .post(url)
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.to_string())
            .await
            .expect("an HTTP answer"),
        None => client.get(url).send().await.expect("an HTTP answer"),
    };
    let status = response.status().as_u16();
    let json = response.json().await.expect("a JSON body");
    (status, json)
}

async fn balance_inquiry(client: &UpstreamClient, trx_id: &str) -> i64 {
    let response = answered(
        send(
            client,
            draft(
                MessageType::BalanceInquiry,
                "CBS",
                "0000000018",
                trx_id,
                None,
            ),
        )
        .await,
    );
    assert_eq!(response.result_code, "00", "{response:?}");
    response.saldo.parse().expect("a numeric saldo")
}

async fn paid_saldo(client: &UpstreamClient, trx_id: &str) -> i64 {
    let code = inquire(client, "2042", "AF085713323054", "00000091")
        .await
        .payment_code;
    let response = answered(pay(client, "2042", "AF085713323054", trx_id, &code).await);
    assert_eq!(response.result_code, "000", "{response:?}");
    response.saldo.parse().expect("a numeric saldo")
}

#[actix_rt::test]
async fn the_start_deposit_is_configurable() {
    let sandbox = sandbox_with(SandboxConfig {
        initial_balance: 1_234_567,
        ..SandboxConfig::default()
    })
    .await;
    assert_eq!(
        balance_inquiry(&client(&sandbox), "00000001").await,
        1_234_567
    );
    assert_eq!(
        deposit_route(&sandbox, None).await,
        (200, serde_json::json!({"balance": 1_234_567}))
    );
}

#[actix_rt::test]
async fn a_top_up_shows_in_the_next_balance_inquiry_and_payment() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    assert_eq!(
        deposit_route(&sandbox, Some(r#"{"amount": 1000000}"#)).await,
        (200, serde_json::json!({"balance": START + 1_000_000}))
    );
    assert_eq!(
        balance_inquiry(&client, "00000001").await,
        START + 1_000_000
    );
    assert_eq!(
        paid_saldo(&client, "00000002").await,
        START + 1_000_000 - 305_550
    );
    // Nothing of it went through the H2H path.
    assert_eq!(sandbox.count(MessageType::BalanceInquiry), 1);
}

#[actix_rt::test]
async fn an_outside_charge_shows_likewise_and_one_beyond_the_balance_is_refused() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    assert_eq!(
        deposit_route(&sandbox, Some(r#"{"amount": -250000}"#)).await,
        (200, serde_json::json!({"balance": START - 250_000}))
    );
    assert_eq!(balance_inquiry(&client, "00000001").await, START - 250_000);
    assert_eq!(
        paid_saldo(&client, "00000002").await,
        START - 250_000 - 305_550
    );

    let left = START - 250_000 - 305_550;
    let (status, body) =
        deposit_route(&sandbox, Some(&format!(r#"{{"amount": {}}}"#, -(left + 1)))).await;
    assert_eq!(status, 422);
    assert_eq!(body["balance"], left);
    assert_eq!(sandbox.balance(), left, "a refused charge changes nothing");
    assert_eq!(balance_inquiry(&client, "00000003").await, left);

    // Taking it all is allowed; malformed movements are refused before any change.
    assert_eq!(
        deposit_route(&sandbox, Some(&format!(r#"{{"amount": {}}}"#, -left))).await,
        (200, serde_json::json!({"balance": 0}))
    );
    for bad in [r#"{"amount": "5"}"#, r#"{"amount": 1, "x": 2}"#, r#"{}"#] {
        let status = raw_post(
            &sandbox,
            awc::http::Method::POST,
            DEPOSIT_PATH,
            &[("Content-Type", "application/json")],
            bad,
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
    assert_eq!(sandbox.balance(), 0);
}

#[actix_rt::test]
async fn the_h2h_checks_stay_strict_beside_the_control_route() {
    let sandbox = sandbox().await;
    // The control route's lack of headers does not open the H2H path.
    let status = raw_post(
        &sandbox,
        awc::http::Method::POST,
        "/finsbu/h2h",
        &[("Content-Type", "application/json")],
        r#"{"type":"balanceInquiry"}"#,
    )
    .await;
    assert_eq!(status, 403);
    assert!(sandbox.received().is_empty());
}
