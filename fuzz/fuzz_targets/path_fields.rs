//! The values clients put in paths, headers and fields: bill number, product code, customer
//! number, account, institution code, trxId (`domain::fields`) and the Idempotency-Key header
//! (`http::idempotency::key_from`).
//!
//! Properties: each parser accepts exactly what API.md and PROTOCOL.md allow (checked against
//! the rule written out here byte by byte) and keeps the value unchanged; a rejection is a 422
//! (or 400 for the header) naming the field; a trxId prints back as the 8 digits it was read
//! from; a customer number is always a valid bill number.

#![no_main]
// The rules are spelled out byte range by byte range on purpose: not with the `is_ascii_*`
// calls the parsers themselves use.
#![allow(clippy::manual_is_ascii_check)]

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use actix_web::ResponseError;
use libfuzzer_sys::fuzz_target;
use mpospay_gateway::domain::{
    Account, BillNumber, CustomerNumber, IdempotencyKey, InstitutionCode, ProductCode, TrxId,
    ValidationError,
};
use mpospay_gateway::http::error::ApiError;
use mpospay_gateway::http::idempotency::{key_from, KEY_HEADER};

fn is_digit(b: u8) -> bool {
    matches!(b, b'0'..=b'9')
}

fn is_letter_or_digit(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z')
}

fn all(s: &str, allowed: fn(u8) -> bool) -> bool {
    s.bytes().all(allowed)
}

/// Accepted exactly when `rule` holds; an accepted value is the input unchanged, a rejected
/// one is a 422 naming `field`.
fn agrees<T: AsRef<str>>(field: &str, input: &str, parsed: Result<T, ValidationError>, rule: bool) {
    match parsed {
        Ok(value) => {
            assert!(rule, "{field} accepted {input:?}");
            assert_eq!(value.as_ref(), input);
        }
        Err(error) => {
            assert!(!rule, "{field} rejected {input:?}: {error}");
            assert_eq!(error.field, field);
            let error = ApiError::from(error);
            assert_eq!(error.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(error.code(), "invalid_field");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Path segments and JSON strings reach the parsers as UTF-8 text.
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    let len = s.len();

    agrees(
        "billNumber",
        s,
        BillNumber::parse("billNumber", s),
        (1..=1500).contains(&len) && all(s, |b| is_letter_or_digit(b) || b"-._".contains(&b)),
    );
    agrees(
        "product",
        s,
        ProductCode::parse("product", s),
        (1..=5).contains(&len) && all(s, is_letter_or_digit),
    );
    let customer = CustomerNumber::parse("customerNumber", s);
    if let Ok(number) = &customer {
        let bill = number.clone().into_bill_number();
        assert!(BillNumber::parse("billNumber", bill.as_str()).is_ok());
    }
    agrees(
        "customerNumber",
        s,
        customer,
        (1..=20).contains(&len) && all(s, is_digit),
    );
    agrees(
        "account",
        s,
        Account::parse("account", s),
        len == 10 && all(s, is_digit),
    );
    agrees(
        "institutionCode",
        s,
        InstitutionCode::parse("institutionCode", s),
        len == 12 && all(s, is_digit),
    );
    agrees(
        "Idempotency-Key",
        s,
        IdempotencyKey::parse("Idempotency-Key", s),
        (1..=255).contains(&len) && all(s, |b| (0x21..=0x7e).contains(&b)),
    );

    match TrxId::parse("trxId", s) {
        Ok(trx_id) => {
            assert!(
                len == 8 && all(s, is_digit) && s != "00000000",
                "trxId accepted {s:?}"
            );
            assert_eq!(trx_id.to_string(), s);
            assert!((1..=TrxId::MAX).contains(&trx_id.value()));
            let next = trx_id.next();
            assert_eq!(TrxId::parse("trxId", &next.to_string()), Ok(next));
            assert!(
                next.value() == trx_id.value() + 1
                    || (trx_id.value() == TrxId::MAX && next.value() == 1)
            );
        }
        Err(error) => {
            assert!(
                !(len == 8 && all(s, is_digit) && s != "00000000"),
                "trxId rejected {s:?}"
            );
            assert_eq!(error.field, "trxId");
        }
    }

    // The header, from its raw bytes (anything a header value may hold).
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let request = TestRequest::default()
        .insert_header((KEY_HEADER, value))
        .to_http_request();
    let rule = (1..=255).contains(&data.len()) && data.iter().all(|b| (0x21..=0x7e).contains(b));
    match key_from(&request) {
        Ok(key) => {
            assert!(rule, "Idempotency-Key accepted {data:?}");
            assert_eq!(key.as_str().as_bytes(), data);
        }
        Err(error) => {
            assert!(!rule, "Idempotency-Key rejected {data:?}: {error}");
            assert_eq!(error.status_code(), StatusCode::BAD_REQUEST);
            assert!(matches!(error, ApiError::Malformed { ref field, .. } if field == KEY_HEADER));
        }
    }
});
