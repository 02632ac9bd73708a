//! Faults of the processes around a payment (issue 7): Postgres crashed and restarted during a
//! load of payments, and the gateway binary killed at random points in a stream of 200 payments.
//! Each test counts what the simulator received and what the database holds: nothing lost,
//! nothing paid twice.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mpospay_gateway::h2h::MessageType;
use mpospay_gateway::http::idempotency::request_hash;
use mpospay_gateway::keys::Role;
use mpospay_gateway::sandbox::{ForcedFault, Sandbox, SandboxConfig};
use mpospay_gateway::store::sql::TRX_ID_BLOCK;
use mpospay_gateway::store::KeyClaim;
use mpospay_testkit::{GatewayCommand, GatewayProcess, PrivatePostgres};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

use crate::both_backends;
use crate::helpers::{
    create_key, spawn_app, spawn_app_with, Backend, TestDatabase, TestOptions, Upstream,
};

/// The gateway's per-message timeout here; a row left in `sending` is swept to advice once it
/// is this plus 5 s old.
const UPSTREAM_TIMEOUT_MS: u64 = 1000;

/// The gateway binary for these tests: advice at once, then every second; "not found" is
/// confirmed over 2 s.
fn gateway_process(upstream: &Upstream, database_url: &str) -> GatewayCommand {
    upstream
        .gateway_process(database_url)
        .env(
            "GATEWAY_UPSTREAM_TIMEOUT_MS",
            UPSTREAM_TIMEOUT_MS.to_string(),
        )
        .env("GATEWAY_PAYMENTS_ADVICE_SCHEDULE_SECS", "[0, 1]")
        .env("GATEWAY_PAYMENTS_NOT_FOUND_CONFIRM_SECS", "2")
}

/// One HTTP answer, or why there was none.
#[derive(Debug, Clone)]
struct Reply {
    /// `None`: no HTTP answer (refused, reset, timed out); `error` says which.
    status: Option<u16>,
    body: Value,
    retry_after: Option<String>,
    replayed: bool,
    error: Option<String>,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The transaction the answer is about: a transaction body, or an error naming one.
    fn transaction_id(&self) -> Option<String> {
        self.body["id"]
            .as_str()
            .or_else(|| self.body["error"]["transactionId"].as_str())
            .map(str::to_string)
    }
}

/// A client of the gateway's public API, as a cashier app would be.
#[derive(Clone)]
struct Api {
    http: awc::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(base: &str, key: &str) -> Self {
        Self {
            http: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            base: base.to_string(),
            key: key.to_string(),
        }
    }

    async fn call(&self, path: &str, idempotency_key: Option<&str>, body: Option<Value>) -> Reply {
        let url = format!("{}{}", self.base, path);
        let mut request = match body {
            Some(_) => self.http.post(url),
            None => self.http.get(url),
        }
        .insert_header(("Authorization", format!("Bearer {}", self.key)));
        if let Some(key) = idempotency_key {
            request = request.insert_header(("Idempotency-Key", key));
        }
        let sent = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        };
        let failed = |error: String| Reply {
            status: None,
            body: Value::Null,
            retry_after: None,
            replayed: false,
            error: Some(error),
        };
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return failed(error.to_string()),
        };
        let bytes = match response.body().limit(1 << 20).await {
            Ok(bytes) => bytes,
            Err(error) => return failed(format!("reading the body: {error}")),
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        Reply {
            status: Some(response.status().as_u16()),
            body: serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
            retry_after: header("retry-after"),
            replayed: header("idempotent-replayed").as_deref() == Some("true"),
            error: None,
        }
    }

    async fn inquire(&self, bill: &str) -> Reply {
        self.call(
            &format!("/v1/bills/{bill}/inquiry"),
            None,
            Some(json!({"product": "1501"})),
        )
        .await
    }

    async fn pay(&self, bill: &str, inquiry_id: &str, key: &str) -> Reply {
        self.call(
            &format!("/v1/bills/{bill}/payment"),
            Some(key),
            Some(json!({"product": "1501", "inquiryId": inquiry_id})),
        )
        .await
    }

    async fn readiness(&self) -> Reply {
        self.call("/readyz", None, None).await
    }
}

