//! Reading JSON bodies field by field, so that every error names its field.

use serde_json::{Map, Value};

use super::error::ApiError;

/// The largest accepted body (API.md: over 64 KiB is 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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
