//! Reading JSON request bodies into the typed `*Body` structs the OpenAPI document describes,
//! so that every error names its field.
//!
//! A body is read in two steps. First as a JSON object: not JSON, or not an object, is a 400 on
//! `body`, and the object's canonical form is kept for the idempotency hash (API.md: "the same
//! route and the same body, optional fields included"; unknown fields are ignored, but hashed).
//! Then into the body's type, with the path of the failing field (`serde_path_to_error`) and
//! serde's own account of what failed (`serde_value`'s structured errors): a missing field or a
//! wrong JSON type is malformed (400), a value of the right type that its domain newtype refuses
//! is not acceptable (422).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_value::{DeserializerError, ValueDeserializer};
use uuid::Uuid;

use crate::domain::ValidationError;

use super::error::ApiError;

/// The largest accepted body (API.md: over 64 KiB is 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The raw request body. Unlike `web::Bytes`, a body that cannot be read — over the payload
/// limit, cut short, or in a `Content-Encoding` that does not decode — is an [`ApiError`], so
/// the client gets the JSON error body of API.md rather than actix's plain text (which would
/// also show internal detail).
#[derive(Debug)]
pub struct RawBody(pub web::Bytes);

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            bytes.await.map(RawBody).map_err(|error| {
                if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    tracing::debug!(error = %error, "unreadable request body");
                    malformed(
                        "body",
                        "could not be read (cut short, or its Content-Encoding does not decode)",
                    )
                }
            })
        })
    }
}

/// A request body read into `T`, and the canonical form of the JSON object it came from.
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    /// The object as sent, keys sorted: the idempotency hash input.
    pub canonical: String,
}

impl<T: DeserializeOwned> JsonBody<T> {
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        let object = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(malformed("body", "must be a JSON object")),
            Err(error) => return Err(malformed("body", format!("is not valid JSON: {error}"))),
        };
        let canonical = canonical(&object);
        let value = typed(object)?;
        Ok(Self { value, canonical })
    }
}

/// The object with its keys sorted (nested objects are sorted already: serde_json's map is a
/// `BTreeMap`). Stored idempotency keys hold hashes of exactly this text.
fn canonical(object: &Map<String, Value>) -> String {
    let sorted: BTreeMap<&String, &Value> = object.iter().collect();
    serde_json::to_string(&sorted).expect("JSON values always serialize")
}

/// The object as a `T`, or the error that names the field at fault.
fn typed<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, ApiError> {
    let tree = serde_value::to_value(object).expect("a JSON object is a serde value");
    serde_path_to_error::deserialize(ValueDeserializer::<DeserializerError>::new(tree)).map_err(
        |error| {
            let at = match error.path().iter().next() {
                // A missing field fails at its parent: the root, for these flat bodies.
                None => "body".to_string(),
                Some(_) => error.path().to_string(),
            };
            match error.into_inner() {
                DeserializerError::MissingField(name) => malformed(name, "is required"),
                DeserializerError::InvalidType(_, expected) => {
                    malformed(&at, format!("must be {expected}"))
                }
                DeserializerError::InvalidValue(_, expected) => {
                    ValidationError::new(at, format!("must be {expected}")).into()
                }
                // The domain newtypes' own refusals (`parse`), and the UUID's.
                DeserializerError::Custom(message) => ValidationError::new(at, message).into(),
                other => malformed(&at, other.to_string()),
            }
        },
    )
}

fn malformed(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Malformed {
        field: field.to_string(),
        message: message.into(),
    }
}

/// `deserialize_with` for an optional amount of rupiah: a non-negative integer (API.md), or
/// absent or `null`. A number that is negative, fractional or past `i64` is not acceptable
/// (422); anything but a number is malformed (400).
pub fn optional_rupiah<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    struct Rupiah;

    impl<'de> Visitor<'de> for Rupiah {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer number of rupiah")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
            inner.deserialize_any(self)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            i64::try_from(value)
                .map(Some)
                .map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            if value < 0 {
                return Err(E::invalid_value(Unexpected::Signed(value), &self));
            }
            Ok(Some(value))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
            Err(E::invalid_value(Unexpected::Float(value), &self))
        }
    }

    deserializer.deserialize_option(Rupiah)
}

