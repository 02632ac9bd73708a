//! Builds and runs the application: listener, store, upstream clients per worker, routes, and
//! the reconciler. `serve` and the tests both go through [`Application::build_with`].

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{Extensions, HttpService};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Server};
use actix_web::middleware::from_fn;
use actix_web::{web, App};

use crate::clock::{Clock, SystemClock};
use crate::config::{Settings, UpstreamSettings};
use crate::h2h::{CircuitBreaker, UpstreamClient};
use crate::http;
use crate::payments::duplicate_guard::PurchaseLocks;
use crate::payments::reconciler::Reconciler;
use crate::payments::Payments;
use crate::store::SharedStore;
use crate::webhooks::{self, DeliveryWorker, WebhookSender};

/// How long a closing connection may take to shut down.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection stays open (above common proxies' 60 s idle timeout).
const KEEP_ALIVE: Duration = Duration::from_secs(75);

/// Options that are not configuration: how this process runs.
#[derive(Clone)]
pub struct RunOptions {
    /// HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Run the reconciler in this process.
    pub reconciler: bool,
    pub clock: Arc<dyn Clock>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            workers: None,
            reconciler: true,
            clock: Arc::new(SystemClock),
        }
    }
}

/// A built, listening gateway.
pub struct Application {
    port: u16,
    server: Server,
    store: SharedStore,
    stop_reconciler: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Builds the gateway on a store (migrations applied) and a bound listener made by the
    /// caller, and starts the reconciler. The upstream must be configured (`--sandbox` fills it
    /// in before this).
    pub fn build_with(
        settings: Settings,
        options: RunOptions,
        store: SharedStore,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let upstream = settings.upstream.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "no upstream configured: set GATEWAY_UPSTREAM_URL and the credentials, or run with --sandbox"
            )
        })?;
        // Built once (reading the system's roots takes a while); every worker's client shares it.
        let upstream_tls = if upstream.url.starts_with("https://") {
            Some(upstream.tls.client_config()?)
        } else {
            None
        };
        let port = listener.local_addr()?.port();
        let events_committed = Arc::new(tokio::sync::Notify::new());
        let webhook_key =
            match webhooks::load_encryption_key(settings.webhooks.encryption_key_file.as_deref()) {
                Ok(key) => Ok(Arc::new(key)),
                Err(off) => {
                    tracing::warn!("{off}; events are still recorded and listed in GET /v1/events");
                    Err(off.to_string())
                }
            };
        // Built once, here, so that a bad `webhooks.ca_file` stops the start-up.
        let webhook_tls = match (&webhook_key, settings.webhooks.concurrency) {
            (Ok(key), concurrency) if concurrency > 0 => Some((
                key.clone(),
                webhooks::client_config(settings.webhooks.ca_file.as_deref())?,
            )),
            _ => None,
        };
        crate::metrics::allow_result_codes(&settings.payments.unknown_outcome_codes);
        let payments_settings = settings.payments.clone();
        // One breaker and one set of purchase locks per process, shared by every worker.
        let breaker = CircuitBreaker::new(upstream.breaker);
        let purchase_locks = PurchaseLocks::new();
        let make_payments = {
            let store = store.clone();
            let clock = options.clock.clone();
            let events_committed = events_committed.clone();
            move || {
                Payments::new(
                    store.clone(),
                    upstream_client(&upstream, upstream_tls.clone()),
                    clock.clone(),
                    payments_settings.clone(),
                    breaker.clone(),
                    purchase_locks.clone(),
                )
                .with_event_signal(events_committed.clone())
            }
        };

        let (stop_reconciler, stop_rx) = tokio::sync::watch::channel(false);
        if options.reconciler {
            let reconciler = Reconciler::new(make_payments()).with_deposit(settings.deposit);
            actix_rt::spawn(reconciler.run(stop_rx.clone()));
        }
        match webhook_tls {
            Some((key, tls)) => {
                let worker = DeliveryWorker {
                    store: store.clone(),
                    key,
                    sender: WebhookSender::new(tls, settings.webhooks.timeout),
                    schedule: settings.webhooks.retry_schedule.clone(),
                    clock: options.clock.clone(),
                    concurrency: settings.webhooks.concurrency,
                    wake: events_committed.clone(),
                };
                actix_rt::spawn(worker.run(stop_rx));
            }
            None if webhook_key.is_ok() => {
                tracing::info!("webhooks.concurrency is 0: this process delivers no webhooks");
            }
            None => {}
        }
        let webhook_admin = web::Data::new(http::webhooks::WebhookAdmin::new(
            webhook_key,
            settings.webhooks.rotation_overlap,
            events_committed,
        ));

        let probes = web::Data::new(http::probes::Probes::start(
            store.clone(),
            stop_reconciler.subscribe(),
        ));
        let store_data = web::Data::new(store.clone());
        let zone = web::Data::new(http::search::BusinessZone(settings.zone));
        let rate_limiter = web::Data::new(http::rate_limit::RateLimiter::new(&settings.rate_limit));
        let key_cache = web::Data::new(http::key_cache::KeyCache::default());
        let make_app = move || {
            let app = App::new()
                .wrap(from_fn(http::rate_limit::limit))
                .wrap(from_fn(http::metrics::record))
                .wrap(from_fn(http::request_id::assign))
                .wrap(from_fn(http::security_headers::add))
                .wrap(from_fn(http::connections::track))
                .app_data(store_data.clone())
                .app_data(zone.clone())
                .app_data(rate_limiter.clone())
                .app_data(webhook_admin.clone())
                .app_data(key_cache.clone())
                .app_data(probes.clone())
                .app_data(web::Data::new(make_payments()))
                .app_data(web::PayloadConfig::new(4 * http::body::MAX_BODY_BYTES));
            http::register(app)
        };
        let client_timeout = Duration::from_millis(settings.http.client_timeout_ms);
        let connections = Arc::new(http::connections::ConnectionCounts::new(
            settings.http.max_connections_per_address,
            http::client_address::TrustedProxies::new(&settings.rate_limit.trusted_proxies),
            client_timeout,
        ));
        let local_addr = listener.local_addr()?;
        // actix-web's `HttpServer`, built from its parts so that every accepted connection is a
        // `TimedStream` (src/http/connections.rs).
        let builder = actix_server::Server::build();
        let shutdown = builder.graceful_shutdown_signal();
        let server = builder
            .workers(options.workers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(2)
            }))
            .shutdown_timeout(30)
            .listen("gateway", listener, move || {
                let connections = connections.clone();
                let shutdown = shutdown.clone();
                let accept = fn_service(move |io: actix_rt::net::TcpStream| {
                    std::future::ready(connections.accept(io))
                });
                let app = make_app()
                    .into_factory()
                    .map_err(|error: actix_web::Error| error.error_response());
                let http = HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let shutdown = shutdown.clone();
                        async move { shutdown.notified().await }
                    })
                    .keep_alive(KEEP_ALIVE)
                    .client_request_timeout(client_timeout)
                    .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
                    .local_addr(local_addr)
                    .on_connect_ext(
                        |io: &http::connections::TimedStream, data: &mut Extensions| {
                            data.insert(io.state());
                        },
                    )
                    .h1(map_config(app, move |_| AppConfig::default()));
                accept.and_then(http)
            })?
            .run();
        Ok(Self {
            port,
            server,
            store,
            stop_reconciler,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// A handle to stop the server gracefully (in-flight requests finish).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (SIGINT/SIGTERM: graceful, in-flight requests finish).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.stop_reconciler.send(true);
        result
    }
}

fn upstream_client(
    upstream: &UpstreamSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> UpstreamClient {
    let credentials = upstream.credentials.clone();
    let (url, origin, timeout) = (&upstream.url, &upstream.origin, upstream.timeout);
    let connections = upstream.max_connections;
    match tls {
        Some(tls) => UpstreamClient::with_tls(url, origin, credentials, timeout, connections, tls),
        None => UpstreamClient::new(url, origin, credentials, timeout, connections),
    }
}
