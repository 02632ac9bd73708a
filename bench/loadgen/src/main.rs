//! `loadgen`: the gateway's load harness (README, "Benchmarks").
//!
//! - `loadgen suite` (what `scripts/bench` runs) starts everything it needs on loopback — the
//!   upstream simulator (in this process), fresh Postgres databases, gateway processes, nginx
//!   and pgbench — measures the gateway against its references and writes
//!   `bench/results/latest.{md,json}`; `--growth` and `--soak` run the growth and memory
//!   measurements instead.
//! - `loadgen run` sends one scenario to an already running gateway (or H2H endpoint) and
//!   prints the result as JSON.

mod env;
mod http;
mod load;
mod report;
mod suite;
mod wrk;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use load::{Mode, Plan, Scenario, Signer, Target};

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "Load harness for mpospay-gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole comparison (scripts/bench), or --growth / --soak / --all.
    Suite(Box<suite::SuiteArgs>),
    /// One scenario against a running gateway or H2H endpoint; prints JSON.
    Run(RunArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScenarioArg {
    Inquiry,
    Flow,
    Mix,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// A gateway address (host:port); several for several processes.
    #[arg(long, value_delimiter = ',', required_unless_present = "h2h")]
    gateway: Vec<SocketAddr>,
    /// An operator API key of that gateway.
    #[arg(long, env = "LOADGEN_KEY", default_value = "")]
    key: String,
    /// Instead: an H2H endpoint (the simulator, or a proxy to it), signed by this client with
    /// the simulator's demo partner.
    #[arg(long, conflicts_with = "gateway")]
    h2h: Option<SocketAddr>,
    #[arg(long, value_enum, default_value = "inquiry")]
    scenario: ScenarioArg,
    /// Operations per second (fixed-rate mode); saturation when absent.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up first.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

#[actix_rt::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Suite(args) => suite::run(*args).await,
        Command::Run(args) => run(args).await,
    };
    if let Err(error) = result {
        eprintln!("loadgen: {error:#}");
        std::process::exit(1);
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let target = match args.h2h {
        Some(addr) => Target::Direct {
            addr,
            signer: Signer::new(&env::simulator_config(Duration::ZERO)),
        },
        None => {
            anyhow::ensure!(!args.key.is_empty(), "--key (or LOADGEN_KEY) is required");
            Target::Gateway {
                addrs: args.gateway.clone(),
                key: args.key.clone(),
            }
        }
    };
    let plan = Plan {
        scenario: match args.scenario {
            ScenarioArg::Inquiry => Scenario::Inquiry,
            ScenarioArg::Flow => Scenario::Flow,
            ScenarioArg::Mix => Scenario::Mix,
        },
        mode: args.rate.map_or(Mode::Saturation, Mode::Rate),
        connections: args.connections,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
    };
    let tag = format!("run{}", std::process::id());
    let result = load::run(Rc::new(target), &plan, &tag).await;
    println!("{}", serde_json::to_string_pretty(&result.to_json())?);
    Ok(())
}
