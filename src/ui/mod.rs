//! The finance staff's page (`GET /ui/`): search, transaction detail, daily report, the deposit
//! reconciliation (its chart drawn as inline SVG), CSV export and the deposit balance. Plain
//! HTML, CSS and JavaScript embedded in the binary: no CDN, no build step. The page talks to the
//! `/v1` API with a finance key the user types in; it holds no secret of its own.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// Only the page's own files may run or style it; data is fetched from the same origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Registers `/ui`, `/ui/`, `/ui/app.js` and `/ui/app.css`.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/ui", web::get().to(redirect_to_index))
        .route("/ui/", web::get().to(index))
        .route("/ui/app.js", web::get().to(script))
        .route("/ui/app.css", web::get().to(stylesheet));
}

async fn redirect_to_index() -> HttpResponse {
    let mut response = HttpResponse::Found();
    response.insert_header((header::LOCATION, "/ui/"));
    with_page_headers(response, "text/plain; charset=utf-8", "")
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    with_page_headers(HttpResponse::Ok(), content_type, body)
}

fn with_page_headers(
    mut response: actix_web::HttpResponseBuilder,
    content_type: &'static str,
    body: &'static str,
) -> HttpResponse {
    response
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        // Always revalidate: a new gateway version must never run an old script.
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .body(body)
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::App;

    use super::*;

    async fn get(path: &str) -> actix_web::dev::ServiceResponse {
        let app = init_service(App::new().configure(routes)).await;
        call_service(&app, TestRequest::get().uri(path).to_request()).await
    }

    fn header<'a>(response: &'a actix_web::dev::ServiceResponse, name: &str) -> &'a str {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    #[actix_rt::test]
    async fn assets_have_their_content_type_csp_and_no_cache() {
        for (path, content_type) in [
            ("/ui/", "text/html; charset=utf-8"),
            ("/ui/app.js", "text/javascript; charset=utf-8"),
            ("/ui/app.css", "text/css; charset=utf-8"),
        ] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, "content-type"), content_type, "{path}");
            assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
            assert_eq!(
                header(&response, "content-security-policy"),
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        }
    }

    #[actix_rt::test]
    async fn bare_ui_redirects_to_the_index() {
        let response = get("/ui").await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(header(&response, "location"), "/ui/");
    }

    #[test]
    fn the_policy_forbids_inline_script_and_the_page_has_none() {
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
        // Every <script> loads a file; no inline handlers or styles.
        for tag in INDEX_HTML.split("<script").skip(1) {
            assert!(tag.trim_start().starts_with("src="), "inline script: {tag}");
        }
        for attribute in [" onclick=", " onload=", " onsubmit=", " style=", "<style"] {
            assert!(!INDEX_HTML.contains(attribute), "{attribute} in index.html");
        }
        // The script never renders data as HTML.
        assert!(!APP_JS.contains("innerHTML"));
        assert!(!APP_JS.contains("outerHTML"));
        assert!(!APP_JS.contains("insertAdjacentHTML"));
    }
}
