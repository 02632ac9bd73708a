//! The checks a message must pass, in the order the simulator applies them: first HTTP-level
//! (answered with an HTTP error status), then H2H-level (answered HTTP 200 with a result code).

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use base64::Engine;
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};

use super::config::SandboxConfig;
use crate::h2h::{MessageType, SigningFields, ACCOUNT_TYPE, USER_AGENT};

/// Longest `billNumber` the vendor allows.
pub(crate) const MAX_BILL_NUMBER: usize = 1500;
/// Longest `product` the vendor allows.
pub(crate) const MAX_PRODUCT: usize = 5;

/// An HTTP-level refusal: the message never reaches the H2H host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub reason: &'static str,
}

impl Refusal {
    const fn new(status: StatusCode, reason: &'static str) -> Self {
        Self { status, reason }
    }
}

/// User-Agent (403), Basic credentials (401), Content-Type (415), Origin (403), in that order.
pub(crate) fn check_headers(headers: &HeaderMap, config: &SandboxConfig) -> Result<(), Refusal> {
    let user_agent = headers.get(header::USER_AGENT).map(|v| v.as_bytes());
    if user_agent != Some(USER_AGENT.as_bytes()) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "User-Agent not allowed",
        ));
    }
    if !basic_auth_matches(headers, config) {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "Invalid credentials",
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    if !origin {
        return Err(Refusal::new(StatusCode::FORBIDDEN, "Origin required"));
    }
    Ok(())
}

fn basic_auth_matches(headers: &HeaderMap, config: &SandboxConfig) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", config.client_id, config.client_secret);
    decoded == expected.as_bytes()
}

/// The body must be one JSON object (HTTP 400 otherwise).
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Body must be a JSON object",
        )),
    }
}

/// The request fields as text, for echoing back and for the received log. A value that is not
/// a string is echoed as its JSON text; a missing one as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    pub message_type: String,
    pub account_type: String,
    pub account: String,
    pub institution_code: String,
    pub product: String,
    pub bill_number: String,
    pub trx_id: String,
    pub retrieval: String,
    pub payment_code: Option<String>,
    pub sign: String,
}

impl Fields {
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let text = |key: &str| match map.get(key) {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        Self {
            message_type: text("type"),
            account_type: text("accountType"),
            account: text("account"),
            institution_code: text("institutionCode"),
            product: text("product"),
            bill_number: text("billNumber"),
            trx_id: text("trxId"),
            retrieval: text("retrieval"),
            payment_code: map.get("paymentCode").map(|_| text("paymentCode")),
            sign: text("sign"),
        }
    }
}

/// Fields every message must carry, non-empty.
const MANDATORY: [&str; 9] = [
    "type",
    "accountType",
    "account",
    "institutionCode",
    "product",
    "billNumber",
    "trxId",
    "retrieval",
    "sign",
];

