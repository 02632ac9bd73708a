//! The gateway binary as a child process, configured through its environment only, as an
//! operator runs it (README, "Configuration"): started on a free loopback port, awaited until
//! `/readyz` answers 200, killed with SIGKILL or stopped with SIGTERM, and started again on the
//! same port, database and settings.

use std::fs::{File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long [`GatewayCommand::start`] and [`GatewayProcess::restart`] wait for `/readyz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a SIGTERM'd gateway may take to finish its requests before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The partner account the gateway signs its upstream messages with: the simulator's
/// (`SandboxConfig`'s fields, or a test's own values).
#[derive(Clone)]
pub struct Partner {
    pub client_id: String,
    pub client_secret: String,
    pub password: String,
    pub key: String,
    pub account: String,
    pub institution_code: String,
}

/// Where a gateway process's output (stdout and stderr) goes.
#[derive(Debug, Clone)]
pub enum GatewayLog {
    /// `gateway.log` in its work directory (the default): [`GatewayProcess::log`] reads it, and
    /// its errors and last lines are printed when the test panics.
    WorkDir,
    /// Appended to this file.
    File(PathBuf),
    /// Discarded (it is still formatted and written).
    Discard,
}

/// How to start a gateway (`mpospay-gateway serve`): its binary and its `GATEWAY_*`
/// environment. Variables the calling process has in its own `GATEWAY_*` environment are not
/// passed on.
#[derive(Clone)]
pub struct GatewayCommand {
    binary: PathBuf,
    /// In order; a later setting of a name wins, `None` removes it.
    env: Vec<(String, Option<String>)>,
    workdir: Option<PathBuf>,
    log: GatewayLog,
}

impl GatewayCommand {
    /// `serve` on `database_url`, with `upstream_url` as its upstream, signing as `partner`
    /// (with the origin `tests.local`). The binary is a test's
    /// `env!("CARGO_BIN_EXE_mpospay-gateway")` or the harness's build of it.
    pub fn new(
        binary: impl Into<PathBuf>,
        database_url: &str,
        upstream_url: &str,
        partner: &Partner,
    ) -> Self {
        Self {
            binary: binary.into(),
            env: Vec::new(),
            workdir: None,
            log: GatewayLog::WorkDir,
        }
        .env("GATEWAY_DATABASE_URL", database_url)
        .env("GATEWAY_UPSTREAM_URL", upstream_url)
        .env("GATEWAY_UPSTREAM_CLIENT_ID", &partner.client_id)
        .env("GATEWAY_UPSTREAM_CLIENT_SECRET", &partner.client_secret)
        .env("GATEWAY_UPSTREAM_PASSWORD", &partner.password)
        .env("GATEWAY_UPSTREAM_KEY", &partner.key)
        .env("GATEWAY_UPSTREAM_ACCOUNT", &partner.account)
        .env(
            "GATEWAY_UPSTREAM_INSTITUTION_CODE",
            &partner.institution_code,
        )
        .env("GATEWAY_UPSTREAM_ORIGIN", "tests.local")
    }

    /// Sets an environment variable (a `GATEWAY_*` setting, `RUST_LOG` …); the last setting of
    /// a name wins.
    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        let value = value.as_ref().to_string_lossy().into_owned();
        self.env.push((name.to_string(), Some(value)));
        self
    }

    /// Removes an environment variable (one set before, or inherited).
    pub fn env_remove(mut self, name: &str) -> Self {
        self.env.push((name.to_string(), None));
        self
    }

    /// Runs it in `dir` (its current directory) instead of a temporary directory of its own.
    pub fn workdir(mut self, dir: &Path) -> Self {
        self.workdir = Some(dir.to_path_buf());
        self
    }

    pub fn log(mut self, log: GatewayLog) -> Self {
        self.log = log;
        self
    }

    /// Starts it on a free port and waits until it is ready; panics (with its log) otherwise.
    pub async fn start(self) -> GatewayProcess {
        let mut gateway = self.spawn().unwrap_or_else(|error| panic!("{error:#}"));
        gateway.wait_ready(START_TIMEOUT).await;
        gateway
    }

    /// Starts it on a free port and waits until it is ready.
    pub async fn try_start(self) -> anyhow::Result<GatewayProcess> {
        let mut gateway = self.spawn()?;
        gateway.try_wait_ready(START_TIMEOUT).await?;
        Ok(gateway)
    }

    /// Starts it on a free port without waiting.
    pub fn spawn(self) -> anyhow::Result<GatewayProcess> {
        let (workdir, tempdir) = match &self.workdir {
            Some(dir) => (dir.clone(), None),
            None => {
                let tempdir = tempfile::Builder::new()
                    .prefix("gateway-")
                    .tempdir()
                    .context("a work directory for the gateway")?;
                (tempdir.path().to_path_buf(), Some(tempdir))
            }
        };
        let mut gateway = GatewayProcess {
            command: self,
            port: crate::free_port(),
            workdir,
            _tempdir: tempdir,
            child: None,
        };
        gateway.respawn()?;
        Ok(gateway)
    }
}

/// A gateway process and how it was started. Dropping it kills the process (and prints its
/// log digest if the thread is panicking).
pub struct GatewayProcess {
    command: GatewayCommand,
    port: u16,
    workdir: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    child: Option<Child>,
}

impl GatewayProcess {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process (again) without waiting: same port, database and settings.
    pub fn respawn(&mut self) -> anyhow::Result<()> {
        assert!(self.child.is_none(), "the gateway is already running");
        let (stdout, stderr) = self.output()?;
        let mut command = Command::new(&self.command.binary);
        command
            .arg("serve")
            .current_dir(&self.workdir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GATEWAY_") {
                command.env_remove(name);
            }
        }
        command.env("GATEWAY_LISTEN", self.addr().to_string());
        for (name, value) in &self.command.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.command.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Starts the process again and waits until it is ready; panics otherwise.
    pub async fn restart(&mut self) {
        self.respawn().unwrap_or_else(|error| panic!("{error:#}"));
        self.wait_ready(START_TIMEOUT).await;
    }

    /// Waits until `GET /readyz` answers 200; panics (with its log) if it does not within
    /// `within` or the process exits.
    pub async fn wait_ready(&mut self, within: Duration) {
        if let Err(error) = self.try_wait_ready(within).await {
            panic!("{error:#}");
        }
    }

    /// Waits until `GET /readyz` answers 200.
    pub async fn try_wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let http = awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .finish();
        let url = format!("{}/readyz", self.base_url());
        loop {
            let Some(child) = self.child.as_mut() else {
                bail!("the gateway is not running");
            };
            if let Some(status) = child.try_wait()? {
                self.child = None;
                bail!(
                    "the gateway exited at start-up ({status})\n{}",
                    self.log_digest()
                );
            }
            let last = match http.get(&url).send().await {
                Ok(response) if response.status().as_u16() == 200 => return Ok(()),
                Ok(response) => response.status().to_string(),
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                bail!(
                    "the gateway on port {} was not ready within {within:?} (last: {last})\n{}",
                    self.port,
                    self.log_digest()
                );
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, nothing more is written. Returns once it is reaped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: a graceful shutdown (requests in flight finish); SIGKILL if it has not exited
    /// after 15 s.
    pub async fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                actix_rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.kill();
    }

    /// Everything it has written to its log so far (empty when it is discarded).
    pub fn log(&self) -> String {
        self.log_path()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Its errors (the first 40, beyond "database unavailable", which an outage logs once per
    /// request) and its last 40 lines, for a failure message.
    pub fn log_digest(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let errors: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|line| line.contains("ERROR") && !line.contains("database unavailable"))
            .take(40)
            .collect();
        format!(
            "--- gateway errors ---\n{}\n--- gateway log, last lines ---\n{}",
            errors.join("\n"),
            lines[lines.len().saturating_sub(40)..].join("\n")
        )
    }

    fn log_path(&self) -> Option<PathBuf> {
        match &self.command.log {
            GatewayLog::WorkDir => Some(self.workdir.join("gateway.log")),
            GatewayLog::File(path) => Some(path.clone()),
            GatewayLog::Discard => None,
        }
    }

    /// Its stdout and stderr: both appended to the log, or both discarded.
    fn output(&self) -> anyhow::Result<(Stdio, Stdio)> {
        let Some(path) = self.log_path() else {
            return Ok((Stdio::null(), Stdio::null()));
        };
        let file: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening the gateway's log {}", path.display()))?;
        Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() && self.log_path().is_some() {
            eprintln!("{}", self.log_digest());
        }
    }
}
