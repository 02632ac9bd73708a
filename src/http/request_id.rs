//! One request id per request: taken from `X-Request-Id` when it is sane, made otherwise, sent
//! back in `X-Request-Id` and carried into logs and upstream exchange records.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The request's id, in the request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What a client's id must look like to be kept: exactly what [`sane`] accepts.
pub const PATTERN: &str = "^[A-Za-z0-9._:-]{1,128}$";

fn sane(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware (for `actix_web::middleware::from_fn`).
pub async fn assign(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| sane(value))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.path()
    );
    let mut response = next.call(request).instrument(span.clone()).await?;
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), "request finished");
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(HEADER), value);
    }
    Ok(response)
}