/// The H2H checks, in order; `Err` holds the result code to answer.
///
/// 1. any value not a string → `997`; 2. a mandatory field missing or blank → `106`;
/// 3. unknown `type` → `997`; 4. `paymentCode` missing on payment/advice → `106`;
/// 5. `accountType` ≠ `B2B` → `997`; 6. `trxId` not 8 digits → `107`;
/// 7. `account` not 10 digits, `institutionCode` not 12, `product` over 5 characters,
///    `billNumber` over 1500, `retrieval` not a 17-digit `yyyyMMddHHmmssSSS` time → `997`;
/// 8. another account → `301`; 9. another institution → `996`;
/// 10. signature not made with today's date in the sandbox's zone → `994`.
pub(crate) fn check_message(
    map: &Map<String, Value>,
    fields: &Fields,
    config: &SandboxConfig,
    today: NaiveDate,
) -> Result<MessageType, &'static str> {
    if map.values().any(|v| !v.is_string()) {
        return Err("997");
    }
    let blank = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
    };
    if MANDATORY.iter().any(|key| blank(key)) {
        return Err("106");
    }
    let message_type = MessageType::parse(&fields.message_type).ok_or("997")?;
    if message_type.carries_payment_code() && blank("paymentCode") {
        return Err("106");
    }
    if fields.account_type != ACCOUNT_TYPE {
        return Err("997");
    }
    if !is_digits(&fields.trx_id, 8) {
        return Err("107");
    }
    let well_formed = is_digits(&fields.account, 10)
        && is_digits(&fields.institution_code, 12)
        && fields.product.chars().count() <= MAX_PRODUCT
        && fields.bill_number.chars().count() <= MAX_BILL_NUMBER
        && is_retrieval(&fields.retrieval);
    if !well_formed {
        return Err("997");
    }
    if fields.account != config.account {
        return Err("301");
    }
    if fields.institution_code != config.institution_code {
        return Err("996");
    }
    let expected = SigningFields {
        message_type: &fields.message_type,
        account: &fields.account,
        institution_code: &fields.institution_code,
        product: &fields.product,
        bill_number: &fields.bill_number,
        trx_id: &fields.trx_id,
    }
    .sign(&config.password, today, &config.key);
    if fields.sign != expected {
        return Err("994");
    }
    Ok(message_type)
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// `yyyyMMddHHmmssSSS`, a real date and time.
fn is_retrieval(s: &str) -> bool {
    is_digits(s, 17) && NaiveDateTime::parse_from_str(&s[..14], "%Y%m%d%H%M%S").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn vendor_inquiry() -> Map<String, Value> {
        serde_json::from_str(
            r#"{"type":"inquiry","accountType":"B2B","account":"0000000018","institutionCode":"180309000002","product":"2042","billNumber":"AF085713323054","trxId":"00000001","retrieval":"20180125003025879","sign":"b3847e3a099979c1d96e3d186e0e05fa"}"#,
        )
        .unwrap()
    }

    fn vendor_date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2018, 3, 22).unwrap()
    }

    fn check(map: &Map<String, Value>, today: NaiveDate) -> Result<MessageType, &'static str> {
        check_message(
            map,
            &Fields::from_map(map),
            &SandboxConfig::default(),
            today,
        )
    }

    fn with(key: &str, value: Value) -> Map<String, Value> {
        let mut map = vendor_inquiry();
        map.insert(key.into(), value);
        map
    }

    #[test]
    fn the_vendor_example_passes_on_its_own_date_only() {
        assert_eq!(
            check(&vendor_inquiry(), vendor_date()),
            Ok(MessageType::Inquiry)
        );
        assert_eq!(
            check(&vendor_inquiry(), vendor_date().succ_opt().unwrap()),
            Err("994")
        );
        assert_eq!(
            check(&vendor_inquiry(), vendor_date().pred_opt().unwrap()),
            Err("994")
        );
    }

    #[test]
    fn each_malformed_field_gets_its_code() {
        let today = vendor_date();
        assert_eq!(check(&with("trxId", Value::from(1)), today), Err("997"));
        assert_eq!(check(&with("trxId", Value::from("")), today), Err("106"));
        let mut missing = vendor_inquiry();
        missing.remove("retrieval");
        assert_eq!(check(&missing, today), Err("106"));
        assert_eq!(check(&with("type", "refund".into()), today), Err("997"));
        assert_eq!(check(&with("type", "payment".into()), today), Err("106"));
        assert_eq!(check(&with("accountType", "B2C".into()), today), Err("997"));
        assert_eq!(check(&with("trxId", "0000001".into()), today), Err("107"));
        assert_eq!(check(&with("trxId", "0000000a".into()), today), Err("107"));
        assert_eq!(
            check(&with("account", "000000001A".into()), today),
            Err("997")
        );
        assert_eq!(
            check(&with("institutionCode", "18030900000".into()), today),
            Err("997")
        );
        assert_eq!(
            check(&with("retrieval", "20181325003025879".into()), today),
            Err("997")
        );
        assert_eq!(check(&with("product", "204299".into()), today), Err("997"));
        assert_eq!(
            check(&with("billNumber", "1".repeat(1501).into()), today),
            Err("997")
        );
        assert_eq!(
            check(&with("account", "0000000019".into()), today),
            Err("301")
        );
        assert_eq!(
            check(&with("institutionCode", "180309000003".into()), today),
            Err("996")
        );
        assert_eq!(
            check(
                &with("sign", "B3847E3A099979C1D96E3D186E0E05FA".into()),
                today
            ),
            Err("994")
        );
    }

    fn good_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ="),
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert(header::ORIGIN, HeaderValue::from_static("partner.example"));
        headers
    }

    #[test]
    fn headers_are_checked_in_order() {
        let config = SandboxConfig::default();
        assert_eq!(check_headers(&good_headers(), &config), Ok(()));
        let status_without = |name: header::HeaderName, value: Option<&'static str>| {
            let mut headers = good_headers();
            headers.remove(&name);
            if let Some(value) = value {
                headers.insert(name, HeaderValue::from_static(value));
            }
            check_headers(&headers, &config).unwrap_err().status
        };
        assert_eq!(
            status_without(header::USER_AGENT, Some("finsbugirompospay-b2b")),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_without(
                header::AUTHORIZATION,
                Some("Basic c2FuZGJveC1jbGllbnQ6d3Jvbmc=")
            ),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_without(header::AUTHORIZATION, None),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_without(header::CONTENT_TYPE, Some("text/plain")),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            status_without(header::ORIGIN, Some(" ")),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn only_objects_are_bodies() {
        assert!(parse_object(br#"{"a":"b"}"#).is_ok());
        assert_eq!(
            parse_object(b"[1]").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_object(b"type=inquiry").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
