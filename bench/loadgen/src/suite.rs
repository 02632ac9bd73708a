//! The whole comparison (`scripts/bench`), the growth runs (`--growth`) and the memory soak
//! (`--soak`): what is started, in which order, and what is measured.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mpospay_gateway::sandbox::SandboxHandle;
use mpospay_testkit::{Backend, GatewayProcess};
use serde_json::{json, Value};

use crate::env::{self, CpuSnapshot, DbCounters, GatewayOptions, Keys, Nginx, Postgres};
use crate::load::{self, Mode, Plan, RunResult, Scenario, Signer, Target};
use crate::report::{self, Series};
use crate::wrk::{self, Vary};

/// The suite's settings (the `suite` subcommand's options).
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Where latest.md / latest.json (and growth-latest.*, soak-latest.*) are written.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../results"))]
    pub out: PathBuf,
    /// The bench/ folder (nginx template, pgbench and growth scripts), this package's parent.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    pub bench_dir: PathBuf,
    /// The gateway binary (default: `mpospay-gateway` beside this binary).
    #[arg(long)]
    pub gateway_bin: Option<PathBuf>,
    /// Append the gateways' logs to this file (default: discarded, still formatted as JSON).
    #[arg(long)]
    pub gateway_log: Option<PathBuf>,
    /// Repeats of every measurement; each figure is their median.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Seconds measured per saturation run.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Seconds measured per fixed-rate run.
    #[arg(long, default_value_t = 5.0)]
    pub latency_duration: f64,
    /// Seconds of warm-up before each run's measured window.
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// Fixed-rate mode: inquiries per second.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Fixed-rate mode: connections the schedule is spread over.
    #[arg(long, default_value_t = 32)]
    pub rate_connections: usize,
    /// Saturation mode: concurrent connections (closed loop).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// wrk runs: seconds per run.
    #[arg(long, default_value_t = 8)]
    pub wrk_duration: u64,
    /// wrk runs: connections for inquiries (one wrk thread).
    #[arg(long, default_value_t = 32)]
    pub wrk_connections: usize,
    /// wrk runs: connections for purchases, and pgbench's clients beside them.
    #[arg(long, default_value_t = 16)]
    pub wrk_write_connections: usize,
    /// pgbench clients (default: --connections, the payment flow's client count).
    #[arg(long)]
    pub pgbench_clients: Option<usize>,
    /// Latency the simulator adds to every upstream answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub upstream_latency_ms: u64,
    #[arg(long, env = "BENCH_PG_HOST", default_value = "127.0.0.1")]
    pub pg_host: String,
    #[arg(long, env = "BENCH_PG_PORT", default_value_t = 5432)]
    pub pg_port: u16,
    #[arg(long, env = "BENCH_PG_USER", default_value = "postgres")]
    pub pg_user: String,
    /// Run the growth measurements (search/export on 10^4..10^6 rows, 1/2/4 processes) only.
    #[arg(long)]
    pub growth: bool,
    /// Run the memory soak only.
    #[arg(long)]
    pub soak: bool,
    /// Run the comparison, the growth measurements and the soak.
    #[arg(long)]
    pub all: bool,
    /// Run the deposit reconciliation of one busy business day only (Postgres and SQLite).
    #[arg(long)]
    pub reconciliation: bool,
    /// Succeeded transactions in that day.
    #[arg(long, default_value_t = 100_000)]
    pub reconciliation_rows: u64,
    /// Soak length in seconds.
    #[arg(long, default_value_t = 120)]
    pub soak_secs: u64,
    /// Table sizes for the growth measurements.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub growth_sizes: Vec<u64>,
    /// Gateway process counts for the scaling measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub processes: Vec<usize>,
    /// Also write the results as NAME.md / NAME.json (e.g. `baseline`).
    #[arg(long)]
    pub label: Option<String>,
}

/// What every part of the suite shares.
struct Ctx {
    args: SuiteArgs,
    pg: Postgres,
    gateway: GatewayOptions,
    tmp: PathBuf,
    upstream_latency: Duration,
    nginx: Option<String>,
    wrk: Option<String>,
    pgbench: Option<String>,
    notes: Vec<String>,
    started: Instant,
}

pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let binary = match &args.gateway_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the harness binary has no directory")?
            .join("mpospay-gateway"),
    };
    anyhow::ensure!(
        binary.exists(),
        "no gateway binary at {} (build it: cargo build --release)",
        binary.display()
    );
    let tmp = std::env::temp_dir().join(format!("mpospay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let pg = Postgres::connect(&args.pg_host, args.pg_port, &args.pg_user).await?;
    let mut ctx = Ctx {
        gateway: GatewayOptions {
            binary,
            workdir: tmp.clone(),
            log: args.gateway_log.clone(),
            env: Vec::new(),
        },
        upstream_latency: Duration::from_millis(args.upstream_latency_ms),
        nginx: env::nginx_version(),
        wrk: wrk::version(),
        pgbench: env::pgbench_version(),
        notes: Vec::new(),
        started: Instant::now(),
        tmp: tmp.clone(),
        pg,
        args,
    };
    std::fs::create_dir_all(&ctx.args.out)?;
    let comparison = !(ctx.args.growth || ctx.args.soak || ctx.args.reconciliation) || ctx.args.all;
    let body = async {
        if comparison {
            let doc = comparison_suite(&mut ctx).await?;
            write(&ctx, "latest", &doc, report::comparison_markdown(&doc))?;
        }
        if ctx.args.growth || ctx.args.all {
            ctx.started = Instant::now();
            let doc = growth_suite(&mut ctx).await?;
            write(&ctx, "growth-latest", &doc, report::growth_markdown(&doc))?;
        }
        if ctx.args.soak || ctx.args.all {
            ctx.started = Instant::now();
            let doc = soak_suite(&mut ctx).await?;
            write(&ctx, "soak-latest", &doc, report::soak_markdown(&doc))?;
        }
        if ctx.args.reconciliation {
            ctx.started = Instant::now();
            let doc = reconciliation_suite(&mut ctx).await?;
            write(
                &ctx,
                "reconciliation-latest",
                &doc,
                report::reconciliation_markdown(&doc),
            )?;
        }
        anyhow::Ok(())
    };
    // On Ctrl-C the body is dropped, which stops what it started (gateways, nginx, simulator);
    // the databases are dropped below either way.
    let result = tokio::select! {
        result = body => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    ctx.pg.drop_own_databases().await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn write(ctx: &Ctx, name: &str, doc: &Value, markdown: String) -> anyhow::Result<()> {
    let mut names = vec![name.to_string()];
    if let Some(label) = &ctx.args.label {
        names.push(name.replace("latest", label));
    }
    for name in names {
        let json_path = ctx.args.out.join(format!("{name}.json"));
        let md_path = ctx.args.out.join(format!("{name}.md"));
        std::fs::write(&json_path, serde_json::to_string_pretty(doc)? + "\n")?;
        std::fs::write(&md_path, &markdown)?;
        eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    }
    Ok(())
}

/// What the document says about where and how it was measured.
async fn header(ctx: &Ctx, kind: &str) -> Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    json!({
        "kind": kind,
        "generated_at": chrono::Utc::now().to_rfc3339(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "git": env::git_revision(repo),
        "machine": env::machine(),
        "load_average_at_start": env::load_average(),
        "postgres": ctx.pg.describe().await,
        "nginx": ctx.nginx,
        "wrk": ctx.wrk,
        "pgbench": ctx.pgbench,
        "settings": {
            "repeats": ctx.args.repeats,
            "duration_s": ctx.args.duration,
            "latency_duration_s": ctx.args.latency_duration,
            "warmup_s": ctx.args.warmup,
            "rate": ctx.args.rate,
            "rate_connections": ctx.args.rate_connections,
            "connections": ctx.args.connections,
            "pgbench_clients": pgbench_clients(ctx),
            "upstream_latency_ms": ctx.args.upstream_latency_ms,
            "gateway": "separate process: mpospay-gateway serve, default workers (one per core), default pool (16), JSON logs at info (discarded)",
            "simulator": "in the harness process (its own 2 worker threads); fresh per block",
            "load_generator": "one thread, HTTP/1.1 keep-alive, one request in flight per connection",
            "wrk": {"threads": 1, "connections": ctx.args.wrk_connections,
                    "write_connections": ctx.args.wrk_write_connections,
                    "duration_s": ctx.args.wrk_duration},
        },
    })
}

fn pgbench_clients(ctx: &Ctx) -> usize {
    ctx.args.pgbench_clients.unwrap_or(ctx.args.connections)
}

fn progress(ctx: &Ctx, what: &str) {
    eprintln!("[{:6.1}s] {what}", ctx.started.elapsed().as_secs_f64());
}

/// One block's world: a fresh simulator, a fresh database with keys, gateway processes.
struct World {
    simulator: SandboxHandle,
    backend: Backend,
    database: String,
    url: String,
    keys: Keys,
    gateways: Vec<GatewayProcess>,
    /// Operations the gateways completed in this block (warm-ups included).
    gateway_ops: u64,
    counters_before: DbCounters,
    /// Sampled Postgres backend activity during the measured gateway runs.
    waits: HashMap<String, u64>,
    wait_samples: u64,
}

impl World {
    async fn start(
        ctx: &Ctx,
        backend: Backend,
        tag: &str,
        processes: usize,
    ) -> anyhow::Result<Self> {
        let simulator = env::start_simulator(ctx.upstream_latency).await?;
        let (database, url) = match backend {
            Backend::Postgres => {
                let name = ctx.pg.create_database(tag).await?;
                let url = ctx.pg.url(&name);
                (name, url)
            }
            Backend::Sqlite => {
                let dir = ctx.tmp.join(format!("sqlite-{tag}"));
                let url = format!("sqlite://{}/gateway.db", dir.display());
                (dir.display().to_string(), url)
            }
        };
        let mut world = Self {
            simulator,
            backend,
            database,
            url,
            keys: Keys {
                operator: String::new(),
                finance: String::new(),
            },
            gateways: Vec::new(),
            gateway_ops: 0,
            counters_before: DbCounters::default(),
            waits: HashMap::new(),
            wait_samples: 0,
        };
        if let Err(error) = world.open(ctx, processes).await {
            world.close(ctx).await;
            return Err(error);
        }
        Ok(world)
    }

    async fn open(&mut self, ctx: &Ctx, processes: usize) -> anyhow::Result<()> {
        self.keys = env::prepare_database(&self.url).await?;
        if self.backend == Backend::Postgres {
            self.counters_before = ctx.pg.counters(&self.database).await?;
        }
        for _ in 0..processes {
            let gateway =
                env::start_gateway(&ctx.gateway, &self.url, &self.simulator.base_url()).await?;
            self.gateways.push(gateway);
        }
        Ok(())
    }

    fn target(&self) -> Rc<Target> {
        Rc::new(Target::Gateway {
            addrs: self.gateways.iter().map(GatewayProcess::addr).collect(),
            key: self.keys.operator.clone(),
        })
    }

    fn direct(&self) -> Rc<Target> {
        Rc::new(Target::Direct {
            addr: self.simulator.addr(),
            signer: Signer::new(self.simulator.sandbox().config()),
        })
    }

    fn pids(&self) -> Vec<u32> {
        self.gateways
            .iter()
            .filter_map(GatewayProcess::pid)
            .collect()
    }

    /// Stops everything; returns the database work per gateway operation (Postgres only; the
    /// counters are complete once the gateways' connections have closed).
    async fn close(mut self, ctx: &Ctx) -> Option<Value> {
        for gateway in &mut self.gateways {
            gateway.stop().await;
        }
        let mut work = None;
        if self.backend == Backend::Postgres {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Ok(after) = ctx.pg.counters(&self.database).await {
                if self.gateway_ops > 0 {
                    let per = |a: i64, b: i64| (a - b) as f64 / self.gateway_ops as f64;
                    let mut waits: Vec<(&String, &u64)> = self.waits.iter().collect();
                    waits.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                    let samples = self.wait_samples.max(1) as f64;
                    let waits: Vec<Value> = waits
                        .iter()
                        .take(12)
                        .map(|(what, n)| json!({"what": what, "backends": **n as f64 / samples}))
                        .collect();
                    work = Some(json!({
                        "ops": self.gateway_ops,
                        "commits_per_op": per(after.commits, self.counters_before.commits),
                        "rows_inserted_per_op": per(after.inserted, self.counters_before.inserted),
                        "rows_updated_per_op": per(after.updated, self.counters_before.updated),
                        "wait_samples": self.wait_samples,
                        "active_backends": self.waits.values().sum::<u64>() as f64 / samples,
                        "waits": waits,
                    }));
                }
            }
            ctx.pg.drop_database(&self.database).await;
        } else {
            let _ = std::fs::remove_dir_all(&self.database);
        }
        self.simulator.stop().await;
        work
    }
}

fn plan(ctx: &Ctx, scenario: Scenario, mode: Mode) -> Plan {
    let (connections, duration) = match mode {
        Mode::Saturation => (ctx.args.connections, ctx.args.duration),
        Mode::Rate(_) => (ctx.args.rate_connections, ctx.args.latency_duration),
    };
    Plan {
        scenario,
        mode,
        connections,
        warmup: Duration::from_secs_f64(ctx.args.warmup),
        duration: Duration::from_secs_f64(duration),
    }
}

/// Runs `plan` once, sampling the gateways' RSS and everyone's CPU time.
/// `pids`: the server's processes (gateways, or nginx), for CPU time; `rss`: sample their
/// resident size too.
async fn measure(
    target: Rc<Target>,
    plan: &Plan,
    pids: &[u32],
    rss: bool,
    tag: &str,
) -> (RunResult, Value) {
    let (result, usage) = observe(pids, rss, load::run(target, plan, tag)).await;
    let mut json = result.to_json();
    usage.add_to(&mut json, result.all_ops);
    (result, json)
}

/// What the machine spent while a run ran.
struct Usage {
    cpu: CpuSnapshot,
    wall: f64,
    rss_max_kib: Option<u64>,
    has_server: bool,
}

impl Usage {
    /// Adds the CPU time per operation (`ops` of them) and the RSS to a run's JSON.
    fn add_to(&self, json: &mut Value, ops: u64) {
        let per_op = |seconds: f64| {
            if ops == 0 {
                0.0
            } else {
                seconds * 1e6 / ops as f64
            }
        };
        if let Some(map) = json.as_object_mut() {
            if let Some(max) = self.rss_max_kib {
                map.insert("rss_max_mib".into(), json!(max as f64 / 1024.0));
            }
            if self.has_server {
                map.insert(
                    "cpu_server_us_per_op".into(),
                    json!(per_op(self.cpu.gateway)),
                );
            }
            map.insert(
                "cpu_postgres_us_per_op".into(),
                json!(per_op(self.cpu.postgres)),
            );
            map.insert(
                "cpu_harness_us_per_op".into(),
                json!(per_op(self.cpu.harness)),
            );
            // Cores busy with anything else during the run (other users of the machine): noise.
            map.insert(
                "other_cpu_cores".into(),
                json!(self.cpu.others() / self.wall),
            );
            map.insert(
                "machine_cpu_cores".into(),
                json!(self.cpu.machine / self.wall),
            );
        }
    }
}

/// Runs `run`, sampling the RSS of `pids` (if `rss`) and everyone's CPU time meanwhile.
async fn observe<T>(
    pids: &[u32],
    rss: bool,
    run: impl std::future::Future<Output = T>,
) -> (T, Usage) {
    let samples: Rc<RefCell<Vec<u64>>> = Rc::new(RefCell::new(Vec::new()));
    let done = Rc::new(std::cell::Cell::new(false));
    let sampler = {
        let samples = samples.clone();
        let done = done.clone();
        let pids = if rss { pids.to_vec() } else { Vec::new() };
        actix_rt::spawn(async move {
            while !done.get() && !pids.is_empty() {
                let total: u64 = pids.iter().filter_map(|pid| env::rss_kib(*pid)).sum();
                samples.borrow_mut().push(total);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let cpu_before = CpuSnapshot::take(pids);
    let wall = Instant::now();
    let result = run.await;
    let cpu = CpuSnapshot::take(pids).since(cpu_before);
    let wall = wall.elapsed().as_secs_f64();
    done.set(true);
    let _ = sampler.await;
    let rss_max_kib = rss.then(|| samples.borrow().iter().copied().max().unwrap_or(0));
    let usage = Usage {
        cpu,
        wall,
        rss_max_kib,
        has_server: !pids.is_empty(),
    };
    (result, usage)
}

fn mode_name(mode: Mode) -> String {
    match mode {
        Mode::Saturation => "saturation".into(),
        Mode::Rate(rate) => format!("{rate} req/s"),
    }
}

fn series(ctx: &Ctx, key: &str, target: &str, scenario: Scenario, mode: Mode) -> Series {
    let plan = plan(ctx, scenario, mode);
    Series::new(
        key,
        target,
        scenario.name(),
        &mode_name(mode),
        plan.connections,
    )
}

/// A run on the gateways of `world`, recorded in `series`. On Postgres, the block's backends
/// are sampled every 50 ms meanwhile (`pg_stat_activity`): what the database waits on.
async fn gateway_run(ctx: &Ctx, world: &mut World, plan: &Plan, series: &mut Series, tag: &str) {
    let done = Rc::new(std::cell::Cell::new(false));
    let sampler = (world.backend == Backend::Postgres).then(|| {
        let pool = ctx.pg.admin();
        let database = world.database.clone();
        let done = done.clone();
        actix_rt::spawn(async move {
            let mut counts: HashMap<String, u64> = HashMap::new();
            let mut samples = 0;
            while !done.get() {
                for what in env::activity(&pool, &database).await {
                    *counts.entry(what).or_default() += 1;
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (samples, counts)
        })
    });
    let (result, json) = measure(world.target(), plan, &world.pids(), true, tag).await;
    done.set(true);
    if let Some(sampler) = sampler {
        if let Ok((samples, counts)) = sampler.await {
            world.wait_samples += samples;
            for (what, n) in counts {
                *world.waits.entry(what).or_default() += n;
            }
        }
    }
    world.gateway_ops += result.all_ops;
    series.push(json);
}

/// A warm-up run (connections, caches, pools), not recorded.
async fn warm_up(ctx: &Ctx, world: &mut World, scenario: Scenario) {
    let plan = Plan {
        scenario,
        mode: Mode::Saturation,
        connections: ctx.args.connections,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
    };
    let result = load::run(world.target(), &plan, "warmup").await;
    world.gateway_ops += result.all_ops;
}

async fn comparison_suite(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let mut doc = header(ctx, "comparison").await;
    let mut all: Vec<Series> = Vec::new();
    let mut work = serde_json::Map::new();
    let repeats = ctx.args.repeats.max(1);
    let rate = Mode::Rate(ctx.args.rate);
    let sat = Mode::Saturation;
    if ctx.nginx.is_none() {
        ctx.notes.push("nginx is not installed: reference (b) skipped (scripts/bench installs it with apt-get when run as root)".into());
    }
    if ctx.pgbench.is_none() {
        ctx.notes.push("pgbench is not installed: reference (c) skipped (scripts/bench installs postgresql-client with apt-get when run as root)".into());
    }

    // 0. Throughput with wrk: every target driven by the same lean client.
    if ctx.wrk.is_some() {
        wrk_block(ctx, &mut all, &mut work).await?;
    } else {
        ctx.notes.push("wrk is not installed: the wrk figures are skipped (scripts/bench installs it with apt-get when run as root)".into());
    }

    // 1. Inquiry latency at a fixed rate: the gateway and (a), interleaved.
    progress(ctx, "inquiry at a fixed rate: gateway, direct (a)");
    let mut world = World::start(ctx, Backend::Postgres, "rate", 1).await?;
    warm_up(ctx, &mut world, Scenario::Inquiry).await;
    let mut gw = series(
        ctx,
        "inquiry_rate/gateway",
        "gateway (Postgres)",
        Scenario::Inquiry,
        rate,
    );
    let mut direct = series(
        ctx,
        "inquiry_rate/direct",
        "(a) direct to simulator",
        Scenario::Inquiry,
        rate,
    );
    let p = plan(ctx, Scenario::Inquiry, rate);
    for r in 0..repeats {
        gateway_run(ctx, &mut world, &p, &mut gw, &format!("rate{r}")).await;
        direct.push(measure(world.direct(), &p, &[], false, "d").await.1);
    }
    work.insert("inquiry".into(), json!(world.close(ctx).await));
    all.extend([gw, direct]);

    // 2. Inquiry saturation: the gateway, (a) and (b).
    progress(ctx, "inquiry saturation: gateway, direct (a), nginx (b)");
    let mut world = World::start(ctx, Backend::Postgres, "inq", 1).await?;
    let nginx = match &ctx.nginx {
        Some(_) => {
            let template = ctx.args.bench_dir.join("nginx/nginx.conf.in");
            match Nginx::start(&template, &ctx.tmp, world.simulator.addr()).await {
                Ok(nginx) => Some(nginx),
                Err(error) => {
                    ctx.notes
                        .push(format!("nginx reference skipped: {error:#}"));
                    None
                }
            }
        }
        None => None,
    };
    warm_up(ctx, &mut world, Scenario::Inquiry).await;
    let mut gw = series(
        ctx,
        "inquiry_sat/gateway",
        "gateway (Postgres)",
        Scenario::Inquiry,
        sat,
    );
    let mut direct = series(
        ctx,
        "inquiry_sat/direct",
        "(a) direct to simulator",
        Scenario::Inquiry,
        sat,
    );
    let mut proxied = series(
        ctx,
        "inquiry_sat/nginx",
        "(b) nginx → simulator",
        Scenario::Inquiry,
        sat,
    );
    let p = plan(ctx, Scenario::Inquiry, sat);
    for r in 0..repeats {
        gateway_run(ctx, &mut world, &p, &mut gw, &format!("inq{r}")).await;
        direct.push(measure(world.direct(), &p, &[], false, "d").await.1);
        if let Some(nginx) = &nginx {
            let target = Rc::new(Target::Direct {
                addr: nginx.addr(),
                signer: Signer::new(world.simulator.sandbox().config()),
            });
            proxied.push(measure(target, &p, &nginx.pids(), false, "n").await.1);
        }
    }
    if let Some(nginx) = nginx {
        nginx.stop().await;
    }
    work.insert("inquiry_saturation".into(), json!(world.close(ctx).await));
    all.extend([gw, direct]);
    if !proxied.is_empty() {
        all.push(proxied);
    }

    // 3. Payment flow saturation: the gateway, (a), and (c) pgbench's one-row insert.
    progress(
        ctx,
        "payment flow saturation: gateway, direct (a), pgbench (c)",
    );
    let pgbench_db = if ctx.pgbench.is_some() {
        let name = ctx.pg.create_database("pgbench").await?;
        let schema = std::fs::read_to_string(ctx.args.bench_dir.join("pgbench/schema.sql"))?;
        ctx.pg.execute(&name, &schema).await?;
        Some(name)
    } else {
        None
    };
    let mut world = World::start(ctx, Backend::Postgres, "flow", 1).await?;
    warm_up(ctx, &mut world, Scenario::Flow).await;
    let mut gw = series(
        ctx,
        "flow_sat/gateway",
        "gateway (Postgres)",
        Scenario::Flow,
        sat,
    );
    let mut direct = series(
        ctx,
        "flow_sat/direct",
        "(a) direct to simulator",
        Scenario::Flow,
        sat,
    );
    let mut pgb = Series::new(
        "insert/pgbench",
        "(c) pgbench one-row insert",
        "one-row insert",
        "saturation",
        pgbench_clients(ctx),
    );
    let p = plan(ctx, Scenario::Flow, sat);
    let script = ctx.args.bench_dir.join("pgbench/insert.sql");
    for r in 0..repeats {
        gateway_run(ctx, &mut world, &p, &mut gw, &format!("flow{r}")).await;
        direct.push(measure(world.direct(), &p, &[], false, "d").await.1);
        if let Some(db) = &pgbench_db {
            let seconds = ctx.args.duration.ceil() as u64;
            match env::pgbench(&ctx.pg, db, &script, pgbench_clients(ctx), seconds).await {
                Ok(tps) => pgb.push(json!({"throughput": tps, "errors": 0})),
                Err(error) => ctx.notes.push(format!("pgbench run failed: {error:#}")),
            }
        }
    }
    work.insert("payment_flow".into(), json!(world.close(ctx).await));
    if let Some(db) = pgbench_db {
        ctx.pg.drop_database(&db).await;
    }
    all.extend([gw, direct]);
    if !pgb.is_empty() {
        all.push(pgb);
    }

    // 4. The mix.
    progress(ctx, "mix saturation: gateway");
    let mut world = World::start(ctx, Backend::Postgres, "mix", 1).await?;
    warm_up(ctx, &mut world, Scenario::Mix).await;
    let mut gw = series(
        ctx,
        "mix_sat/gateway",
        "gateway (Postgres)",
        Scenario::Mix,
        sat,
    );
    let p = plan(ctx, Scenario::Mix, sat);
    for r in 0..repeats {
        gateway_run(ctx, &mut world, &p, &mut gw, &format!("mix{r}")).await;
    }
    work.insert("mix".into(), json!(world.close(ctx).await));
    all.push(gw);

    // 5. SQLite mode.
    progress(ctx, "SQLite mode: inquiry and payment flow saturation");
    let mut world = World::start(ctx, Backend::Sqlite, "sqlite", 1).await?;
    warm_up(ctx, &mut world, Scenario::Inquiry).await;
    let mut inq = series(
        ctx,
        "inquiry_sat/sqlite",
        "gateway (SQLite)",
        Scenario::Inquiry,
        sat,
    );
    let mut flow = series(
        ctx,
        "flow_sat/sqlite",
        "gateway (SQLite)",
        Scenario::Flow,
        sat,
    );
    let pi = plan(ctx, Scenario::Inquiry, sat);
    let pf = plan(ctx, Scenario::Flow, sat);
    for r in 0..repeats {
        gateway_run(ctx, &mut world, &pi, &mut inq, &format!("sqi{r}")).await;
        gateway_run(ctx, &mut world, &pf, &mut flow, &format!("sqf{r}")).await;
    }
    world.close(ctx).await;
    all.extend([inq, flow]);
    progress(ctx, "done");

    let summary = report::summary(&all);
    if let Some(map) = doc.as_object_mut() {
        map.insert(
            "series".into(),
            Value::Array(all.iter().map(Series::to_json).collect()),
        );
        map.insert("ratios".into(), summary);
        map.insert("db_work".into(), Value::Object(work));
        map.insert("notes".into(), json!(ctx.notes));
        map.insert(
            "wall_seconds".into(),
            json!(ctx.started.elapsed().as_secs_f64()),
        );
        map.insert("load_average_at_end".into(), json!(env::load_average()));
    }
    Ok(doc)
}

/// One wrk run against `addr`, with the CPU (and, for gateways, RSS) of `pids` meanwhile.
async fn wrk_run(
    ctx: &mut Ctx,
    addr: std::net::SocketAddr,
    script: &str,
    connections: usize,
    pids: &[u32],
    rss: bool,
) -> Option<Value> {
    let duration = Duration::from_secs(ctx.args.wrk_duration);
    let (result, usage) = observe(
        pids,
        rss,
        wrk::run(addr, script, connections, duration, &ctx.tmp),
    )
    .await;
    match result {
        Ok(mut json) => {
            let ops = json["requests"].as_f64().unwrap_or(0.0) as u64;
            usage.add_to(&mut json, ops);
            Some(json)
        }
        Err(error) => {
            ctx.notes.push(format!("a wrk run failed: {error:#}"));
            None
        }
    }
}

/// The gateway's inquiry and purchase requests for wrk (`{bill}` and `{customer}` varied).
fn gateway_requests(key: &str) -> (wrk::Request, wrk::Request) {
    let headers = vec![
        ("Authorization".to_string(), format!("Bearer {key}")),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    let inquiry = wrk::Request {
        method: "POST",
        path: "/v1/bills/{bill}/inquiry".into(),
        headers: headers.clone(),
        body: format!("{{\"product\":\"{}\"}}", load::PRODUCT),
    };
    let purchase = wrk::Request {
        method: "POST",
        path: "/v1/purchases".into(),
        headers,
        body: r#"{"product":"3100","customerNumber":"{customer}"}"#.into(),
    };
    (inquiry, purchase)
}

/// Throughput with wrk, one run of each target in turn per repeat: inquiries direct to the
/// simulator (a), through nginx (b), through the gateway on Postgres and on SQLite; purchases
/// (a fresh Idempotency-Key and customer number each) on both; and pgbench's one-row insert
/// (c) at the purchases' client count.
async fn wrk_block(
    ctx: &mut Ctx,
    all: &mut Vec<Series>,
    work: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    progress(ctx, "wrk: inquiry and purchase throughput, direct (a), nginx (b), gateway on both databases, pgbench (c)");
    let repeats = ctx.args.repeats.max(1);
    let (reads, writes) = (ctx.args.wrk_connections, ctx.args.wrk_write_connections);
    let series = |key: &str, target: &str, scenario: &str, connections: usize| {
        Series::new(key, target, scenario, "saturation (wrk)", connections)
    };
    let mut direct = series(
        "wrk/inquiry/direct",
        "(a) direct to simulator",
        "inquiry",
        reads,
    );
    let mut proxied = series(
        "wrk/inquiry/nginx",
        "(b) nginx → simulator",
        "inquiry",
        reads,
    );
    let mut pg_inq = series(
        "wrk/inquiry/gateway",
        "gateway (Postgres)",
        "inquiry",
        reads,
    );
    let mut lite_inq = series("wrk/inquiry/sqlite", "gateway (SQLite)", "inquiry", reads);
    let mut pg_buy = series(
        "wrk/purchase/gateway",
        "gateway (Postgres)",
        "purchase",
        writes,
    );
    let mut lite_buy = series(
        "wrk/purchase/sqlite",
        "gateway (SQLite)",
        "purchase",
        writes,
    );
    let mut pgb = series(
        "wrk/insert/pgbench",
        "(c) pgbench one-row insert",
        "one-row insert",
        writes,
    );

    let pgbench_db = if ctx.pgbench.is_some() {
        let name = ctx.pg.create_database("wrkpgbench").await?;
        let schema = std::fs::read_to_string(ctx.args.bench_dir.join("pgbench/schema.sql"))?;
        ctx.pg.execute(&name, &schema).await?;
        Some(name)
    } else {
        None
    };
    let mut pg = World::start(ctx, Backend::Postgres, "wrk", 1).await?;
    let mut lite = World::start(ctx, Backend::Sqlite, "wrklite", 1).await?;
    let nginx = match &ctx.nginx {
        Some(_) => {
            let template = ctx.args.bench_dir.join("nginx/nginx.conf.in");
            Nginx::start(&template, &ctx.tmp, pg.simulator.addr())
                .await
                .ok()
        }
        None => None,
    };
    warm_up(ctx, &mut pg, Scenario::Inquiry).await;
    warm_up(ctx, &mut lite, Scenario::Inquiry).await;
    // A signed inquiry, replayed as is: the simulator answers every copy.
    let signer = Signer::new(pg.simulator.sandbox().config());
    let (headers, body) = signer.parts(
        mpospay_gateway::h2h::MessageType::Inquiry,
        "8888000000001",
        None,
    );
    let h2h = wrk::Request {
        method: "POST",
        path: mpospay_gateway::h2h::H2H_PATH.into(),
        headers: headers
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
        body: String::from_utf8(body)?,
    };
    let h2h_script = wrk::script(&h2h, Vary::Nothing, "h2h", 0);
    let pid = std::process::id() as u64;
    for r in 0..repeats {
        let seed = (pid % 100) * 1_000_000 + r as u64 * 100_000;
        let tag = format!("wrk{pid}-{r}");
        if let Some(run) = wrk_run(ctx, pg.simulator.addr(), &h2h_script, reads, &[], false).await {
            direct.push(run);
        }
        if let Some(nginx) = &nginx {
            if let Some(run) =
                wrk_run(ctx, nginx.addr(), &h2h_script, reads, &nginx.pids(), false).await
            {
                proxied.push(run);
            }
        }
        for (world, inq, buy) in [
            (&mut pg, &mut pg_inq, &mut pg_buy),
            (&mut lite, &mut lite_inq, &mut lite_buy),
        ] {
            let (inquiry, purchase) = gateway_requests(&world.keys.operator);
            let addr = world.gateways[0].addr();
            let pids = world.pids();
            let inquiry = wrk::script(&inquiry, Vary::Bill, &tag, seed);
            let purchase = wrk::script(&purchase, Vary::Purchase, &tag, seed);
            if let Some(run) = wrk_run(ctx, addr, &inquiry, reads, &pids, true).await {
                world.gateway_ops += run["requests"].as_f64().unwrap_or(0.0) as u64;
                inq.push(run);
            }
            if let Some(run) = wrk_run(ctx, addr, &purchase, writes, &pids, true).await {
                world.gateway_ops += run["requests"].as_f64().unwrap_or(0.0) as u64;
                buy.push(run);
            }
        }
        if let Some(db) = &pgbench_db {
            let script = ctx.args.bench_dir.join("pgbench/insert.sql");
            match env::pgbench(&ctx.pg, db, &script, writes, ctx.args.wrk_duration).await {
                Ok(tps) => pgb.push(json!({"throughput": tps, "errors": 0})),
                Err(error) => ctx.notes.push(format!("pgbench run failed: {error:#}")),
            }
        }
    }
    if let Some(nginx) = nginx {
        nginx.stop().await;
    }
    work.insert("wrk".into(), json!(pg.close(ctx).await));
    lite.close(ctx).await;
    if let Some(db) = pgbench_db {
        ctx.pg.drop_database(&db).await;
    }
    for series in [direct, proxied, pg_inq, lite_inq, pg_buy, lite_buy, pgb] {
        if !series.is_empty() {
            all.push(series);
        }
    }
    Ok(())
}

/// Rows for the growth measurements, inserted with `bench/growth/fill.sql`.
async fn fill(ctx: &Ctx, database: &str, from: u64, to: u64, max: u64) -> anyhow::Result<()> {
    let sql = std::fs::read_to_string(ctx.args.bench_dir.join("growth/fill.sql"))?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&ctx.pg.url(database))
        .await?;
    // Spread over the 30 days before now, oldest first.
    let base = chrono::Utc::now() - chrono::Duration::days(30);
    let step = 30.0 * 86_400.0 / max as f64;
    let mut start = from;
    while start < to {
        let end = (start + 200_000).min(to);
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind("bench-pos")
            .bind(start as i64)
            .bind(end as i64)
            .bind(base)
            .bind(step)
            .execute(&pool)
            .await
            .context("inserting growth rows")?;
        start = end;
    }
    sqlx::raw_sql("VACUUM ANALYZE transactions")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// Sequential requests on one connection for `seconds`: latencies (µs) and the count.
async fn sequential(
    addr: std::net::SocketAddr,
    request: &[u8],
    seconds: f64,
) -> (load::Hist, u64, u64) {
    let mut hist = hdrhistogram::Histogram::new_with_bounds(1, 120_000_000, 3).expect("bounds");
    let mut conn = crate::http::Connection::new(addr);
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut ok, mut errors) = (0, 0);
    // One unrecorded request first: the connection and the gateway's pool.
    let _ = conn.send(request, false).await;
    while Instant::now() < end {
        let started = Instant::now();
        match conn.send(request, false).await {
            Ok(response) if response.status == 200 => {
                hist.saturating_record((started.elapsed().as_micros() as u64).max(1));
                ok += 1;
            }
            _ => errors += 1,
        }
    }
    (hist, ok, errors)
}

async fn growth_suite(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let mut doc = header(ctx, "growth").await;
    let repeats = ctx.args.repeats.max(1);
    let mut sizes_out = Vec::new();
    let max = ctx.args.growth_sizes.iter().copied().max().unwrap_or(1);
    let world = World::start(ctx, Backend::Postgres, "growth", 1).await?;
    let addr = world.gateways[0].addr();
    let finance = format!("Bearer {}", world.keys.finance);
    let operator = format!("Bearer {}", world.keys.operator);
    let queries = [
        ("first page (50)", "/v1/transactions?limit=50", &finance),
        (
            "page, filtered type+status",
            "/v1/transactions?type=payment&status=failed&limit=50",
            &finance,
        ),
        (
            "operator's first page (50)",
            "/v1/transactions?limit=50",
            &operator,
        ),
    ];
    let mut filled = 0;
    for &size in &ctx.args.growth_sizes {
        progress(ctx, &format!("growth: filling to {size} rows"));
        let fill_started = Instant::now();
        fill(ctx, &world.database, filled, size, max).await?;
        let fill_seconds = fill_started.elapsed().as_secs_f64();
        filled = size;
        let mut entry = serde_json::Map::new();
        entry.insert("rows".into(), json!(size));
        entry.insert("fill_seconds".into(), json!(fill_seconds));
        for (name, path, auth) in &queries {
            let request =
                crate::http::request("GET", "gateway", path, &[("Authorization", auth)], b"");
            let mut runs = Vec::new();
            for _ in 0..repeats {
                let (hist, ok, errors) = sequential(addr, &request, 2.0).await;
                runs.push(json!({
                    "p50_ms": load::ms(&hist, 50.0), "p99_ms": load::ms(&hist, 99.0),
                    "requests": ok, "errors": errors,
                }));
            }
            entry.insert(name.to_string(), report::with_median(runs));
        }
        progress(ctx, &format!("growth: export of {size} rows"));
        let request = crate::http::request(
            "GET",
            "gateway",
            "/v1/transactions/export.csv",
            &[("Authorization", &finance)],
            b"",
        );
        let mut runs = Vec::new();
        for _ in 0..repeats {
            let mut conn = crate::http::Connection::new(addr);
            let started = Instant::now();
            let response = conn.send(&request, false).await;
            let seconds = started.elapsed().as_secs_f64();
            match response {
                Ok(response) if response.status == 200 => {
                    let rows = response.lines.saturating_sub(1);
                    runs.push(json!({
                        "seconds": seconds, "rows": rows, "mib": response.body_len as f64 / 1048576.0,
                        "rows_per_s": rows as f64 / seconds, "us_per_row": seconds * 1e6 / rows.max(1) as f64,
                    }));
                }
                other => ctx.notes.push(format!(
                    "export at {size} rows failed: {:?}",
                    other.map(|r| r.status)
                )),
            }
        }
        entry.insert("export".into(), report::with_median(runs));
        // A payment needs the inquiry and the last known balance: its cost as the table grows.
        let plan = Plan {
            scenario: Scenario::Flow,
            mode: Mode::Saturation,
            connections: 1,
            warmup: Duration::from_millis(200),
            duration: Duration::from_secs(2),
        };
        let mut runs = Vec::new();
        for r in 0..repeats {
            let result = load::run(world.target(), &plan, &format!("g{size}-{r}")).await;
            let mut json = result.to_json();
            if let Some(payment) = json["requests"].get("payment").cloned() {
                json["payment_p50_ms"] = payment["p50_ms"].clone();
                json["payment_p99_ms"] = payment["p99_ms"].clone();
            }
            runs.push(json);
        }
        entry.insert(
            "payment flow, 1 connection".into(),
            report::with_median(runs),
        );
        sizes_out.push(Value::Object(entry));
    }
    world.close(ctx).await;

    // Gateway processes on one Postgres.
    let mut scaling = Vec::new();
    for &processes in &ctx.args.processes {
        progress(
            ctx,
            &format!("growth: {processes} gateway process(es) on one Postgres"),
        );
        let mut world =
            World::start(ctx, Backend::Postgres, &format!("p{processes}"), processes).await?;
        warm_up(ctx, &mut world, Scenario::Inquiry).await;
        let mut inq = series(
            ctx,
            &format!("processes{processes}/inquiry"),
            &format!("{processes} process(es)"),
            Scenario::Inquiry,
            Mode::Saturation,
        );
        let mut flow = series(
            ctx,
            &format!("processes{processes}/flow"),
            &format!("{processes} process(es)"),
            Scenario::Flow,
            Mode::Saturation,
        );
        let pi = plan(ctx, Scenario::Inquiry, Mode::Saturation);
        let pf = plan(ctx, Scenario::Flow, Mode::Saturation);
        for r in 0..repeats {
            gateway_run(
                ctx,
                &mut world,
                &pi,
                &mut inq,
                &format!("pi{processes}-{r}"),
            )
            .await;
            gateway_run(
                ctx,
                &mut world,
                &pf,
                &mut flow,
                &format!("pf{processes}-{r}"),
            )
            .await;
        }
        world.close(ctx).await;
        scaling.push(
            json!({"processes": processes, "inquiry": inq.to_json(), "flow": flow.to_json()}),
        );
    }
    progress(ctx, "done");
    if let Some(map) = doc.as_object_mut() {
        map.insert("sizes".into(), Value::Array(sizes_out));
        map.insert("processes".into(), Value::Array(scaling));
        map.insert("notes".into(), json!(ctx.notes));
        map.insert(
            "wall_seconds".into(),
            json!(ctx.started.elapsed().as_secs_f64()),
        );
        map.insert("load_average_at_end".into(), json!(env::load_average()));
    }
    Ok(doc)
}

async fn soak_suite(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let mut doc = header(ctx, "soak").await;
    let mut world = World::start(ctx, Backend::Postgres, "soak", 1).await?;
    warm_up(ctx, &mut world, Scenario::Inquiry).await;
    let pid = world.pids()[0];
    let slices = (ctx.args.soak_secs / 10).max(1);
    progress(
        ctx,
        &format!("soak: inquiry saturation for {}s", slices * 10),
    );
    let mut points = Vec::new();
    let started = Instant::now();
    for slice in 0..slices {
        let plan = Plan {
            scenario: Scenario::Inquiry,
            mode: Mode::Saturation,
            connections: ctx.args.connections,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(10),
        };
        let (result, json) =
            measure(world.target(), &plan, &[pid], true, &format!("soak{slice}")).await;
        world.gateway_ops += result.all_ops;
        points.push(json!({
            "t_s": started.elapsed().as_secs_f64(),
            "rss_mib": env::rss_kib(pid).map(|k| k as f64 / 1024.0),
            "rss_max_mib": json["rss_max_mib"],
            "throughput": result.throughput(),
            "p99_ms": json["p99_ms"],
            "errors": result.errors,
        }));
    }
    world.close(ctx).await;
    progress(ctx, "done");
    if let Some(map) = doc.as_object_mut() {
        map.insert("points".into(), Value::Array(points));
        map.insert("notes".into(), json!(ctx.notes));
        map.insert("load_average_at_end".into(), json!(env::load_average()));
    }
    Ok(doc)
}

/// The seeded day: yesterday in Jakarta (UTC+7 all year, the gateway's default business zone),
/// so that nothing the gateway does now falls in it.
fn reconciliation_day() -> (chrono::NaiveDate, chrono::DateTime<chrono::Utc>) {
    use chrono::TimeZone;
    let zone = chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7");
    let date = chrono::Utc::now().with_timezone(&zone).date_naive() - chrono::Days::new(1);
    let start = zone
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&chrono::Utc);
    (date, start)
}

/// Every top-up seeded into the day: 3,000,000 before transaction 5,000, 15,000, …
const SEEDED_TOP_UP: i64 = 3_000_000;

/// `rows` succeeded payments and purchases (every third a purchase) on one balance chain from
/// 1,000,000,000,000 through the day from `start`, one each 0.8 s (at 100,000 rows), answered
/// 0–59 ms later, with a top-up before every 10,000th from the 5,000th. `$1` the rows, `$2` the
/// day's start (Postgres: a time; SQLite: Unix seconds), `$3` the spacing in seconds.
const SEED_POSTGRES: &str = "\
    INSERT INTO transactions (id, kind, status, client, product, bill_number, trx_id, retrieval, \
      amount, admin_fee, balance_after, created_at, updated_at, completed_at) \
    SELECT gen_random_uuid(), CASE WHEN n % 3 = 0 THEN 'purchase' ELSE 'payment' END, \
      'succeeded', 'bench-pos', '2042', 'BILL' || n, lpad((n % 99999999 + 1)::text, 8, '0'), \
      '20261201000000000', total - 2500, 2500, \
      1000000000000 - SUM(total) OVER (ORDER BY n) + 3000000 * ((n + 5000) / 10000), \
      $2 + (n * $3) * interval '1 second', $2 + (n * $3) * interval '1 second', \
      $2 + (n * $3) * interval '1 second' + ((n * 31) % 60) * interval '1 millisecond' \
    FROM (SELECT n, 10000 + (n * 7919) % 90000 AS total FROM generate_series(1, $1) AS n) AS t";

const SEED_SQLITE: &str = "\
    WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $1), \
      t AS (SELECT n, 10000 + (n * 7919) % 90000 AS total FROM seq) \
    INSERT INTO transactions (id, kind, status, client, product, bill_number, trx_id, retrieval, \
      amount, admin_fee, balance_after, created_at, updated_at, completed_at) \
    SELECT printf('%08x-0000-7000-8000-%012x', n, n), \
      CASE WHEN n % 3 = 0 THEN 'purchase' ELSE 'payment' END, \
      'succeeded', 'bench-pos', '2042', 'BILL' || n, printf('%08d', n % 99999999 + 1), \
      '20261201000000000', total - 2500, 2500, \
      1000000000000 - SUM(total) OVER (ORDER BY n) + 3000000 * ((n + 5000) / 10000), \
      strftime('%Y-%m-%dT%H:%M:%f+00:00', $2 + n * $3, 'unixepoch'), \
      strftime('%Y-%m-%dT%H:%M:%f+00:00', $2 + n * $3, 'unixepoch'), \
      strftime('%Y-%m-%dT%H:%M:%f+00:00', $2 + n * $3 + ((n * 31) % 60) / 1000.0, 'unixepoch') \
    FROM t";

async fn seed_day(
    backend: Backend,
    url: &str,
    start: chrono::DateTime<chrono::Utc>,
    rows: u64,
) -> anyhow::Result<()> {
    let spacing = 80_000.0 / rows.max(1) as f64;
    match backend {
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            sqlx::query(SEED_POSTGRES)
                .bind(rows as i64)
                .bind(start)
                .bind(spacing)
                .execute(&pool)
                .await
                .context("seeding the day (Postgres)")?;
            sqlx::raw_sql("VACUUM ANALYZE transactions")
                .execute(&pool)
                .await?;
            pool.close().await;
        }
        Backend::Sqlite => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            sqlx::query(SEED_SQLITE)
                .bind(rows as i64)
                .bind(start.timestamp())
                .bind(spacing)
                .execute(&pool)
                .await
                .context("seeding the day (SQLite)")?;
            sqlx::raw_sql("ANALYZE").execute(&pool).await?;
            pool.close().await;
        }
    }
    Ok(())
}

/// `GET /v1/reports/reconciliation` of a day of `--reconciliation-rows` succeeded transactions,
/// on a fresh database of each kind: one unrecorded request, then `--repeats` (at least 5)
/// timed ones; the figure is their median. The first answer is checked: every transaction
/// counted, exactly the seeded top-ups found.
async fn reconciliation_suite(ctx: &mut Ctx) -> anyhow::Result<Value> {
    let mut doc = header(ctx, "reconciliation").await;
    let rows = ctx.args.reconciliation_rows;
    let repeats = ctx.args.repeats.max(5);
    let (date, start) = reconciliation_day();
    let mut backends = Vec::new();
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let name = match backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        };
        let world = World::start(ctx, backend, "recon", 1).await?;
        progress(
            ctx,
            &format!("reconciliation: seeding {rows} rows ({name})"),
        );
        let seeded = Instant::now();
        let result = seed_day(backend, &world.url, start, rows).await;
        let seed_seconds = seeded.elapsed().as_secs_f64();
        if let Err(error) = result {
            world.close(ctx).await;
            return Err(error);
        }
        let addr = world.gateways[0].addr();
        let auth = format!("Bearer {}", world.keys.finance);
        let request = crate::http::request(
            "GET",
            "gateway",
            &format!("/v1/reports/reconciliation?date={date}"),
            &[("Authorization", &auth)],
            b"",
        );
        let mut conn = crate::http::Connection::new(addr);
        progress(ctx, &format!("reconciliation: {repeats} reports ({name})"));
        let cold = Instant::now();
        let first = conn.send(&request, true).await;
        let cold_seconds = cold.elapsed().as_secs_f64();
        let check = match &first {
            Ok(response) if response.status == 200 => {
                let body: Value = serde_json::from_slice(&response.body)?;
                let expected_breaks = (rows + 5_000) / 10_000;
                let breaks = body["unexplained"].as_array().map_or(0, Vec::len) as u64;
                let all_top_ups = body["unexplained"]
                    .as_array()
                    .is_some_and(|b| b.iter().all(|b| b["amount"] == SEEDED_TOP_UP));
                json!({
                    "succeeded_count": body["succeededCount"],
                    "breaks": breaks,
                    "points": body["points"].as_array().map_or(0, Vec::len),
                    "body_mib": response.body.len() as f64 / 1048576.0,
                    "ok": body["succeededCount"] == rows && breaks == expected_breaks && all_top_ups,
                })
            }
            other => json!({"ok": false, "status": other.as_ref().ok().map(|r| r.status)}),
        };
        let mut runs = Vec::new();
        for _ in 0..repeats {
            let started = Instant::now();
            match conn.send(&request, false).await {
                Ok(response) if response.status == 200 => {
                    runs.push(json!({"seconds": started.elapsed().as_secs_f64()}));
                }
                other => ctx.notes.push(format!(
                    "reconciliation ({name}) failed: {:?}",
                    other.map(|r| r.status)
                )),
            }
        }
        world.close(ctx).await;
        let mut entry = report::with_median(runs);
        entry["backend"] = json!(name);
        entry["rows"] = json!(rows);
        entry["seed_seconds"] = json!(seed_seconds);
        entry["first_seconds"] = json!(cold_seconds);
        entry["check"] = check;
        backends.push(entry);
    }
    if let Some(map) = doc.as_object_mut() {
        map.insert("date".into(), json!(date.to_string()));
        map.insert("goal_seconds".into(), json!(2.0));
        map.insert("backends".into(), Value::Array(backends));
        map.insert("notes".into(), json!(ctx.notes));
        map.insert(
            "wall_seconds".into(),
            json!(ctx.started.elapsed().as_secs_f64()),
        );
        map.insert("load_average_at_end".into(), json!(env::load_average()));
    }
    Ok(doc)
}
