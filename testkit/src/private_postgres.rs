//! A private PostgreSQL cluster for one test: its own data directory, port and socket
//! directory, so that the test may crash and restart it without disturbing the shared server
//! the other tests use.
//!
//! The server binaries are taken from `PG_BINDIR` or the newest `/usr/lib/postgresql/*/bin`. If
//! they are missing the test panics and says so: it is never skipped. `initdb` refuses to run as
//! root, so when the tests run as root every server command runs as the `postgres` OS user.
//!
//! The commands block: from async code, call them through `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running (or crashed) private cluster. Dropping it stops the server and deletes its data.
pub struct PrivatePostgres {
    bin: PathBuf,
    /// The data directory, socket directory and log live in here.
    dir: tempfile::TempDir,
    port: u16,
    /// Run the server commands as the `postgres` OS user (we are root).
    as_postgres: bool,
    /// Extra server settings (`-c name=value`), e.g. `ssl=on`.
    settings: Vec<(String, String)>,
}

impl PrivatePostgres {
    /// Creates a cluster with trust authentication and starts it on a free loopback port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with extra server settings (`("ssl", "on")`, …) on every
    /// start. Files they name must be readable by the `postgres` user when we are root.
    pub fn start_with(settings: &[(&str, &str)]) -> Self {
        let bin = server_binaries();
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("private-pg-")
            .tempdir()
            .expect("a temporary directory for the private cluster");
        if as_postgres {
            run(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(dir.path()),
                "chown the private cluster's directory to the postgres user",
            );
        }
        let cluster = Self {
            bin,
            dir,
            port: crate::free_port(),
            as_postgres,
            settings: settings
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        };
        let data = cluster.data_dir();
        run(
            cluster
                .server_command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
                .args(["--locale=C", "--no-sync", "--no-instructions"]),
            "initdb of the private cluster",
        );
        cluster.restart();
        cluster
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server the way a crash does (`pg_ctl stop -m immediate`: no checkpoint, every
    /// backend killed); the next start runs crash recovery. Returns once it is down.
    pub fn crash(&self) {
        run(
            self.pg_ctl()
                .args(["stop", "-m", "immediate", "-w", "-t", "60"]),
            "pg_ctl stop -m immediate",
        );
    }

    /// Starts the server (again) on the same port and data; returns once it accepts
    /// connections.
    pub fn restart(&self) {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        for (name, value) in &self.settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let output = self
            .pg_ctl()
            .arg("-l")
            .arg(self.log_path())
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl runs");
        if !output.status.success() {
            panic!(
                "pg_ctl start of the private cluster failed ({}):\n{}\n--- server log ---\n{}",
                output.status,
                describe(&output),
                self.log_tail()
            );
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn pg_ctl(&self) -> Command {
        let mut command = self.server_command("pg_ctl");
        command.arg("-D").arg(self.data_dir());
        command
    }

    /// A server binary, run as the `postgres` user when we are root.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Best effort: it may already be down.
        let _ = self
            .pg_ctl()
            .args(["stop", "-m", "immediate", "-w", "-t", "30"])
            .output();
    }
}

/// `PG_BINDIR`, or the newest `/usr/lib/postgresql/*/bin` holding `initdb` and `pg_ctl`.
fn server_binaries() -> PathBuf {
    let has_binaries = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BINDIR").map(PathBuf::from) {
        assert!(
            has_binaries(&dir),
            "PG_BINDIR={} holds no initdb and pg_ctl",
            dir.display()
        );
        return dir;
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_binaries(&bin).then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "this test needs the PostgreSQL server binaries (initdb, pg_ctl) to run a private \
             cluster it can crash; none found in /usr/lib/postgresql/*/bin. Install the \
             postgresql package (Debian: postgresql-15) or set PG_BINDIR"
        )
    })
}

fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("`id -u` runs");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: could not run {command:?}: {error}"));
    if !output.status.success() {
        panic!("{what} failed ({}):\n{}", output.status, describe(&output));
    }
    output
}

fn describe(output: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}
