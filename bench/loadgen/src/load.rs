//! The load engine: what is sent (targets and scenarios), and how (a fixed request rate with
//! coordinated-omission correction, or N connections closed-loop for saturation), recorded in
//! HDR histograms.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use hdrhistogram::Histogram;
use mpospay_gateway::h2h::{Credentials, Draft, MessageType, H2H_PATH, USER_AGENT};
use mpospay_gateway::sandbox::SandboxConfig;
use serde_json::{json, Value};

use crate::http::{self, Connection, Response};

/// The postpaid product whose simulator bills take any 13 digits starting `8888` (BPJS).
pub const PRODUCT: &str = "1501";

/// What the load is sent to.
pub enum Target {
    /// The gateway's REST API (one or more processes: connections are spread over them).
    Gateway { addrs: Vec<SocketAddr>, key: String },
    /// The H2H endpoint (the simulator, or nginx in front of it), signed by the client.
    Direct { addr: SocketAddr, signer: Signer },
}

/// Signs H2H messages as the gateway would, with the simulator's demo partner.
pub struct Signer {
    credentials: Credentials,
    basic: String,
    next_trx: AtomicU32,
}

impl Signer {
    pub fn new(config: &SandboxConfig) -> Self {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", config.client_id, config.client_secret));
        let seed = (std::process::id() % 1000) * 10_000;
        Self {
            credentials: config.credentials(),
            basic: format!("Basic {basic}"),
            next_trx: AtomicU32::new(seed),
        }
    }

    fn trx_id(&self) -> String {
        let n = self.next_trx.fetch_add(1, Ordering::Relaxed) % 99_999_999 + 1;
        format!("{n:08}")
    }

    fn message(&self, kind: MessageType, bill: &str, payment_code: Option<String>) -> Vec<u8> {
        let (headers, body) = self.parts(kind, bill, payment_code);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        http::request("POST", "upstream", H2H_PATH, &headers, &body)
    }

    /// The headers and the signed body of one H2H message (with a fresh trxId).
    pub fn parts(
        &self,
        kind: MessageType,
        bill: &str,
        payment_code: Option<String>,
    ) -> (Vec<(&'static str, String)>, Vec<u8>) {
        let request = self.credentials.build_request(
            Draft {
                message_type: kind,
                product: PRODUCT.to_string(),
                bill_number: bill.to_string(),
                trx_id: self.trx_id(),
                payment_code,
            },
            Utc::now(),
        );
        let body = serde_json::to_vec(&request).expect("a request serializes");
        let headers = vec![
            ("User-Agent", USER_AGENT.to_string()),
            ("Authorization", self.basic.clone()),
            ("Content-Type", "application/json".to_string()),
            ("Origin", "bench.local".to_string()),
        ];
        (headers, body)
    }
}

/// What one operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// One inquiry.
    Inquiry,
    /// An inquiry, then the payment of it with a fresh Idempotency-Key: one operation.
    Flow,
    /// 70% inquiry, 20% payment (of an earlier inquiry of the same connection), 10% search.
    Mix,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Inquiry => "inquiry",
            Scenario::Flow => "payment flow",
            Scenario::Mix => "mix 70/20/10",
        }
    }
}

/// How the load is offered.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// N connections, each sending its next operation as soon as the last one is answered.
    Saturation,
    /// Operations started on a fixed schedule (per second, over all connections).
    Rate(f64),
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub mode: Mode,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// Latencies in microseconds.
pub type Hist = Histogram<u64>;

