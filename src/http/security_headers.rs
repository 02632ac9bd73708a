//! Default response headers, in one middleware: every answer is `nosniff`; `/v1` answers (private
//! data) are never stored by a cache; the pages (`/docs/`, `/openapi.json`, `/ui/`) may not be
//! framed and run only their own scripts. A header a handler set itself (the finance page's own
//! policy, `/metrics`' `Cache-Control`) is kept.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// The documentation pages: Swagger UI's own scripts and styles (it sets inline styles), its
/// inline SVG icons, and "Try it out" calls to this origin.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// What a path serves, for its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Api,
    Page,
    Other,
}

impl Served {
    fn of(path: &str) -> Self {
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if under("/v1") {
            Served::Api
        } else if under("/docs") || under("/ui") || path == "/openapi.json" {
            Served::Page
        } else {
            Served::Other
        }
    }
}

fn insert_absent(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Middleware (for `actix_web::middleware::from_fn`).
pub async fn add<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let served = Served::of(request.path());
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    insert_absent(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    match served {
        Served::Api => insert_absent(headers, header::CACHE_CONTROL, "no-store"),
        Served::Page => {
            insert_absent(
                headers,
                header::CONTENT_SECURITY_POLICY,
                DOCS_CONTENT_SECURITY_POLICY,
            );
            insert_absent(headers, header::X_FRAME_OPTIONS, "DENY");
            insert_absent(headers, header::REFERRER_POLICY, "no-referrer");
        }
        Served::Other => {}
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_told_apart_by_their_first_segment() {
        assert_eq!(Served::of("/v1/transactions"), Served::Api);
        assert_eq!(Served::of("/v1"), Served::Api);
        assert_eq!(Served::of("/v10"), Served::Other);
        assert_eq!(Served::of("/docs/"), Served::Page);
        assert_eq!(Served::of("/docs/swagger-ui.css"), Served::Page);
        assert_eq!(Served::of("/openapi.json"), Served::Page);
        assert_eq!(Served::of("/ui/"), Served::Page);
        assert_eq!(Served::of("/healthz"), Served::Other);
        assert_eq!(Served::of("/docsx"), Served::Other);
    }
}
