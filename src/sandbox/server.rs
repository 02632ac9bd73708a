//! The actix-web app: the H2H route, `POST /finsbu/h2h`, with its HTTP-level checks and the
//! delivery of the host's answer (now, late, lost, HTTP 500, not JSON, or never); and the
//! sandbox's own control plane beside it, `GET`/`POST /sandbox/deposit` (docs/sandbox.md).

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header::ContentType;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::host::Plan;
use super::validate::{self, Refusal};
use super::Sandbox;
use crate::h2h::H2H_PATH;

/// The control route for top-ups and outside charges: not part of the protocol, so it carries
/// none of its headers or signature, and answers loopback peers only.
pub const DEPOSIT_PATH: &str = "/sandbox/deposit";

/// Bodies are a few hundred bytes; `billNumber` alone may hold 1500 characters.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// An HTTP server for `sandbox` on `listener`. `signals`: whether Ctrl-C/SIGTERM stop it (the
/// CLI) or only its handle does (tests, embedded use).
pub(crate) fn build(
    sandbox: Sandbox,
    listener: TcpListener,
    signals: bool,
) -> std::io::Result<Server> {
    let data = web::Data::new(sandbox);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // Other methods on the path get actix's 405, other paths its 404.
            .service(web::resource(H2H_PATH).route(web::post().to(h2h)))
            .service(
                web::resource(DEPOSIT_PATH)
                    .route(web::get().to(deposit_balance))
                    .route(web::post().to(move_deposit)),
            )
    })
    .workers(2)
    // Longer than the client's pooled keep-alive, so the sandbox never closes a connection the
    // client is about to reuse.
    .keep_alive(Duration::from_secs(75))
    .shutdown_timeout(1);
    if !signals {
        server = server.disable_signals();
    }
    Ok(server.listen(listener)?.run())
}

async fn h2h(req: HttpRequest, body: web::Payload, sandbox: web::Data<Sandbox>) -> HttpResponse {
    if let Err(refusal) = validate::check_headers(req.headers(), sandbox.config()) {
        return refused(refusal);
    }
    let bytes = match body.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return HttpResponse::BadRequest().body("Unreadable body"),
        Err(_) => return HttpResponse::PayloadTooLarge().body("Body too large"),
    };
    let map = match validate::parse_object(&bytes) {
        Ok(map) => map,
        Err(refusal) => return refused(refusal),
    };
    let reply = sandbox.process(&map);
    tracing::debug!(
        message_type = %reply.answer.message_type,
        trx_id = %reply.answer.trx_id,
        result_code = %reply.answer.result_code,
        plan = ?reply.plan,
        "sandbox answer"
    );
    let shutdown = sandbox.shutdown_signal();
    match reply.plan {
        Plan::Answer => json(reply.answer.to_json()),
        Plan::After(delay) => {
            if stopped_within(shutdown, Some(delay)).await {
                lost()
            } else {
                json(reply.answer.to_json())
            }
        }
        Plan::Lost => lost(),
        Plan::Truncated => truncated(reply.answer.to_json()),
        Plan::ServerError => HttpResponse::InternalServerError()
            .content_type(ContentType::html())
            .body("<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>"),
        Plan::NotJson => HttpResponse::Ok()
            .content_type(ContentType::html())
            .body("<html><body><h1>Service Unavailable</h1>Backend fetch failed</body></html>"),
        Plan::Hold => {
            stopped_within(shutdown, None).await;
            lost()
        }
    }
}

/// `POST /sandbox/deposit`: `amount` in rupiah, positive for a top-up, negative for a charge.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DepositMovement {
    amount: i64,
}

/// The control plane moves money without a signature, so only this machine may use it (the
/// sandbox can be bound to a public address for a partner's devices).
fn from_loopback(req: &HttpRequest) -> bool {
    req.peer_addr().is_some_and(|peer| peer.ip().is_loopback())
}

fn not_from_loopback() -> HttpResponse {
    HttpResponse::Forbidden().json(serde_json::json!({
        "error": "the sandbox's control routes answer loopback clients only"
    }))
}

async fn deposit_balance(req: HttpRequest, sandbox: web::Data<Sandbox>) -> HttpResponse {
    if !from_loopback(&req) {
        return not_from_loopback();
    }
    HttpResponse::Ok().json(serde_json::json!({ "balance": sandbox.balance() }))
}

async fn move_deposit(
    req: HttpRequest,
    movement: web::Json<DepositMovement>,
    sandbox: web::Data<Sandbox>,
) -> HttpResponse {
    if !from_loopback(&req) {
        return not_from_loopback();
    }
    match sandbox.adjust_deposit(movement.amount) {
        Ok(balance) => {
            tracing::info!(amount = movement.amount, balance, "sandbox deposit moved");
            HttpResponse::Ok().json(serde_json::json!({ "balance": balance }))
        }
        Err(refused) => HttpResponse::UnprocessableEntity().json(serde_json::json!({
            "error": refused.to_string(),
            "balance": refused.balance,
        })),
    }
}

fn refused(refusal: Refusal) -> HttpResponse {
    let mut response = HttpResponse::build(refusal.status);
    if refusal.status == actix_web::http::StatusCode::UNAUTHORIZED {
        response.insert_header(("WWW-Authenticate", "Basic realm=\"MPospay B2B\""));
    }
    response
        .content_type(ContentType::plaintext())
        .body(refusal.reason)
}

fn json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

/// An answer that never completes: the body stream fails at once, so actix drops the
/// connection and the client gets no valid response.
fn lost() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .streaming(futures_util::stream::once(async {
            Err::<Bytes, _>(std::io::Error::other(
                "sandbox: answer dropped on purpose (injected fault)",
            ))
        }))
}

/// An answer cut in the middle: the head and half the JSON go out, then the body fails (after
/// a pause, so actix flushes what it has) and actix drops the connection.
fn truncated(body: String) -> HttpResponse {
    let body = Bytes::from(body);
    let half = body.slice(..body.len() / 2);
    let cut = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::other(
            "sandbox: answer cut on purpose (injected fault)",
        ))
    };
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .streaming(
            futures_util::stream::once(async move { Ok::<_, std::io::Error>(half) })
                .chain(futures_util::stream::once(cut)),
        )
}

/// Waits until the sandbox stops, or until `delay` passes (`None`: forever). True if stopped.
async fn stopped_within(mut shutdown: watch::Receiver<bool>, delay: Option<Duration>) -> bool {
    let stopped = async move {
        // An error means the sandbox is gone: stopped too.
        let _ = shutdown.wait_for(|stopped| *stopped).await;
    };
    match delay {
        Some(delay) => tokio::select! {
            () = stopped => true,
            () = tokio::time::sleep(delay) => false,
        },
        None => {
            stopped.await;
            true
        }
    }
}
