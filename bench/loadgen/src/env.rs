//! What the harness starts and inspects: the simulator (in this process), gateway processes,
//! Postgres databases, nginx, pgbench, and the machine itself (description, RSS, CPU time).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use mpospay_gateway::keys::{self, Role};
use mpospay_gateway::sandbox::{self, ForcedFault, SandboxConfig, SandboxHandle};
use mpospay_testkit::postgres::PostgresServer;
use mpospay_testkit::{free_port, GatewayCommand, GatewayLog, GatewayProcess, Partner};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
// Database names and settings below are the harness's own, never outside input.
use sqlx::{AssertSqlSafe, PgPool, Row};

/// The simulator's deposit: large enough that no benchmark runs it dry (about three million
/// payments), and within the 12 digits PROTOCOL.md allows a `saldo`.
const DEPOSIT: i64 = 900_000_000_000;

/// The simulator, in this process, with `latency` added to every answer.
pub async fn start_simulator(latency: Duration) -> anyhow::Result<SandboxHandle> {
    let config = simulator_config(latency);
    Ok(sandbox::spawn_on_loopback(config).await?)
}

pub fn simulator_config(latency: Duration) -> SandboxConfig {
    SandboxConfig {
        initial_balance: DEPOSIT,
        forced_fault: (!latency.is_zero()).then_some(ForcedFault::Delay(latency)),
        ..SandboxConfig::default()
    }
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The Postgres server: an admin connection, and fresh databases made on it.
pub struct Postgres {
    pub host: String,
    pub port: u16,
    pub user: String,
    admin: PgPool,
    server: PostgresServer,
}

impl Postgres {
    pub async fn connect(host: &str, port: u16, user: &str) -> anyhow::Result<Self> {
        let url = format!("postgres://{user}@{host}:{port}/postgres");
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&url)
            .await
            .with_context(|| format!("connecting to Postgres at {host}:{port} as {user}"))?;
        Ok(Self {
            host: host.into(),
            port,
            user: user.into(),
            admin,
            server: PostgresServer::new(&url),
        })
    }

    pub fn url(&self, database: &str) -> String {
        self.server.url(database)
    }

    /// A new empty database `bench_<tag>_<uuid>`.
    pub async fn create_database(&self, tag: &str) -> anyhow::Result<String> {
        self.server.create_database(&format!("bench_{tag}")).await
    }

    pub async fn drop_database(&self, name: &str) {
        self.server.drop_database(name).await;
    }

    /// Drops every database this process made (left behind by an error path).
    pub async fn drop_own_databases(&self) {
        self.server.drop_created().await;
    }

    /// The admin connection pool (for samplers running beside a load).
    pub fn admin(&self) -> PgPool {
        self.admin.clone()
    }

    /// Per-database counters: transactions committed, rows inserted and updated.
    pub async fn counters(&self, database: &str) -> anyhow::Result<DbCounters> {
        let row = sqlx::query(
            "SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = $1",
        )
        .bind(database)
        .fetch_one(&self.admin)
        .await?;
        Ok(DbCounters {
            commits: row.get(0),
            inserted: row.get(1),
            updated: row.get(2),
        })
    }

    pub async fn describe(&self) -> Value {
        let mut out = serde_json::Map::new();
        for setting in [
            "server_version",
            "fsync",
            "synchronous_commit",
            "wal_sync_method",
            "shared_buffers",
            "max_connections",
        ] {
            let value: Option<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("SHOW {setting}")))
                    .fetch_one(&self.admin)
                    .await
                    .ok();
            out.insert(setting.into(), json!(value));
        }
        Value::Object(out)
    }

    pub async fn execute(&self, database: &str, sql: &str) -> anyhow::Result<()> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url(database))
            .await?;
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await?;
        pool.close().await;
        Ok(())
    }
}