/// `deserialize_with` for the id of a transaction (a UUID in a string): another string is not
/// acceptable (422), anything but a string is malformed (400).
pub fn transaction_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    let raw = String::deserialize(deserializer)?;
    Uuid::parse_str(&raw).map_err(|_| de::Error::custom("must be a transaction id (UUID)"))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;
    use crate::domain::ProductCode;

    async fn read(request: TestRequest) -> Result<RawBody, ApiError> {
        let (request, mut payload) = request
            .app_data(web::PayloadConfig::new(4 * MAX_BODY_BYTES))
            .to_http_parts();
        RawBody::from_request(&request, &mut payload).await
    }

    #[actix_rt::test]
    async fn a_body_over_the_payload_limit_is_a_json_413() {
        let error = read(TestRequest::post().set_payload(vec![b'a'; 4 * MAX_BODY_BYTES + 1]))
            .await
            .expect_err("too large");
        assert!(matches!(error, ApiError::PayloadTooLarge), "{error:?}");
    }

    #[actix_rt::test]
    async fn a_body_that_does_not_decode_is_a_json_400_without_detail() {
        let error = read(
            TestRequest::post()
                .insert_header(("Content-Encoding", "gzip"))
                .set_payload(r#"{"product":"2042"}"#),
        )
        .await
        .expect_err("not gzip");
        assert!(
            matches!(&error, ApiError::Malformed { field, .. } if field == "body"),
            "{error:?}"
        );
        assert!(!error.to_string().contains("gzip header"), "{error}");
    }

    #[actix_rt::test]
    async fn a_readable_body_is_returned_unchanged() {
        let body = read(TestRequest::post().set_payload(r#"{"product":"2042"}"#))
            .await
            .expect("readable");
        assert_eq!(&body.0[..], br#"{"product":"2042"}"#);
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        product: ProductCode,
        #[serde(deserialize_with = "transaction_id")]
        inquiry_id: Uuid,
        #[serde(default, deserialize_with = "optional_rupiah")]
        amount: Option<i64>,
    }

    const ID: &str = "0192f1a4-7c1e-7d2a-9b1e-3f5c2d9e8a10";

    /// (status, field) of the error for `body`.
    fn refusal(body: &str) -> (u16, String) {
        use actix_web::ResponseError;
        let error = JsonBody::<Sample>::parse(body.as_bytes()).expect_err(body);
        let field = match &error {
            ApiError::Malformed { field, .. } => field.clone(),
            ApiError::Invalid(error) => error.field.to_string(),
            other => panic!("{body}: {other:?}"),
        };
        (error.status_code().as_u16(), field)
    }

    #[test]
    fn a_typed_body_names_the_field_at_fault_and_tells_malformed_from_unacceptable() {
        let with = |rest: &str| format!(r#"{{"product":"2042","inquiryId":"{ID}"{rest}}}"#);
        for (body, status, field) in [
            ("[]".to_string(), 400, "body"),
            ("{".to_string(), 400, "body"),
            (format!(r#"{{"inquiryId":"{ID}"}}"#), 400, "product"),
            (r#"{"product":"2042"}"#.to_string(), 400, "inquiryId"),
            (
                format!(r#"{{"product":2042,"inquiryId":"{ID}"}}"#),
                400,
                "product",
            ),
            (
                format!(r#"{{"product":null,"inquiryId":"{ID}"}}"#),
                400,
                "product",
            ),
            (
                format!(r#"{{"product":"20-2","inquiryId":"{ID}"}}"#),
                422,
                "product",
            ),
            (
                r#"{"product":"2042","inquiryId":"x"}"#.to_string(),
                422,
                "inquiryId",
            ),
            (
                r#"{"product":"2042","inquiryId":7}"#.to_string(),
                400,
                "inquiryId",
            ),
            (with(r#","amount":-1"#), 422, "amount"),
            (with(r#","amount":1.5"#), 422, "amount"),
            (with(r#","amount":1e30"#), 422, "amount"),
            (with(r#","amount":9223372036854775808"#), 422, "amount"),
            (with(r#","amount":"1""#), 400, "amount"),
            (with(r#","amount":true"#), 400, "amount"),
        ] {
            assert_eq!(refusal(&body), (status, field.to_string()), "{body}");
        }
    }

    #[test]
    fn an_accepted_body_keeps_every_field_in_its_canonical_form() {
        let body = JsonBody::<Sample>::parse(
            format!(r#"{{"zeta":[1,{{"b":1,"a":2}}],"product":"2042","inquiryId":"{ID}","amount":null}}"#)
                .as_bytes(),
        )
        .expect("acceptable");
        assert_eq!(body.value.product.as_str(), "2042");
        assert_eq!(body.value.inquiry_id.to_string(), ID);
        assert_eq!(body.value.amount, None);
        // What stored keys were hashed over: sorted keys, unknown fields included.
        assert_eq!(
            body.canonical,
            format!(
                r#"{{"amount":null,"inquiryId":"{ID}","product":"2042","zeta":[1,{{"a":2,"b":1}}]}}"#
            )
        );
        let paid = JsonBody::<Sample>::parse(
            format!(r#"{{"product":"2042","inquiryId":"{ID}","amount":305550}}"#).as_bytes(),
        )
        .expect("acceptable");
        assert_eq!(paid.value.amount, Some(305_550));
    }
}