/// Pays with one Idempotency-Key until the gateway gives the payment's answer (200 or 202),
/// as a client does: the same request again after a lost connection, a 503 or a 409
/// `idempotency_key_in_use`. Anything else fails the test.
async fn pay_until_answered(
    api: &Api,
    bill: &str,
    inquiry_id: &str,
    key: &str,
    deadline: Instant,
) -> Reply {
    loop {
        let reply = api.pay(bill, inquiry_id, key).await;
        match reply.status {
            Some(200 | 202) => return reply,
            None | Some(503) => {}
            Some(409) if reply.code() == "idempotency_key_in_use" => {}
            Some(status) => panic!("payment {key} answered {status}: {}", reply.body),
        }
        assert!(
            Instant::now() < deadline,
            "payment {key} got no answer in time; last: {reply:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A BPJS bill number the simulator takes (13 digits starting `8888`), unique per `n`.
fn bpjs_bill(n: usize) -> String {
    format!("8888{n:09}")
}

/// Direct reads of the gateway's tables, to count what it holds.
enum Ledger {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// Runs one query on whichever database the ledger reads.
macro_rules! fetch_all {
    ($ledger:expr, $row:ty, $sql:expr) => {
        match $ledger {
            Ledger::Postgres(pool) => sqlx::query_as::<_, $row>($sql).fetch_all(pool).await,
            Ledger::Sqlite(pool) => sqlx::query_as::<_, $row>($sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|error| panic!("{}: {error}", $sql))
    };
}

#[derive(Debug, Clone)]
struct PaymentRow {
    id: String,
    status: String,
    trx_id: String,
    total: i64,
}

#[derive(Debug, Clone)]
struct KeyRow {
    key: String,
    transaction_id: Option<String>,
    response_status: Option<i32>,
}

impl Ledger {
    async fn open(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Ledger::Sqlite(sqlx::SqlitePool::connect(url).await.expect("SQLite opens"))
        } else {
            Ledger::Postgres(sqlx::PgPool::connect(url).await.expect("Postgres answers"))
        }
    }

    async fn close(&self) {
        match self {
            Ledger::Postgres(pool) => pool.close().await,
            Ledger::Sqlite(pool) => pool.close().await,
        }
    }

    async fn count(&self, sql: &'static str) -> i64 {
        fetch_all!(self, (i64,), sql)[0].0
    }

    async fn payments(&self) -> Vec<PaymentRow> {
        fetch_all!(
            self,
            (String, String, String, i64),
            "SELECT CAST(id AS TEXT), status, trx_id, \
             COALESCE(amount, 0) + COALESCE(admin_fee, 0) \
             FROM transactions WHERE kind = 'payment'"
        )
        .into_iter()
        .map(|(id, status, trx_id, total)| PaymentRow {
            id,
            status,
            trx_id,
            total,
        })
        .collect()
    }

    async fn transaction_ids(&self) -> HashSet<String> {
        fetch_all!(self, (String,), "SELECT CAST(id AS TEXT) FROM transactions")
            .into_iter()
            .map(|(id,)| id)
            .collect()
    }

    async fn keys(&self) -> Vec<KeyRow> {
        fetch_all!(
            self,
            (String, Option<String>, Option<i32>),
            "SELECT key, CAST(transaction_id AS TEXT), response_status FROM idempotency_keys"
        )
        .into_iter()
        .map(|(key, transaction_id, response_status)| KeyRow {
            key,
            transaction_id,
            response_status,
        })
        .collect()
    }

    /// Waits until no transaction is `sending` or `pending`: the stale-sending sweep and the
    /// reconciler's advice have resolved every unknown outcome.
    async fn wait_until_settled(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let open = self
                .count("SELECT COUNT(*) FROM transactions WHERE status IN ('sending', 'pending')")
                .await;
            if open == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{open} transactions still sending or pending after {within:?}"
            );
            actix_rt::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// What the simulator received and what the database holds, checked against each other once
/// everything has settled. Returns the payment rows.
async fn assert_nothing_lost_nothing_twice(
    ledger: &Ledger,
    sandbox: &Sandbox,
    balance_before: i64,
) -> Vec<PaymentRow> {
    let unsettled = ledger
        .count("SELECT COUNT(*) FROM transactions WHERE status NOT IN ('succeeded', 'failed')")
        .await;
    assert_eq!(unsettled, 0, "every transaction ends final");
    let orphans = ledger
        .count(
            "SELECT COUNT(*) FROM exchanges e WHERE e.transaction_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = e.transaction_id)",
        )
        .await;
    assert_eq!(orphans, 0, "no exchange row without its transaction");

    let payments = ledger.payments().await;
    let by_trx_id: HashMap<&str, &PaymentRow> =
        payments.iter().map(|p| (p.trx_id.as_str(), p)).collect();
    assert_eq!(by_trx_id.len(), payments.len(), "payment trxIds are unique");

    let received = sandbox.received();
    let mut messages: HashMap<&str, usize> = HashMap::new();
    let mut payment_codes = HashSet::new();
    let mut applied = HashSet::new();
    for message in received.iter().filter(|m| m.message_type == "payment") {
        *messages.entry(message.trx_id.as_str()).or_default() += 1;
        let code = message.payment_code.clone().unwrap_or_default();
        assert!(
            payment_codes.insert(code.clone()),
            "paymentCode {code} was sent in two payment messages"
        );
        if message.result_code == "000" {
            applied.insert(message.trx_id.as_str());
        }
        assert!(
            by_trx_id.contains_key(message.trx_id.as_str()),
            "payment trxId {} reached the upstream with no payment row: sent before it was \
             recorded",
            message.trx_id
        );
    }
    for (trx_id, count) in &messages {
        assert_eq!(*count, 1, "payment trxId {trx_id} was sent {count} times");
    }
    for payment in &payments {
        match payment.status.as_str() {
            "succeeded" => assert!(
                applied.contains(payment.trx_id.as_str()),
                "payment {} ({}) is succeeded but the upstream never applied it",
                payment.id,
                payment.trx_id
            ),
            "failed" => assert!(
                !messages.contains_key(payment.trx_id.as_str()),
                "payment {} ({}) is failed but its payment message reached the upstream",
                payment.id,
                payment.trx_id
            ),
            other => panic!("payment {} ended {other}", payment.id),
        }
    }
    let succeeded: Vec<&PaymentRow> = payments
        .iter()
        .filter(|p| p.status == "succeeded")
        .collect();
    assert_eq!(
        succeeded.len(),
        applied.len(),
        "every payment the upstream applied is succeeded, once"
    );
    let charged: i64 = succeeded.iter().map(|p| p.total).sum();
    assert_eq!(
        balance_before - sandbox.balance(),
        charged,
        "the deposit moved by exactly the succeeded payments' totals"
    );
    payments
}

// --- Postgres crashed and restarted during a load of payments ---------------------------------

/// How long Postgres stays down: longer than the gateway's pool acquire timeout (10 s,
/// `store/postgres.rs`), so that requests which start while it is down also end while it is.
const OUTAGE: Duration = Duration::from_secs(14);
/// Concurrent inquiry → payment loops.
const LOAD_WORKERS: usize = 6;
/// How often new work arrives while Postgres is down.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// One request of the load and what came of it.
#[derive(Debug, Clone)]
struct Call {
    what: &'static str,
    started: Instant,
    ended: Instant,
    reply: Reply,
    /// For a payment: bill, inquiry id and Idempotency-Key, to repeat it.
    payment: Option<(String, String, String)>,
}

#[derive(Clone, Default)]
struct Journal(Rc<RefCell<Vec<Call>>>);

impl Journal {
    fn record(&self, call: Call) {
        self.0.borrow_mut().push(call);
    }

    fn count(&self, what: &str, status: u16, since: Instant) -> usize {
        self.0
            .borrow()
            .iter()
            .filter(|c| c.what == what && c.reply.status == Some(status) && c.started >= since)
            .count()
    }

    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

/// Inquiry → payment with a fresh Idempotency-Key, again and again until `stop`.
async fn load_worker(worker: usize, api: Api, journal: Journal, stop: Rc<Cell<bool>>) {
    let mut n = 0;
    while !stop.get() {
        n += 1;
        let bill = bpjs_bill(worker * 1_000_000 + n);
        let started = Instant::now();
        let inquiry = api.inquire(&bill).await;
        journal.record(Call {
            what: "inquiry",
            started,
            ended: Instant::now(),
            reply: inquiry.clone(),
            payment: None,
        });
        let Some(inquiry_id) = inquiry
            .transaction_id()
            .filter(|_| inquiry.status == Some(200))
        else {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let key = format!("outage-{worker}-{n}");
        let started = Instant::now();
        let payment = api.pay(&bill, &inquiry_id, &key).await;
        journal.record(Call {
            what: "payment",
            started,
            ended: Instant::now(),
            reply: payment,
            payment: Some((bill, inquiry_id, key)),
        });
    }
}

/// Runs one request in its own task and records it: probes do not wait for each other, so
/// that new work keeps arriving while earlier requests hang.
fn spawn_call(
    journal: &Journal,
    what: &'static str,
    payment: Option<(String, String, String)>,
    request: impl Future<Output = Reply> + 'static,
) -> actix_rt::task::JoinHandle<()> {
    let journal = journal.clone();
    actix_rt::spawn(async move {
        let started = Instant::now();
        let reply = request.await;
        journal.record(Call {
            what,
            started,
            ended: Instant::now(),
            reply,
            payment,
        });
    })
}

/// Every `PROBE_EVERY` until `stop`: a readiness probe, an inquiry of a new bill, and a payment
/// of one of the `spare` inquiries (made before) with a fresh Idempotency-Key.
async fn probe_new_work(
    api: Api,
    journal: Journal,
    spare: Vec<(String, String)>,
    stop: Rc<Cell<bool>>,
) {
    let mut spare = spare.into_iter();
    let mut probes = Vec::new();
    let mut n = 0;
    while !stop.get() {
        n += 1;
        let probe = api.clone();
        probes.push(spawn_call(&journal, "readyz", None, async move {
            probe.readiness().await
        }));
        let probe = api.clone();
        probes.push(spawn_call(&journal, "inquiry", None, async move {
            probe.inquire(&bpjs_bill(900_000_000 + n)).await
        }));
        if let Some((bill, inquiry_id)) = spare.next() {
            let key = format!("outage-probe-{n}");
            let payment = Some((bill.clone(), inquiry_id.clone(), key.clone()));
            let probe = api.clone();
            probes.push(spawn_call(&journal, "payment", payment, async move {
                probe.pay(&bill, &inquiry_id, &key).await
            }));
        }
        actix_rt::time::sleep(PROBE_EVERY).await;
    }
    for probe in probes {
        probe.await.expect("a probe ends cleanly");
    }
}

async fn in_background<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    actix_rt::task::spawn_blocking(work)
        .await
        .expect("the blocking task finishes")
}

#[actix_rt::test]
async fn a_postgres_crash_under_load_answers_503_and_recovers_without_loss() {
    let cluster = Arc::new(in_background(PrivatePostgres::start).await);
    let upstream = Upstream::start(SandboxConfig::default()).await;
    // Answers take a moment, so that the crash finds payments in flight upstream.
    upstream
        .sandbox
        .set_forced_fault(Some(ForcedFault::Delay(Duration::from_millis(40))));
    let key = {
        let store = mpospay_gateway::store::connect(&cluster.url(), 1)
            .await
            .expect("the private cluster takes the migrations");
        create_key(&store, "pos-web", Role::Operator).await
    };
    let balance_before = upstream.sandbox.balance();
    let mut gateway = gateway_process(&upstream, &cluster.url()).start().await;
    let api = Api::new(&gateway.base_url(), &key);
    let started = Instant::now();

    let journal = Journal::default();
    let stop = Rc::new(Cell::new(false));
    let mut tasks: Vec<_> = (0..LOAD_WORKERS)
        .map(|worker| {
            actix_rt::spawn(load_worker(
                worker + 1,
                api.clone(),
                journal.clone(),
                stop.clone(),
            ))
        })
        .collect();

    // The load runs; inquiries are made for the probes to pay while Postgres is down.
    let mut spare = Vec::new();
    for n in 0..OUTAGE.as_millis() / PROBE_EVERY.as_millis() + 1 {
        let bill = bpjs_bill(800_000_000 + n as usize);
        let inquiry = api.inquire(&bill).await;
        assert_eq!(inquiry.status, Some(200), "{inquiry:?}");
        spare.push((bill, inquiry.transaction_id().unwrap()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal.count("payment", 200, started) < 20 {
        assert!(Instant::now() < deadline, "the load never got going");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }

    // Postgres crashes under the load, stays down while new work keeps coming, and restarts.
    let crashing = cluster.clone();
    in_background(move || crashing.crash()).await;
    let down_at = Instant::now();
    let stop_probes = Rc::new(Cell::new(false));
    let probes = actix_rt::spawn(probe_new_work(
        api.clone(),
        journal.clone(),
        spare,
        stop_probes.clone(),
    ));
    actix_rt::time::sleep(OUTAGE).await;
    stop_probes.set(true);
    let restart_at = Instant::now();
    let restarting = cluster.clone();
    in_background(move || restarting.restart()).await;
    tasks.push(probes);

    // The same gateway process, not restarted, is ready again and takes payments.
    gateway.wait_ready(Duration::from_secs(60)).await;
    let ready_again = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while journal.count("payment", 200, ready_again) < 20 {
        assert!(
            Instant::now() < deadline,
            "payments did not succeed again after Postgres came back"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    stop.set(true);
    for task in tasks {
        task.await.expect("a load task ends cleanly");
    }
    let calls = journal.take();

    // Every request got an HTTP answer: 200, 202 or 503 `database_unavailable`; never a 500.
    for call in &calls {
        let status = call
            .reply
            .status
            .unwrap_or_else(|| panic!("{} got no HTTP answer: {:?}", call.what, call.reply.error));
        match (call.what, status) {
            (_, 200) | ("payment", 202) | ("readyz", 503) => {}
            (_, 503) => {
                assert_eq!(call.reply.code(), "database_unavailable", "{call:?}");
                assert!(call.reply.retry_after.is_some(), "503 without Retry-After");
            }
            _ => panic!("{} answered {status}: {}", call.what, call.reply.body),
        }
    }
    // New work while the database was down got 503, and readiness said "not ready".
    let while_down = |call: &&Call| call.started >= down_at && call.ended <= restart_at;
    let work_while_down: Vec<&Call> = calls
        .iter()
        .filter(while_down)
        .filter(|c| c.what != "readyz")
        .collect();
    assert!(
        !work_while_down.is_empty(),
        "no request ran from start to end while Postgres was down"
    );
    for call in &work_while_down {
        assert_eq!(call.reply.status, Some(503), "while down: {call:?}");
    }
    // `/readyz` answers the background probe's last result: up to a probe interval (plus a probe
    // that waits out its timeout) old.
    let probe_lag = mpospay_gateway::http::probes::PROBE_INTERVAL
        + mpospay_gateway::http::probes::PROBE_TIMEOUT;
    let probes_while_down: Vec<&Call> = calls
        .iter()
        .filter(while_down)
        .filter(|c| c.what == "readyz" && c.started >= down_at + probe_lag)
        .collect();
    assert!(
        !probes_while_down.is_empty(),
        "no readiness probe ran from start to end while Postgres was down"
    );
    for probe in &probes_while_down {
        assert_eq!(probe.reply.status, Some(503), "readiness while down");
        assert_eq!(probe.reply.body["status"], "unavailable");
    }
    // Once ready again, all new work succeeds.
    for call in calls.iter().filter(|c| c.started >= ready_again) {
        assert_eq!(call.reply.status, Some(200), "after recovery: {call:?}");
    }

    // Unknown outcomes (rows the crash left in `sending`) resolve through advice.
    let ledger = Ledger::open(&cluster.url()).await;
    ledger.wait_until_settled(Duration::from_secs(60)).await;

    // A client repeats each payment that got 503, with the same key: it gets the transaction
    // the first attempt recorded, or the payment now.
    let transactions = ledger.transaction_ids().await;
    let recorded: HashMap<String, String> = ledger
        .keys()
        .await
        .into_iter()
        .filter_map(|k| k.transaction_id.map(|t| (k.key, t)))
        .filter(|(_, t)| transactions.contains(t))
        .collect();
    let refused: Vec<&Call> = calls
        .iter()
        .filter(|c| c.what == "payment" && c.reply.status == Some(503))
        .collect();
    let mut repeated_recorded = 0;
    for call in &refused {
        let (bill, inquiry_id, key) = call.payment.as_ref().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        let reply = pay_until_answered(&api, bill, inquiry_id, key, deadline).await;
        if let Some(first) = recorded.get(key) {
            repeated_recorded += 1;
            assert_eq!(
                reply.transaction_id().as_deref(),
                Some(first.as_str()),
                "the repeat of {key} returns the transaction its first attempt recorded"
            );
            assert!(reply.replayed);
        }
    }
    ledger.wait_until_settled(Duration::from_secs(30)).await;

    let payments =
        assert_nothing_lost_nothing_twice(&ledger, &upstream.sandbox, balance_before).await;
    // Every payment answered 200 is succeeded.
    let statuses: HashMap<&str, &str> = payments
        .iter()
        .map(|p| (p.id.as_str(), p.status.as_str()))
        .collect();
    for call in calls
        .iter()
        .filter(|c| c.what == "payment" && c.reply.status == Some(200))
    {
        let id = call.reply.transaction_id().unwrap();
        assert_eq!(statuses.get(id.as_str()), Some(&"succeeded"), "{call:?}");
    }
    // No half-written key: each one holds its answer, or the transaction a repeat returns.
    let transactions = ledger.transaction_ids().await;
    for key in ledger.keys().await {
        assert!(
            key.response_status.is_some()
                || key
                    .transaction_id
                    .as_ref()
                    .is_some_and(|t| transactions.contains(t)),
            "Idempotency-Key {} is neither completed nor linked to a transaction: {key:?}",
            key.key
        );
    }
    ledger.close().await;
    let mut answers: BTreeMap<(&str, &str, Option<u16>), usize> = BTreeMap::new();
    for call in &calls {
        let window = if call.ended < down_at {
            "1 before"
        } else if call.started < down_at {
            "2 across the crash"
        } else if call.ended <= restart_at {
            "3 while down"
        } else if call.started < ready_again {
            "4 across the restart"
        } else {
            "5 after"
        };
        *answers
            .entry((window, call.what, call.reply.status))
            .or_default() += 1;
    }
    eprintln!(
        "postgres crash: {} payments ({} succeeded); {} payments answered 503 were repeated \
         ({} of them had recorded a transaction); answers: {answers:?}",
        payments.len(),
        payments.iter().filter(|p| p.status == "succeeded").count(),
        refused.len(),
        repeated_recorded,
    );
    drop(gateway);
}

/// Inquiries commit asynchronously on Postgres (README, "Durability"): a database crash right
/// after a burst may lose the records of the last inquiries answered, but never a payment, an
/// Idempotency-Key's answer or a trxId. Every payment answered 200 is stored and replays; no
/// trxId answered before the crash is sent again after it; a lost inquiry's payment is refused
/// 404 and a new inquiry pays.
#[actix_rt::test]
async fn a_postgres_crash_after_a_burst_loses_no_payment_and_reuses_no_trx_id() {
    // The WAL writer waits its longest (10 s) before it writes what asynchronous commits left in
    // memory: what they wrote is still there when the crash comes, unless a synchronous commit
    // flushed it.
    let cluster = Arc::new(
        in_background(|| PrivatePostgres::start_with(&[("wal_writer_delay", "10000")])).await,
    );
    let upstream = Upstream::start(SandboxConfig::default()).await;
    let key = {
        let store = mpospay_gateway::store::connect(&cluster.url(), 1)
            .await
            .expect("the private cluster takes the migrations");
        create_key(&store, "pos-web", Role::Operator).await
    };
    let mut gateway = gateway_process(&upstream, &cluster.url()).start().await;
    let api = Api::new(&gateway.base_url(), &key);

    // The burst: 20 payments (each an inquiry, then its payment) among 100 inquiries, then 100
    // more inquiries, and the crash at once.
    let paying = futures_util::future::join_all((0..20).map(|n| {
        let api = api.clone();
        async move {
            let bill = bpjs_bill(700_000_000 + n);
            let inquiry = api.inquire(&bill).await;
            assert_eq!(inquiry.status, Some(200), "{inquiry:?}");
            let key = format!("burst-{n}");
            let payment = api
                .pay(&bill, &inquiry.transaction_id().unwrap(), &key)
                .await;
            assert_eq!(payment.status, Some(200), "{payment:?}");
            (bill, key, payment)
        }
    }));
    let inquiring = futures_util::future::join_all((0..100).map(|n| {
        let api = api.clone();
        async move { (n, api.inquire(&bpjs_bill(710_000_000 + n)).await) }
    }));
    let (payments, mut inquiries) = futures_util::future::join(paying, inquiring).await;
    let last = futures_util::future::join_all((100..200).map(|n| {
        let api = api.clone();
        async move { (n, api.inquire(&bpjs_bill(710_000_000 + n)).await) }
    }))
    .await;
    inquiries.extend(last);
    // Then inquiries one by one until one is the first of a new block of trxIds: the block was
    // just taken from the sequence, and the crash comes before anything else commits.
    for n in 200..(200 + 2 * TRX_ID_BLOCK as usize) {
        let inquiry = api.inquire(&bpjs_bill(710_000_000 + n)).await;
        let trx_id: i64 = inquiry.body["trxId"].as_str().unwrap().parse().unwrap();
        inquiries.push((n, inquiry));
        if (trx_id - 1) % TRX_ID_BLOCK == 0 {
            break;
        }
    }
    let crashing = cluster.clone();
    in_background(move || crashing.crash()).await;
    for (_, inquiry) in &inquiries {
        assert_eq!(inquiry.status, Some(200), "{inquiry:?}");
    }
    let answered_trx_ids: HashSet<String> = inquiries
        .iter()
        .map(|(_, inquiry)| &inquiry.body)
        .chain(payments.iter().map(|(_, _, payment)| &payment.body))
        .map(|body| body["trxId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        answered_trx_ids.len(),
        inquiries.len() + payments.len(),
        "every answer has its own trxId"
    );

    let restarting = cluster.clone();
    in_background(move || restarting.restart()).await;
    gateway.wait_ready(Duration::from_secs(60)).await;

    // Every payment answered 200 survived, succeeded, and its key replays it.
    let ledger = Ledger::open(&cluster.url()).await;
    let stored: HashMap<String, PaymentRow> = ledger
        .payments()
        .await
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    for (bill, key, payment) in &payments {
        let id = payment.transaction_id().unwrap();
        let row = stored
            .get(&id)
            .unwrap_or_else(|| panic!("payment {id} was lost"));
        assert_eq!(row.status, "succeeded");
        assert_eq!(Some(row.trx_id.as_str()), payment.body["trxId"].as_str());
        let inquiry_id = payment.body["inquiryId"].as_str().unwrap();
        let again = api.pay(bill, inquiry_id, key).await;
        assert_eq!(again.status, Some(200), "{again:?}");
        assert!(
            again.replayed,
            "the repeat of {key} replays the stored answer"
        );
        assert_eq!(again.transaction_id(), Some(id));
    }

    // Inquiries whose record the crash took are unknown now: paying one is refused 404, and
    // the client's new inquiry pays.
    let kept = ledger.transaction_ids().await;
    let lost: Vec<usize> = inquiries
        .iter()
        .filter(|(_, inquiry)| !kept.contains(&inquiry.transaction_id().unwrap()))
        .map(|(n, _)| *n)
        .collect();
    if let Some(n) = lost.first() {
        let (_, inquiry) = inquiries.iter().find(|(m, _)| m == n).unwrap();
        let bill = bpjs_bill(710_000_000 + n);
        let refused = api
            .pay(&bill, &inquiry.transaction_id().unwrap(), "lost-inquiry")
            .await;
        assert_eq!(refused.status, Some(404), "{refused:?}");
        let again = api.inquire(&bill).await;
        assert_eq!(again.status, Some(200), "{again:?}");
        let paid = api
            .pay(
                &bill,
                &again.transaction_id().unwrap(),
                "lost-inquiry-again",
            )
            .await;
        assert_eq!(paid.status, Some(200), "{paid:?}");
    }

    // New work after the restart (this process's trxIds left in memory, then new blocks from
    // the sequence) gets trxIds none of which was answered before the crash.
    let after = futures_util::future::join_all((0..200).map(|n| {
        let api = api.clone();
        async move { api.inquire(&bpjs_bill(720_000_000 + n)).await }
    }))
    .await;
    for inquiry in &after {
        assert_eq!(inquiry.status, Some(200), "{inquiry:?}");
        let trx_id = inquiry.body["trxId"].as_str().unwrap();
        assert!(
            !answered_trx_ids.contains(trx_id),
            "trxId {trx_id} was answered before the crash and again after it"
        );
    }
    // And the upstream never saw one trxId in two messages (advice repeats its payment's).
    let mut sent: HashMap<String, usize> = HashMap::new();
    for message in upstream.sandbox.received() {
        if message.message_type != "advice" {
            *sent.entry(message.trx_id).or_default() += 1;
        }
    }
    for (trx_id, count) in &sent {
        assert_eq!(
            *count, 1,
            "trxId {trx_id} reached the upstream {count} times"
        );
    }
    drop(gateway);

    // What makes that hold through a crash of the whole machine too (where even what Postgres
    // wrote but did not flush is gone): every block of trxIds is flushed before it is handed
    // out. With nothing else running, right after a block is taken the WAL is flushed up to its
    // end (asynchronous commits leave it to the WAL writer). `set_trx_counter` (here: skip
    // ahead) makes the next trxId come from a block taken there and then.
    let store = mpospay_gateway::store::postgres::PostgresStore::connect(&cluster.url(), 1)
        .await
        .expect("the private cluster answers");
    for skip in 1..=5u32 {
        store
            .set_trx_counter(10_000_000 * skip)
            .await
            .expect("the counter moves");
        let trx_id = mpospay_gateway::store::Store::allocate_trx_id(&store)
            .await
            .expect("a trxId");
        let unflushed = ledger
            .count(
                "SELECT CAST(pg_current_wal_insert_lsn() - pg_current_wal_flush_lsn() AS BIGINT)",
            )
            .await;
        assert_eq!(
            unflushed, 0,
            "trxId {trx_id} was handed out with {unflushed} bytes of WAL not yet flushed"
        );
    }
    ledger.close().await;
    eprintln!(
        "postgres crash after a burst: {} of {} inquiry records lost (their payments refused \
         404), 20 of 20 payments kept",
        lost.len(),
        inquiries.len()
    );
}

/// The database is away after a payment was sent for longer than the stale-sending sweep's
/// grace (here its exchange cannot be written): the reconciler takes the row over, and the
/// request, once the database answers again, must still answer with the transaction — not a
/// 500 because the row is no longer `sending`.
#[actix_rt::test]
async fn a_payment_held_up_by_the_database_past_the_sweep_answers_with_its_transaction() {
    let app = spawn_app_with(Backend::Postgres, TestOptions::default()).await;
    let inquiry = app.inquire("AF085713323054", "2042").await;
    assert_eq!(inquiry.status, 200, "{:?}", inquiry.body);
    let mut blocker = PgConnection::connect(&app.database.url)
        .await
        .expect("a second session");
    let mut lock = blocker.begin().await.unwrap();
    sqlx::query("LOCK TABLE exchanges IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let inquiry_id = inquiry.id();
    let (payment, ()) = tokio::join!(
        app.pay("AF085713323054", "2042", &inquiry_id, "held-up-1"),
        async {
            // The payment is sent, its row stays `sending` until the sweep takes it over.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let rows = app.stored_payments().await;
                if rows.first().is_some_and(|t| t.status.as_str() == "pending") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the sweep never took the held-up payment over: {rows:?}"
                );
                actix_rt::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(app.sandbox.count(MessageType::Payment), 1);
            lock.rollback().await.unwrap();
        }
    );
    assert!(
        payment.status == 200 || payment.status == 202,
        "the held-up payment answered {}: {:?}",
        payment.status,
        payment.body
    );
    let id = payment.id();
    app.wait_for_status(&id, "succeeded", Duration::from_secs(15))
        .await;
    let replay = app
        .pay("AF085713323054", "2042", &inquiry_id, "held-up-1")
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.id(), id);
    assert_eq!(app.sandbox.count(MessageType::Payment), 1);
}

both_backends!(concurrent_repeats_of_a_key_a_killed_gateway_left_claimed_send_one_purchase);

/// A gateway killed between claiming an Idempotency-Key and recording its purchase leaves a
/// claim with nothing behind it; once it is old enough, a repeat takes it over. Repeats that
/// arrive together must not each take it over: one purchase is sent, the others are told the
/// key is in use (or get that purchase).
async fn concurrent_repeats_of_a_key_a_killed_gateway_left_claimed_send_one_purchase(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let hash = request_hash(
        "purchase",
        r#"{"customerNumber":"08132250042","product":"3100"}"#,
    );
    let claim = app
        .store
        .claim_idempotency_key(
            "pos-web",
            "left-by-a-kill",
            &hash,
            chrono::Utc::now() - chrono::Duration::minutes(2),
        )
        .await
        .unwrap();
    assert_eq!(claim, KeyClaim::Claimed);
    let answers = futures_util::future::join_all(
        (0..6).map(|_| app.purchase("3100", "08132250042", "left-by-a-kill")),
    )
    .await;
    let statuses: Vec<(u16, &str)> = answers.iter().map(|a| (a.status, a.error_code())).collect();
    assert_eq!(
        app.sandbox.count(MessageType::Purchase),
        1,
        "one purchase for one key; answers: {statuses:?}"
    );
    let purchases: HashSet<String> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.id())
        .collect();
    assert_eq!(purchases.len(), 1, "answers: {statuses:?}");
    for answer in &answers {
        assert!(
            answer.status == 200
                || (answer.status == 409 && answer.error_code() == "idempotency_key_in_use"),
            "answers: {statuses:?}"
        );
    }
    let replay = app.purchase("3100", "08132250042", "left-by-a-kill").await;
    assert_eq!(replay.status, 200);
    assert!(purchases.contains(&replay.id()));
    assert_eq!(app.sandbox.count(MessageType::Purchase), 1);
}

// --- The gateway killed at random points in a stream of 200 payments --------------------------

/// Payments in the stream, how many run at once, and how many times the gateway is killed.
const STREAM: usize = 200;
const STREAM_CONCURRENCY: usize = 8;
const KILLS: usize = 6;
/// The killer's random points come from this seed: a failure can be replayed.
const KILL_SEED: u64 = 20_261_127;

/// One payment of the stream, as its client saw it.
#[derive(Debug)]
struct Flow {
    bill: String,
    inquiry_id: String,
    key: String,
    transaction_id: String,
    /// From the first payment request to its answer (repeats included).
    paying_for: Duration,
}

/// Inquiry, then payment with the flow's own Idempotency-Key; after a lost connection or a
/// 503 the client inquires again (nothing was paid yet) or repeats the payment with the same
/// key.
async fn payment_flow(api: &Api, index: usize, paying: &Cell<usize>) -> Flow {
    let deadline = Instant::now() + Duration::from_secs(150);
    let bill = bpjs_bill(index + 1);
    let inquiry_id = loop {
        let reply = api.inquire(&bill).await;
        match reply.status {
            Some(200) => break reply.transaction_id().expect("an inquiry id"),
            None | Some(503) => {}
            Some(status) => panic!("inquiry of {bill} answered {status}: {}", reply.body),
        }
        assert!(
            Instant::now() < deadline,
            "inquiry of {bill}: no answer in time"
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    let key = format!("stream-{index}");
    paying.set(paying.get() + 1);
    let paying_since = Instant::now();
    let reply = pay_until_answered(api, &bill, &inquiry_id, &key, deadline).await;
    Flow {
        bill,
        inquiry_id,
        key,
        transaction_id: reply.transaction_id().expect("a payment id"),
        paying_for: paying_since.elapsed(),
    }
}

/// SIGKILLs the gateway once the stream reaches each of `KILLS` random points (counted in
/// payments started, plus a random few milliseconds), and starts it again each time.
async fn kill_at_random_points(gateway: &mut GatewayProcess, paying: &Cell<usize>) {
    let mut rng = StdRng::seed_from_u64(KILL_SEED);
    let mut points: Vec<usize> = rand::seq::index::sample(&mut rng, STREAM - 30, KILLS)
        .into_iter()
        .map(|point| point + 10)
        .collect();
    points.sort_unstable();
    for point in points {
        let deadline = Instant::now() + Duration::from_secs(120);
        while paying.get() < point {
            assert!(
                Instant::now() < deadline,
                "the stream stalled before {point}"
            );
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        actix_rt::time::sleep(Duration::from_millis(rng.random_range(0..60))).await;
        gateway.kill();
        actix_rt::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        gateway.restart().await;
    }
}

both_backends!(a_gateway_killed_at_random_points_loses_no_payment_and_pays_none_twice);

async fn a_gateway_killed_at_random_points_loses_no_payment_and_pays_none_twice(backend: Backend) {
    let began = Instant::now();
    let upstream = Upstream::start(SandboxConfig::default()).await;
    // Every answer takes a moment, so that kills land while messages are in flight.
    upstream
        .sandbox
        .set_forced_fault(Some(ForcedFault::Delay(Duration::from_millis(30))));
    let database = TestDatabase::new(backend).await;
    let key = {
        let store = mpospay_gateway::store::connect(&database.url, 1)
            .await
            .expect("the database takes the migrations");
        create_key(&store, "pos-web", Role::Operator).await
    };
    let balance_before = upstream.sandbox.balance();
    let mut gateway = gateway_process(&upstream, &database.url).start().await;
    let api = Api::new(&gateway.base_url(), &key);

    let paying = Cell::new(0);
    let stream = futures_util::stream::iter(0..STREAM)
        .map(|index| payment_flow(&api, index, &paying))
        .buffer_unordered(STREAM_CONCURRENCY)
        .collect::<Vec<Flow>>();
    let (flows, ()) =
        futures_util::future::join(stream, kill_at_random_points(&mut gateway, &paying)).await;
    let stream_took = began.elapsed();
    assert_eq!(flows.len(), STREAM);

    let ledger = Ledger::open(&database.url).await;
    ledger.wait_until_settled(Duration::from_secs(60)).await;
    let payments =
        assert_nothing_lost_nothing_twice(&ledger, &upstream.sandbox, balance_before).await;
    // One payment transaction per flow, each the one its client was answered with.
    assert_eq!(payments.len(), STREAM, "one payment row per payment");
    let rows: HashSet<&str> = payments.iter().map(|p| p.id.as_str()).collect();
    let answered: HashSet<&str> = flows.iter().map(|f| f.transaction_id.as_str()).collect();
    assert_eq!(rows, answered, "each client holds its own payment's id");

    // Replays with the same key return the same transaction and send nothing.
    let sent = upstream.sandbox.count(MessageType::Payment);
    for flow in &flows {
        let reply = api.pay(&flow.bill, &flow.inquiry_id, &flow.key).await;
        assert!(reply.status.is_some(), "replay of {}: {reply:?}", flow.key);
        assert!(reply.replayed, "replay of {}: {reply:?}", flow.key);
        assert_eq!(
            reply.transaction_id().as_deref(),
            Some(flow.transaction_id.as_str()),
            "replay of {}",
            flow.key
        );
    }
    assert_eq!(upstream.sandbox.count(MessageType::Payment), sent);
    ledger.close().await;
    eprintln!(
        "{backend:?}: {KILLS} kills in {STREAM} payments: {} succeeded, {} failed (never \
         sent), {} payment and {} advice messages; stream {stream_took:?} (longest wait for a \
         payment's answer {:?}), in all {:?}",
        payments.iter().filter(|p| p.status == "succeeded").count(),
        payments.iter().filter(|p| p.status == "failed").count(),
        sent,
        upstream.sandbox.count(MessageType::Advice),
        flows.iter().map(|f| f.paying_for).max().unwrap_or_default(),
        began.elapsed()
    );
}