/// What the active backends of `database` are doing now: wait event (or `CPU` when running)
/// and the start of their statement.
pub async fn activity(pool: &PgPool, database: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') || ' · ' \
         || left(regexp_replace(query, '\\s+', ' ', 'g'), 44) \
         FROM pg_stat_activity \
         WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

/// Counters of one database (`pg_stat_database`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DbCounters {
    pub commits: i64,
    pub inserted: i64,
    pub updated: i64,
}

/// API keys made for a benchmark's client.
pub struct Keys {
    pub operator: String,
    pub finance: String,
}

/// Applies migrations and makes an operator and a finance key (client `bench-pos`).
pub async fn prepare_database(url: &str) -> anyhow::Result<Keys> {
    let store = mpospay_gateway::store::connect(url, 2)
        .await
        .context("migrating the benchmark database")?;
    let mut made = Vec::new();
    for (role, client) in [
        (Role::Operator, "bench-pos"),
        (Role::Finance, "bench-finance"),
    ] {
        let new = keys::generate(client, role, Utc::now());
        store.insert_api_key(&new.record).await?;
        made.push(new.plain);
    }
    Ok(Keys {
        finance: made.pop().unwrap_or_default(),
        operator: made.pop().unwrap_or_default(),
    })
}

/// How gateway processes are started.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub binary: PathBuf,
    pub workdir: PathBuf,
    /// Where its logs go (`None`: discarded; they are still formatted).
    pub log: Option<PathBuf>,
    /// Extra `GATEWAY_*` settings.
    pub env: Vec<(String, String)>,
}

/// Starts a gateway process (`mpospay-gateway serve`) against `database_url` with
/// `upstream_url` (a simulator with the demo partner) as its upstream, configured through the
/// environment only, and waits until `/readyz` answers 200.
pub async fn start_gateway(
    options: &GatewayOptions,
    database_url: &str,
    upstream_url: &str,
) -> anyhow::Result<GatewayProcess> {
    let config = SandboxConfig::default();
    let partner = Partner {
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
        password: config.password.clone(),
        key: config.key.clone(),
        account: config.account.clone(),
        institution_code: config.institution_code.clone(),
    };
    let log = match &options.log {
        Some(path) => GatewayLog::File(path.clone()),
        None => GatewayLog::Discard,
    };
    let mut command = GatewayCommand::new(&options.binary, database_url, upstream_url, &partner)
        .workdir(&options.workdir)
        .log(log)
        .env_remove("RUST_LOG")
        .env("GATEWAY_LOG_FORMAT", "json")
        .env("GATEWAY_UPSTREAM_ORIGIN", "bench.local")
        .env("GATEWAY_UPSTREAM_TIMEOUT_MS", "10000")
        // The benchmark is one client far above any sensible per-client limit.
        .env("GATEWAY_RATE_LIMIT_REQUESTS_PER_SECOND", "10000000")
        .env("GATEWAY_RATE_LIMIT_BURST", "10000000");
    for (name, value) in &options.env {
        command = command.env(name, value);
    }
    command
        .try_start()
        .await
        .context("starting a gateway (run with --gateway-log FILE to see its log)")
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) in seconds of one process.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds used so far by: the given server processes (gateways or nginx; `gateway`),
/// every `postgres` process, this
/// process (load generator and simulator), and the whole machine (to tell how busy it was
/// with anything else).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSnapshot {
    pub gateway: f64,
    pub postgres: f64,
    pub harness: f64,
    pub machine: f64,
}

/// Busy CPU seconds of the whole machine since boot (`/proc/stat`, all but idle and iowait).
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let fields: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user)
    let busy: f64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    busy / 100.0
}