fn hist() -> Hist {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

fn record(hist: &mut Hist, elapsed: Duration) {
    hist.saturating_record((elapsed.as_micros() as u64).max(1));
}

/// The kinds of request, for per-kind histograms.
const KINDS: [&str; 3] = ["inquiry", "payment", "search"];

/// What one run measured.
pub struct RunResult {
    /// Operations completed without error inside the measured window.
    pub ops: u64,
    /// Operations completed without error, warm-up included (for per-operation costs).
    pub all_ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Per operation: from the intended start when the connection was still busy (coordinated
    /// omission), else from the actual send.
    pub latency: Hist,
    /// Per request kind, from the actual send.
    pub kinds: Vec<(&'static str, Hist)>,
    /// Fixed-rate mode: the largest delay of a send behind its schedule while its connection
    /// was free (the generator's own lateness, not counted as latency).
    pub max_send_lag: Duration,
    pub reconnects: u64,
}

impl RunResult {
    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    pub fn to_json(&self) -> Value {
        let mut kinds = serde_json::Map::new();
        for (name, hist) in &self.kinds {
            if !hist.is_empty() {
                kinds.insert(
                    (*name).to_string(),
                    json!({"count": hist.len(), "p50_ms": ms(hist, 50.0), "p99_ms": ms(hist, 99.0)}),
                );
            }
        }
        json!({
            "ops": self.ops,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": self.seconds,
            "throughput": self.throughput(),
            "p50_ms": ms(&self.latency, 50.0),
            "p90_ms": ms(&self.latency, 90.0),
            "p99_ms": ms(&self.latency, 99.0),
            "p999_ms": ms(&self.latency, 99.9),
            "max_ms": self.latency.max() as f64 / 1000.0,
            "requests": kinds,
            "max_send_lag_ms": self.max_send_lag.as_secs_f64() * 1000.0,
            "reconnects": self.reconnects,
        })
    }
}

/// The latency at `percentile`, in milliseconds.
pub fn ms(hist: &Hist, percentile: f64) -> f64 {
    if hist.is_empty() {
        return 0.0;
    }
    hist.value_at_percentile(percentile) as f64 / 1000.0
}

/// An inquiry that may be paid later.
enum Payable {
    Gateway { id: String, bill: String },
    Direct { code: String, bill: String },
}

/// One connection's state.
struct Worker {
    target: Rc<Target>,
    conn: Connection,
    rng: u64,
    run_tag: String,
    index: usize,
    seq: u64,
    payable: VecDeque<Payable>,
    kinds: Vec<Hist>,
    recording: bool,
}

impl Worker {
    fn new(target: Rc<Target>, index: usize, run_tag: &str) -> Self {
        let addr = match &*target {
            Target::Gateway { addrs, .. } => addrs[index % addrs.len()],
            Target::Direct { addr, .. } => *addr,
        };
        Self {
            target,
            conn: Connection::new(addr),
            rng: 0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) * 0xBF58_476D_1CE4_E5B9),
            run_tag: run_tag.to_string(),
            index,
            seq: 0,
            payable: VecDeque::new(),
            kinds: KINDS.iter().map(|_| hist()).collect(),
            recording: false,
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A BPJS bill number the simulator accepts: `8888` and 9 more digits.
    fn bill(&mut self) -> String {
        format!("8888{:09}", self.next_random() % 1_000_000_000)
    }

    async fn send(&mut self, kind: usize, bytes: &[u8]) -> Result<Response, String> {
        let started = Instant::now();
        let response = self
            .conn
            .send(bytes, true)
            .await
            .map_err(|e| format!("{}: {e}", KINDS[kind]))?;
        if self.recording {
            record(&mut self.kinds[kind], started.elapsed());
        }
        Ok(response)
    }

    async fn op(&mut self, scenario: Scenario) -> Result<(), String> {
        match scenario {
            Scenario::Inquiry => self.inquiry().await.map(|_| ()),
            Scenario::Flow => {
                let payable = self.inquiry().await?;
                self.payment(payable).await
            }
            Scenario::Mix => {
                let dice = self.next_random() % 100;
                if dice < 70 {
                    let payable = self.inquiry().await?;
                    self.payable.push_back(payable);
                    if self.payable.len() > 64 {
                        self.payable.pop_front();
                    }
                    Ok(())
                } else if dice < 90 {
                    match self.payable.pop_front() {
                        Some(payable) => self.payment(payable).await,
                        None => self.inquiry().await.map(|_| ()),
                    }
                } else {
                    self.search().await
                }
            }
        }
    }

    async fn inquiry(&mut self) -> Result<Payable, String> {
        let bill = self.bill();
        let target = self.target.clone();
        match &*target {
            Target::Gateway { key, .. } => {
                let bytes = http::request(
                    "POST",
                    "gateway",
                    &format!("/v1/bills/{bill}/inquiry"),
                    &[
                        ("Authorization", &format!("Bearer {key}")),
                        ("Content-Type", "application/json"),
                    ],
                    format!("{{\"product\":\"{PRODUCT}\"}}").as_bytes(),
                );
                let response = self.send(0, &bytes).await?;
                expect(&response, 200, "inquiry")?;
                let id = response
                    .json_str("id")
                    .ok_or("inquiry answer without id")?
                    .to_string();
                Ok(Payable::Gateway { id, bill })
            }
            Target::Direct { signer, .. } => {
                let bytes = signer.message(MessageType::Inquiry, &bill, None);
                let response = self.send(0, &bytes).await?;
                expect_h2h(&response, "inquiry")?;
                let code = response
                    .json_str("paymentCode")
                    .ok_or("inquiry answer without paymentCode")?
                    .to_string();
                Ok(Payable::Direct { code, bill })
            }
        }
    }

    async fn payment(&mut self, payable: Payable) -> Result<(), String> {
        let target = self.target.clone();
        match (&*target, payable) {
            (Target::Gateway { key, .. }, Payable::Gateway { id, bill }) => {
                self.seq += 1;
                let idempotency_key = format!("{}-{}-{}", self.run_tag, self.index, self.seq);
                let bytes = http::request(
                    "POST",
                    "gateway",
                    &format!("/v1/bills/{bill}/payment"),
                    &[
                        ("Authorization", &format!("Bearer {key}")),
                        ("Content-Type", "application/json"),
                        ("Idempotency-Key", &idempotency_key),
                    ],
                    format!("{{\"product\":\"{PRODUCT}\",\"inquiryId\":\"{id}\"}}").as_bytes(),
                );
                let response = self.send(1, &bytes).await?;
                expect(&response, 200, "payment")
            }
            (Target::Direct { signer, .. }, Payable::Direct { code, bill }) => {
                let bytes = signer.message(MessageType::Payment, &bill, Some(code));
                let response = self.send(1, &bytes).await?;
                expect_h2h(&response, "payment")
            }
            _ => Err("a payable of another target".into()),
        }
    }

    async fn search(&mut self) -> Result<(), String> {
        let target = self.target.clone();
        match &*target {
            Target::Gateway { key, .. } => {
                let bytes = http::request(
                    "GET",
                    "gateway",
                    "/v1/transactions?limit=20",
                    &[("Authorization", &format!("Bearer {key}"))],
                    b"",
                );
                let response = self.send(2, &bytes).await?;
                expect(&response, 200, "search")
            }
            Target::Direct { .. } => Err("the H2H API has no search".into()),
        }
    }
}

fn expect(response: &Response, status: u16, what: &str) -> Result<(), String> {
    if response.status == status {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&response.body);
    Err(format!(
        "{what}: HTTP {} {}",
        response.status,
        body.chars().take(200).collect::<String>()
    ))
}

fn expect_h2h(response: &Response, what: &str) -> Result<(), String> {
    expect(response, 200, what)?;
    match response.json_str("resultCode") {
        Some("000") => Ok(()),
        other => Err(format!("{what}: resultCode {other:?}")),
    }
}

/// One connection's share of a run.
struct Share {
    ops: u64,
    all_ops: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Hist,
    kinds: Vec<Hist>,
    max_send_lag: Duration,
    reconnects: u64,
}

/// Runs `plan` against `target` on the current (single-threaded) runtime.
pub async fn run(target: Rc<Target>, plan: &Plan, run_tag: &str) -> RunResult {
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let connections = plan.connections.max(1);
    let mut tasks = Vec::with_capacity(connections);
    for index in 0..connections {
        let worker = Worker::new(target.clone(), index, run_tag);
        let plan = plan.clone();
        tasks.push(actix_rt::spawn(async move {
            match plan.mode {
                Mode::Saturation => saturate(worker, &plan, start, measure_from, end).await,
                Mode::Rate(rate) => {
                    let interval = Duration::from_secs_f64(connections as f64 / rate);
                    let offset = Duration::from_secs_f64(index as f64 / rate);
                    paced(worker, &plan, start + offset, interval, measure_from, end).await
                }
            }
        }));
    }
    let mut result = RunResult {
        ops: 0,
        all_ops: 0,
        errors: 0,
        first_error: None,
        seconds: plan.duration.as_secs_f64(),
        latency: hist(),
        kinds: KINDS.iter().map(|k| (*k, hist())).collect(),
        max_send_lag: Duration::ZERO,
        reconnects: 0,
    };
    for task in tasks {
        let Ok(share) = task.await else { continue };
        result.ops += share.ops;
        result.all_ops += share.all_ops;
        result.errors += share.errors;
        if result.first_error.is_none() {
            result.first_error = share.first_error;
        }
        let _ = result.latency.add(&share.latency);
        for (merged, hist) in result.kinds.iter_mut().zip(&share.kinds) {
            let _ = merged.1.add(hist);
        }
        result.max_send_lag = result.max_send_lag.max(share.max_send_lag);
        result.reconnects += share.reconnects.saturating_sub(1);
    }
    result
}

fn share() -> Share {
    Share {
        ops: 0,
        all_ops: 0,
        errors: 0,
        first_error: None,
        latency: hist(),
        kinds: Vec::new(),
        max_send_lag: Duration::ZERO,
        reconnects: 0,
    }
}

fn finish(mut share: Share, worker: Worker) -> Share {
    share.kinds = worker.kinds;
    share.reconnects = worker.conn.connects;
    share
}

fn note(share: &mut Share, result: Result<(), String>, counted: bool) -> bool {
    match result {
        Ok(()) => {
            share.all_ops += 1;
            if counted {
                share.ops += 1;
            }
            true
        }
        Err(error) => {
            if counted {
                share.errors += 1;
                share.first_error.get_or_insert(error);
            }
            false
        }
    }
}

/// Closed loop: an operation completed inside the window counts, whenever it started.
async fn saturate(
    mut worker: Worker,
    plan: &Plan,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> Share {
    let mut share = share();
    tokio::time::sleep_until(start.into()).await;
    loop {
        let begun = Instant::now();
        if begun >= end {
            break;
        }
        worker.recording = begun >= measure_from;
        let result = worker.op(plan.scenario).await;
        let done = Instant::now();
        let counted = done >= measure_from && done <= end;
        let ok = note(&mut share, result, counted);
        if ok && counted {
            record(&mut share.latency, done - begun);
        }
        if !ok {
            // A refused or broken connection fails at once: do not spin on it.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    finish(share, worker)
}

/// Open loop on a fixed schedule: operation k of this connection is due at
/// `first + k * interval`. Its latency is taken from the due time when the connection was
/// still busy with the previous operation then (the delay is the server's: coordinated-omission
/// correction, as wrk2 does), and from the actual send otherwise (a timer firing late is the
/// generator's delay, reported as `max_send_lag`).
async fn paced(
    mut worker: Worker,
    plan: &Plan,
    first: Instant,
    interval: Duration,
    measure_from: Instant,
    end: Instant,
) -> Share {
    let mut share = share();
    let mut due = first;
    let mut previous_done = first;
    while due < end {
        let now = Instant::now();
        if now < due {
            tokio::time::sleep_until(due.into()).await;
        }
        let sent = Instant::now();
        let counted = due >= measure_from;
        worker.recording = counted;
        let busy = previous_done > due;
        if counted && !busy {
            share.max_send_lag = share.max_send_lag.max(sent - due);
        }
        let result = worker.op(plan.scenario).await;
        let done = Instant::now();
        previous_done = done;
        let from = if busy { due } else { sent };
        if note(&mut share, result, counted) && counted {
            record(&mut share.latency, done - from);
        }
        due += interval;
    }
    finish(share, worker)
}
