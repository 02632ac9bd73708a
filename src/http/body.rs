//! Reading JSON bodies field by field, so that every error names its field.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use serde_json::{Map, Value};

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

/// A parsed JSON object body.
pub struct JsonBody(pub Map<String, Value>);

impl JsonBody {
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(malformed("body", "must be a JSON object")),
            Err(error) => Err(malformed("body", format!("is not valid JSON: {error}"))),
        }
    }

    /// A required string field.
    pub fn string(&self, field: &str) -> Result<&str, ApiError> {
        match self.0.get(field) {
            Some(Value::String(value)) => Ok(value),
            Some(_) => Err(malformed(field, "must be a string")),
            None => Err(malformed(field, "is required")),
        }
    }

    /// An optional non-negative integer field.
    pub fn optional_amount(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => match number.as_i64() {
                Some(value) if value >= 0 => Ok(Some(value)),
                _ => Err(ApiError::Invalid(crate::domain::ValidationError::new(
                    static_field(field),
                    "must be a non-negative integer number of rupiah",
                ))),
            },
            Some(_) => Err(malformed(field, "must be an integer")),
        }
    }

    /// The body in canonical form (keys sorted), for the idempotency hash.
    pub fn canonical(&self) -> String {
        let sorted: std::collections::BTreeMap<&String, &Value> = self.0.iter().collect();
        serde_json::to_string(&sorted).expect("JSON values always serialize")
    }
}

fn malformed(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Malformed {
        field: field.to_string(),
        message: message.into(),
    }
}

fn static_field(field: &str) -> &'static str {
    match field {
        "amount" => "amount",
        _ => "body",
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

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
}