impl CpuSnapshot {
    pub fn take(gateway_pids: &[u32]) -> Self {
        let gateway = gateway_pids
            .iter()
            .filter_map(|pid| cpu_seconds(&pid.to_string()))
            .sum();
        let mut postgres = 0.0;
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str() else { continue };
                if !pid.bytes().all(|b| b.is_ascii_digit()) {
                    continue;
                }
                let is_postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|comm| comm.trim() == "postgres")
                    .unwrap_or(false);
                if is_postgres {
                    postgres += cpu_seconds(pid).unwrap_or(0.0);
                }
            }
        }
        Self {
            gateway,
            postgres,
            harness: cpu_seconds("self").unwrap_or(0.0),
            machine: machine_busy_seconds(),
        }
    }

    pub fn since(self, earlier: Self) -> Self {
        Self {
            gateway: self.gateway - earlier.gateway,
            postgres: self.postgres - earlier.postgres,
            harness: self.harness - earlier.harness,
            machine: self.machine - earlier.machine,
        }
    }

    /// CPU seconds the machine spent on anything but the three above.
    pub fn others(&self) -> f64 {
        (self.machine - self.gateway - self.postgres - self.harness).max(0.0)
    }
}

/// nginx as a plain reverse proxy in front of the simulator (`bench/nginx/nginx.conf.in`).
pub struct Nginx {
    prefix: PathBuf,
    pub port: u16,
    stopped: bool,
}

/// The nginx version, if nginx is installed.
pub fn nginx_version() -> Option<String> {
    let output = Command::new("nginx").arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    text.strip_prefix("nginx version: ")
        .map(str::to_string)
        .or(Some(text))
}

impl Nginx {
    pub async fn start(template: &Path, dir: &Path, upstream: SocketAddr) -> anyhow::Result<Self> {
        let port = free_port();
        let prefix = dir.join(format!("nginx-{port}"));
        std::fs::create_dir_all(prefix.join("logs"))?;
        let template = std::fs::read_to_string(template)
            .with_context(|| format!("reading {}", template.display()))?;
        let config = template
            .replace("@PREFIX@", &prefix.display().to_string())
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@UPSTREAM@", &upstream.to_string());
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, config)?;
        let output = Command::new("nginx")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(prefix.join("logs/error.log"))
            .output()
            .context("starting nginx")?;
        if !output.status.success() {
            bail!(
                "nginx did not start: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let nginx = Self {
            prefix,
            port,
            stopped: false,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpListener::bind(loopback(port)).is_ok() {
            if Instant::now() > deadline {
                bail!("nginx is not listening on {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(nginx)
    }

    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The nginx processes (master and workers) on the machine: the harness's own.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
                    continue;
                };
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "nginx" {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    pub async fn stop(mut self) {
        self.quit();
        let pid_file = self.prefix.join("logs/nginx.pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_file.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `nginx -s quit` (graceful), once.
    fn quit(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = Command::new("nginx")
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"))
            .arg("-e")
            .arg(self.prefix.join("logs/error.log"))
            .args(["-s", "quit"])
            .output();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.quit();
    }
}

/// The pgbench version, if pgbench is installed.
pub fn pgbench_version() -> Option<String> {
    let output = Command::new("pgbench").arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Transactions per second of `script` with `clients` connections for `seconds`.
pub async fn pgbench(
    pg: &Postgres,
    database: &str,
    script: &Path,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let mut command = Command::new("pgbench");
    command
        .args(["-n", "-M", "prepared", "-h", &pg.host])
        .args(["-p", &pg.port.to_string(), "-U", &pg.user])
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &seconds.max(1).to_string()])
        .arg("-f")
        .arg(script)
        .arg(database);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    text.lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench output: {text}"))
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine: cores, memory, CPU model, kernel.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: Option<u64> = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    json!({
        "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "memory_gib": mem_kib.map(|k| (k as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "cpu_model": model,
        "kernel": kernel,
    })
}

/// `git describe` of the working tree, `+dirty` when it has changes.
pub fn git_revision(repo: &Path) -> Option<String> {
    let output = Command::new("git")
        .args(["describe", "--always", "--dirty=+dirty"])
        .current_dir(repo)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
